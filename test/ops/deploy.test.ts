import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { parsePoolsDocument } from '../../activities/providers/config.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { loadAgentConfig } from '../../gpu-agent/config.ts';
import { AgentMetrics } from '../../gpu-agent/metrics.ts';
import { DrydockMetrics } from '../../workers/metrics.ts';
import { ON_CI, requirePresent } from '../helpers/required.ts';

/**
 * The deployment artifacts stay consistent with the code that reads them: the manifests refer to
 * secrets, config maps and ports that exist, the pools ConfigMap is a pools file the worker
 * accepts, the agent accepts its env, and the dashboard queries metrics that are exported.
 */
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- free-form manifests, checked field by field below
const K8S = join(REPO_ROOT, 'deploy/k8s');

function manifests(): { file: string; doc: Obj }[] {
  const out: { file: string; doc: Obj }[] = [];
  for (const file of readdirSync(K8S).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')) {
    for (const d of parseAllDocuments(readFileSync(join(K8S, file), 'utf8'))) {
      assert.deepEqual(d.errors, [], `${file} parses`);
      if (d.contents) out.push({ file, doc: d.toJS() as Obj });
    }
  }
  return out;
}

const byKind = (kind: string) => manifests().filter((m) => m.doc.kind === kind);
const containersOf = (doc: Obj): Obj[] => doc.spec.template.spec.containers;
const envOf = (c: Obj): Record<string, string> => Object.fromEntries((c.env ?? []).filter((e: Obj) => 'value' in e).map((e: Obj) => [e.name, String(e.value)]));

describe('deployment artifacts', () => {
  it('every manifest is a namespaced object with a name, and kustomization lists every file', () => {
    const all = manifests();
    assert.ok(all.length >= 8);
    for (const { file, doc } of all) {
      assert.ok(typeof doc.apiVersion === 'string' && typeof doc.kind === 'string', `${file}: apiVersion and kind`);
      assert.match(doc.metadata?.name ?? '', /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, `${file}: metadata.name is a DNS label`);
      if (doc.kind !== 'Namespace') assert.equal(doc.metadata.namespace, 'drydock', `${file} ${doc.kind}`);
    }
    const kustomization = parseYaml(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    // The codec server is opt-in (it needs a codec key); the file says how to add it.
    const optional = ['codec-server.yaml'];
    assert.deepEqual([...kustomization.resources].sort(), [...new Set(all.map((m) => m.file))].filter((f) => !optional.includes(f)).sort());
    assert.match(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8'), /# - codec-server\.yaml/);
  });

  it('workloads: selectors match their pod labels, probes use declared ports, secret and config refs exist', () => {
    const secrets = new Map(byKind('Secret').map((s) => [s.doc.metadata.name, Object.keys(s.doc.stringData ?? s.doc.data ?? {})]));
    const configMaps = new Map(byKind('ConfigMap').map((c) => [c.doc.metadata.name, Object.keys(c.doc.data ?? {})]));
    const workloads = [...byKind('Deployment'), ...byKind('DaemonSet')];
    assert.equal(workloads.length, 3, 'worker, agent and codec server');
    for (const { doc } of workloads) {
      const labels = doc.spec.template.metadata.labels;
      for (const [k, v] of Object.entries(doc.spec.selector.matchLabels)) assert.equal(labels[k], v, `${doc.metadata.name}: selector ${k}`);
      for (const c of containersOf(doc)) {
        const ports = new Set((c.ports ?? []).flatMap((p: Obj) => [p.name, p.containerPort]));
        for (const probe of [c.livenessProbe, c.readinessProbe].filter(Boolean)) {
          const port = (probe.httpGet ?? probe.tcpSocket).port;
          assert.ok(ports.has(port), `${doc.metadata.name}: probe port ${port} is declared`);
        }
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref) assert.ok(secrets.get(ref.name)?.includes(ref.key), `${doc.metadata.name}: secret ${ref.name}/${ref.key} exists`);
        }
        const volumes = new Map((doc.spec.template.spec.volumes ?? []).map((v: Obj) => [v.name, v]));
        for (const m of c.volumeMounts ?? []) assert.ok(volumes.has(m.name), `${doc.metadata.name}: volume ${m.name} declared`);
        for (const v of volumes.values() as Iterable<Obj>) {
          if (v.configMap) assert.ok(configMaps.has(v.configMap.name), `configMap ${v.configMap.name} exists`);
        }
      }
    }
  });

  it("the pools ConfigMap is mounted where the worker looks, and the worker's own parser accepts it", () => {
    const worker = byKind('Deployment').find((d) => d.doc.metadata.name === 'drydock-worker')!.doc;
    const c = containersOf(worker)[0];
    const poolsFile = envOf(c).DRYDOCK_POOLS_FILE;
    const mount = c.volumeMounts.find((m: Obj) => poolsFile.startsWith(`${m.mountPath}/`));
    assert.ok(mount, `DRYDOCK_POOLS_FILE ${poolsFile} lies under a mount`);
    const volume = worker.spec.template.spec.volumes.find((v: Obj) => v.name === mount.name);
    const cm = byKind('ConfigMap').find((m) => m.doc.metadata.name === volume.configMap.name)!.doc;
    const key = poolsFile.slice(mount.mountPath.length + 1);
    assert.ok(cm.data[key], `ConfigMap ${cm.metadata.name} has key ${key}`);
    const pools = parsePoolsDocument(parseYaml(cm.data[key]), `${cm.metadata.name}/${key}`);
    assert.deepEqual(pools.map((p) => p.name), ['h100']);
    assert.match(envOf(c).DRYDOCK_METRICS_ADDRESS, /:9464$/);
    assert.ok(c.ports.some((p: Obj) => p.containerPort === 9464), 'the metrics port is exposed');
  });

  it('the codec server runs the in-repo server with the same key as the workers', () => {
    const codec = byKind('Deployment').find((d) => d.doc.metadata.name === 'drydock-codec-server')!.doc;
    const c = containersOf(codec)[0];
    assert.deepEqual(c.command.slice(-1), ['workers/codecServer.ts']);
    const key = (d: Obj) => containersOf(d)[0].env.find((e: Obj) => e.name === 'DRYDOCK_CODEC_KEY').valueFrom.secretKeyRef;
    const worker = byKind('Deployment').find((d) => d.doc.metadata.name === 'drydock-worker')!.doc;
    assert.deepEqual({ name: key(codec).name, key: key(codec).key }, { name: key(worker).name, key: key(worker).key });
    assert.match(envOf(c).DRYDOCK_CODEC_SERVER_ADDRESS, /:8888$/);
    assert.equal(byKind('Service').find((s) => s.doc.metadata.name === 'drydock-codec-server')?.doc.spec.type, 'ClusterIP', 'never exposed outside the cluster');
  });

  it('the agent DaemonSet mounts the NVIDIA devices and driver tools, and the agent accepts its env', () => {
    const [agent] = byKind('DaemonSet').map((d) => d.doc);
    assert.equal(agent.spec.template.spec.hostNetwork, true, 'the worker reaches agents at the node IP');
    const c = containersOf(agent)[0];
    const mounts = new Set(c.volumeMounts.map((m: Obj) => m.mountPath));
    for (const path of ['/dev', '/usr/bin/nvidia-smi']) assert.ok(mounts.has(path), `mounts ${path}`);
    assert.ok([...mounts].some((p) => /libnvidia-ml\.so/.test(String(p))), 'mounts NVML');
    // Least privilege: the agent reads its own token from the tokens file its node's user data wrote, holds no
    // secret of the workers', and serves TLS from the mounted Secret (the files are not here, so left out below).
    const { DRYDOCK_AGENT_TOKENS_FILE: tokensFile, DRYDOCK_AGENT_TLS_CERT: cert, DRYDOCK_AGENT_TLS_KEY: key, ...rest } = envOf(c);
    assert.ok(tokensFile && c.volumeMounts.some((m: Obj) => m.mountPath === tokensFile), 'the tokens file is mounted');
    for (const f of [cert, key]) assert.ok(f && c.volumeMounts.some((m: Obj) => f.startsWith(`${m.mountPath}/`)), `TLS file ${f} is mounted`);
    assert.ok(!(c.env as Obj[]).some((e) => e.valueFrom?.secretKeyRef?.key === 'agent-key' || /^DRYDOCK_AGENT_(KEY|TOKEN)$/.test(e.name)), 'no master key or shared token on agents');
    const worker = byKind('Deployment').find((d) => d.doc.metadata.name === 'drydock-worker')!.doc;
    assert.ok(containersOf(worker)[0].env.some((e: Obj) => e.name === 'DRYDOCK_AGENT_KEY' && e.valueFrom.secretKeyRef.key === 'agent-key'), 'the workers hold the key');
    const env = { ...rest, DRYDOCK_AGENT_CONTROL_TOKEN: 'x'.repeat(32), DRYDOCK_NODE_ID: 'gpu-node-1' };
    const config = loadAgentConfig([], env);
    assert.equal(config.auth.metricsPublic, true, 'Prometheus scrapes the annotated /metrics');
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.port, c.ports[0].containerPort);
    assert.equal(config.gpuBackend, 'nvidia');
    assert.equal(config.pool, agent.spec.template.spec.nodeSelector['drydock-pool']);
  });

  it('the Grafana dashboard queries only metrics that drydock exports', () => {
    const dash = JSON.parse(readFileSync(join(REPO_ROOT, 'deploy/grafana/drydock-dashboard.json'), 'utf8')) as { panels: Obj[] };
    const exprs = dash.panels.filter((p) => p.type !== 'row').flatMap((p) => p.targets.map((t: Obj) => t.expr as string));
    assert.ok(exprs.length >= 10);
    const exported = new Set<string>();
    for (const registry of [new DrydockMetrics().registry, new AgentMetrics().registry]) {
      for (const m of registry.getMetricsAsArray()) exported.add(m.name);
    }
    const used = new Set(exprs.flatMap((e) => e.match(/\bdrydock_[a-z_]+/g) ?? []).map((n) => n.replace(/_(bucket|count|sum)$/, '')));
    for (const name of used) assert.ok(exported.has(name), `dashboard metric ${name} is exported by the worker or the agent`);
    for (const name of ['drydock_replacements_started_total', 'drydock_time_to_replace_seconds', 'drydock_gpu_xid_events_total']) assert.ok(used.has(name), `${name} on the dashboard`);
  });

  it('manifests validate against the Kubernetes JSON schemas', async (t) => {
    // Needs the devDependency `kubernetes-models` (generated from the Kubernetes OpenAPI schemas, with
    // ajv validators): an install without dev dependencies lacks it. Skipped then, except on CI.
    const require = createRequire(import.meta.url);
    try {
      require.resolve('kubernetes-models/package.json');
    } catch {
      const missing = "npm package 'kubernetes-models' is not installed: run npm install (it is a devDependency)";
      if (ON_CI) requirePresent(missing);
      t.skip(missing);
      return;
    }
    const kinds: Record<string, string> = {
      Namespace: 'kubernetes-models/v1/Namespace',
      Secret: 'kubernetes-models/v1/Secret',
      ConfigMap: 'kubernetes-models/v1/ConfigMap',
      ServiceAccount: 'kubernetes-models/v1/ServiceAccount',
      Service: 'kubernetes-models/v1/Service',
      Deployment: 'kubernetes-models/apps/v1/Deployment',
      DaemonSet: 'kubernetes-models/apps/v1/DaemonSet',
      PodDisruptionBudget: 'kubernetes-models/policy/v1/PodDisruptionBudget',
    };
    for (const { file, doc } of manifests()) {
      const modulePath = kinds[doc.kind];
      assert.ok(modulePath, `${file}: no schema mapped for kind ${doc.kind}`);
      const mod = (await import(modulePath)) as Record<string, new (d: Obj) => { validate(): void }>;
      const Model = mod[doc.kind];
      assert.doesNotThrow(() => new Model(doc).validate(), `${file} ${doc.kind}/${doc.metadata.name}`);
    }
  });
});

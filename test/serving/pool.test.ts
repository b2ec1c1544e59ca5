// A serving pool on a real dev server with real agents: every node that joins (adopted, replaced,
// scaled up) serves the pool's model before it counts; drift is converged, or only reported.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import type { ReplaceNodeStatus } from '../../workflows/replaceNode.ts';
import { loadAgentConfig } from '../../gpu-agent/config.ts';
import { createAgent } from '../../gpu-agent/server.ts';
import { poolHarness, waitStatus } from '../pool/helpers.ts';
import { agentCall, allServe, ref, servedBy, tinyModels } from './helpers.ts';

const TQ = 'serving-pool';
const POOL = 'serve';
const models = tinyModels();
after(() => rmSync(models.dir, { recursive: true, force: true }));

describe('a serving pool on real agents', () => {
  const spec: FleetPoolSpec = {
    name: POOL,
    minNodes: 1,
    maxNodes: 4,
    health: { probeIntervalSeconds: 1, unhealthyAfter: 2, unreachableAfterSeconds: 30, drainTimeoutSeconds: 10 },
    disruption: { maxUnavailable: 1, minHealthy: 1 },
    serving: { model: ref(models.a) },
  };
  const h = poolHarness({ taskQueue: TQ, spec, nodes: 2, fleet: { modelDirs: [models.dir] } });
  const A = models.a.sha256;

  it('adopted nodes that serve nothing converge to the pool model, one at a time through the budget', async () => {
    const s = await waitStatus(h.pool, allServe(A, 2), 'every adopted node to serve model A', 120_000);
    assert.deepEqual(s.serving?.desired, ref(models.a));
    assert.ok(s.maxDisrupted <= 1, `maxDisrupted ${s.maxDisrupted}`);
    for (const id of h.fleet.nodeIds) {
      assert.equal(await servedBy(h.fleet, id), A);
      assert.equal((await agentCall(h.fleet, id, 'GET', '/ready')).status, 200);
    }
  });

  it('drift (a manual PUT /model) is converged back to the pool model', async () => {
    const node = h.fleet.nodeIds[0];
    assert.equal((await agentCall(h.fleet, node, 'PUT', '/model', ref(models.b))).status, 200);
    await waitStatus(h.pool, (s) => s.events.some((e) => e.nodeId === node && e.message.startsWith('drift: serves') && e.message.includes(models.b.sha256.slice(0, 12))), 'the drift to be seen', 60_000);
    await waitStatus(h.pool, allServe(A, 2), 'the drifted node to serve A again', 120_000);
    assert.equal(await servedBy(h.fleet, node), A);
  });

  it('with reconcile: report, drift only shows in status; back to converge, it is repaired', async () => {
    const node = h.fleet.nodeIds[0];
    await h.pool.executeUpdate('applySpec', { args: [{ ...spec, serving: { model: ref(models.a), reconcile: 'report' } }] });
    assert.equal((await agentCall(h.fleet, node, 'PUT', '/model', ref(models.b))).status, 200);
    const seen = await waitStatus(h.pool, (s) => s.serving?.drifted.some((d) => d.nodeId === node && d.serves?.sha256 === models.b.sha256) ?? false, 'the drift in status', 60_000);
    assert.equal(seen.serving?.reconcile, 'report');
    // Three more probes: still drifted, never leased.
    const at = seen.lastProbe!.at;
    const later = await waitStatus(h.pool, (s) => Date.parse(s.lastProbe!.at) >= Date.parse(at) + 3000, 'three more probes', 60_000, (s) => assert.equal(s.leases.length, 0, 'report mode takes no lease'));
    assert.ok(later.serving?.drifted.some((d) => d.nodeId === node && !d.converging));
    assert.equal(await servedBy(h.fleet, node), models.b.sha256);
    await h.pool.executeUpdate('applySpec', { args: [spec] });
    await waitStatus(h.pool, allServe(A, 2), 'converged after reconcile: converge', 120_000);
  });

  it('a replacement joins cordoned, is brought to the pool model, and only then counts', async () => {
    const old = h.fleet.nodeIds[1];
    await h.pool.executeUpdate('replaceNode', { args: [{ nodeId: old, reason: 'test: replace' }] });
    const s = await waitStatus(h.pool, (st) => st.replacements.succeeded === 1 && !st.nodes.some((n) => n.id === old) && allServe(A, 2)(st), 'the replacement to serve A', 180_000);
    const fresh = s.nodes.find((n) => !h.fleet.nodeIds.includes(n.id))!;
    assert.ok(fresh, JSON.stringify(s.nodes));
    assert.equal(await servedBy(h.fleet, fresh.id), A);
    assert.equal((await agentCall(h.fleet, fresh.id, 'GET', '/ready')).status, 200);
    const child = await h.env.client.workflow.getHandle(`replace/${POOL}/${old}`).query<ReplaceNodeStatus>('status');
    assert.deepEqual(child.phases.map((p) => p.phase), ['validating', 'cordoning', 'draining', 'terminating', 'provisioning', 'waiting-healthy', 'converging']);
    assert.equal(child.model?.sha256, A);
    assert.match(child.phases[0].note ?? '', /pool's desired state/);
    h.fleet.nodeIds.push(fresh.id);
  });

  it('a scale-up node serves the pool model before it joins', async () => {
    await h.pool.executeUpdate('resize', { args: [{ desiredNodes: 3 }] });
    const s = await waitStatus(h.pool, allServe(A, 3), 'the scale-up node to join serving A', 180_000);
    const fresh = s.nodes.find((n) => !h.fleet.nodeIds.includes(n.id))!;
    assert.equal(await servedBy(h.fleet, fresh.id), A);
    assert.equal((await agentCall(h.fleet, fresh.id, 'GET', '/ready')).status, 200);
    assert.ok(s.events.some((e) => e.nodeId === fresh.id && /joined the pool \(scale-up\), serving/.test(e.message)), JSON.stringify(s.events.slice(-10)));
  });
});

describe('agent readiness of a serving node', () => {
  it('an agent started with --require-model is not ready while it serves none, and says why', async () => {
    const cfg = loadAgentConfig(['--require-model', '--gpus', '1', '--port', '0', '--kernel-log', 'none', '--model-dir', models.dir], { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: 'x'.repeat(24) });
    const agent = createAgent(cfg);
    await new Promise<void>((r) => agent.server.listen(0, '127.0.0.1', r));
    try {
      const { port } = agent.server.address() as { port: number };
      const get = () => fetch(`http://127.0.0.1:${port}/ready`, { headers: { authorization: `Bearer ${'x'.repeat(24)}` } });
      const r = await get();
      assert.equal(r.status, 503);
      const body = (await r.json()) as { reasons: string[] };
      assert.ok(body.reasons.some((x) => /^model: this node must serve a model and serves none/.test(x)), JSON.stringify(body));
      const put = await fetch(`http://127.0.0.1:${port}/model`, { method: 'PUT', headers: { authorization: `Bearer ${'x'.repeat(24)}`, 'content-type': 'application/json' }, body: JSON.stringify(ref(models.a)) });
      assert.equal(put.status, 200, await put.text());
      assert.equal((await get()).status, 200);
      // Told to serve B, which does not verify: still serving A, and ready again (the refused model was never served).
      const bad = await fetch(`http://127.0.0.1:${port}/model`, { method: 'PUT', headers: { authorization: `Bearer ${'x'.repeat(24)}`, 'content-type': 'application/json' }, body: JSON.stringify({ uri: models.b.path, sha256: models.a.sha256 }) });
      assert.equal(bad.status, 409);
      assert.equal((await get()).status, 200);
    } finally {
      await agent.close();
    }
  });
});

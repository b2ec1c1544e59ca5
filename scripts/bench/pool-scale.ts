/**
 * Pool at scale: the real fleetPool workflow and a real control worker (its provider is the fleet
 * simulator: one process, one real gpu-agent HTTP server per node) against N nodes.
 *
 *   node --import tsx scripts/bench/pool-scale.ts [--nodes 200] [--probe 10] [--faults 20]
 *     [--spread 180] [--rack-size 50] [--burst 0.4] [--max-unavailable 10] [--out FILE]
 *
 * Phase 1: `faults` fatal XIDs on random nodes, spread over `spread` seconds. Phase 2: a
 * correlated burst on `burst` of one rack. Prints time-to-detect and time-to-replace (p50/p99),
 * worker CPU and RSS, history events per hour (and per probe interval, against the N events a
 * per-node design would write), the most nodes disrupted at once (≤ maxUnavailable) and whether
 * the breaker opened on the burst. Writes the figures to --out (default
 * scripts/fleet-sim/results/pool-scale-<N>.json).
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../lib/paths.ts';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import type { PoolStatus } from '../../workflows/pool/api.ts';
import { waitFor } from '../lib/waitFor.ts';
import { workflowBundle } from '../lib/bundle.ts';
import { startDevServer } from '../lib/temporal.ts';
import { procStats, spawnUntilReady } from './processes.ts';

const { values: a } = parseArgs({
  options: {
    nodes: { type: 'string', default: '200' },
    probe: { type: 'string', default: '10' },
    faults: { type: 'string', default: '20' },
    spread: { type: 'string', default: '180' },
    'rack-size': { type: 'string', default: '50' },
    burst: { type: 'string', default: '0.4' },
    'max-unavailable': { type: 'string', default: '10' },
    out: { type: 'string' },
  },
});
const N = Number(a.nodes);
const PROBE = Number(a.probe);
const FAULTS = Number(a.faults);
const SPREAD = Number(a.spread);
const RACK = Number(a['rack-size']);
const BURST = Number(a.burst);
const MAX_UNAVAILABLE = Number(a['max-unavailable']);
const POOL = 'sim';
const TQ = 'pool-scale';
const token = randomBytes(24).toString('hex');

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');

async function main(): Promise<void> {
  const env = await startDevServer();
  const procs: ChildProcess[] = [];
  try {
    const sim = await spawnUntilReady(['scripts/fleet-sim/main.ts', '--rack-size', String(RACK), '--boot-seconds', '2'], { DRYDOCK_AGENT_TOKEN: token }, /http:\/\/127\.0\.0\.1:\d+/);
    procs.push(sim.proc);
    const simUrl = sim.line;
    const ctl = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const res = await fetch(`${simUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    };
    const t0 = Date.now();
    for (let i = 0; i < N; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, N - i) }, (_, j) => ctl('POST', '/provision', { pool: POOL, key: `initial/${i + j}`, bootSeconds: 0 })));
    }
    console.log(`${N} simulated nodes up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const worker = await spawnUntilReady(
      ['scripts/fleet-sim/worker.ts'],
      { TEMPORAL_ADDRESS: env.address, DRYDOCK_TASK_QUEUE: TQ, DRYDOCK_AGENT_TOKEN: token, FLEET_SIM_URL: simUrl, FLEET_SIM_POOL: POOL, DRYDOCK_WORKFLOW_BUNDLE: await workflowBundle() },
      /fleet-sim worker: ready/,
    );
    procs.push(worker.proc);
    const wpid = worker.proc.pid!;

    const spec: FleetPoolSpec = {
      name: POOL,
      minNodes: N,
      maxNodes: N,
      health: { probeIntervalSeconds: PROBE, unhealthyAfter: 2, drainTimeoutSeconds: 30 },
      // Tuned to this run's background rate: the burst, not the background, should trip it.
      disruption: { maxUnavailable: MAX_UNAVAILABLE, breaker: { maxUnhealthyFraction: Math.max(0.02, (RACK * BURST) / N - 0.01), windowSeconds: 60 } },
    };
    const handle = await env.client.workflow.start('fleetPool', { taskQueue: TQ, workflowId: `pool/${POOL}`, args: [spec] });
    const status = () => handle.query<PoolStatus>('status');
    const adopted = async () => {
      try {
        const s = await status();
        return s.phase === 'running' && s.counts.healthy === N;
      } catch {
        return false;
      }
    };
    await waitFor(adopted, 300_000, 'the pool to adopt every node');
    console.log(`pool running: ${N} healthy nodes, breaker limit ${(spec.disruption!.breaker!.maxUnhealthyFraction! * 100).toFixed(1)} % in 60 s`);

    // Observe: every status event (deduplicated), max leases, worker CPU / RSS.
    const seen = new Map<string, { at: number; nodeId?: string; message: string }>();
    let maxLeases = 0;
    /** How long each probe activity took (start → all agents answered), by probe start. */
    const probeMs = new Map<string, number>();
    let maxRss = 0;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        try {
          const s = await status();
          maxLeases = Math.max(maxLeases, s.leases.length, s.maxDisrupted);
          if (s.lastProbe && !probeMs.has(s.lastProbe.at)) probeMs.set(s.lastProbe.at, s.lastProbe.tookMs);
          for (const e of s.events) seen.set(`${e.at}|${e.nodeId}|${e.message}`, { at: Date.parse(e.at), nodeId: e.nodeId, message: e.message });
        } catch {
          /* between runs (continue-as-new) */
        }
        maxRss = Math.max(maxRss, procStats(wpid).rssMiB);
        await sleep(500);
      }
    })();
    const cpu0 = procStats(wpid).cpuS;
    const tStart = Date.now();

    // Phase 1: background fatal faults, uniformly spread.
    const list = await ctl<{ id: string; tags: Record<string, string> }[]>('GET', `/list?pool=${POOL}`);
    const burstRack = 0;
    const candidates = list.filter((n) => n.tags.rack !== String(burstRack)).map((n) => n.id);
    const injected = new Map<string, number>();
    const times = Array.from({ length: FAULTS }, (_, i) => (SPREAD * 1000 * (i + Math.random())) / FAULTS);
    for (const at of times) {
      await sleep(Math.max(0, tStart + at - Date.now()));
      const id = candidates.splice(Math.floor(Math.random() * candidates.length), 1)[0];
      injected.set(id, Date.now());
      await ctl('POST', '/fault', { id, fault: { kind: 'xid', gpu: 0, code: 79 } });
    }
    console.log(`${FAULTS} faults injected over ${SPREAD} s; waiting for their replacements`);
    const replacedOf = (id: string) => [...seen.values()].find((e) => e.nodeId === id && e.message.startsWith('replaced by'));
    await waitFor(() => [...injected.keys()].every((id) => replacedOf(id)), 240_000, 'every background fault to be replaced').catch((e: Error) => console.log(e.message));

    // Phase 2: correlated burst on one rack.
    const rack = await ctl<string[]>('GET', `/rack?pool=${POOL}&rack=${burstRack}`);
    const burstNodes = rack.slice(0, Math.round(rack.length * BURST));
    const tBurst = Date.now();
    await Promise.all(burstNodes.map((id) => ctl('POST', '/fault', { id, fault: { kind: 'xid', gpu: 0, code: 79 } })));
    console.log(`burst: ${burstNodes.length} nodes of rack ${burstRack} fatal at once`);
    await sleep((PROBE * 3 + 5) * 1000);
    const after = await status();
    const tEnd = Date.now();
    polling = false;
    await poll;
    const cpu1 = procStats(wpid).cpuS;

    const detect: number[] = [];
    const replace: number[] = [];
    for (const [id, at] of injected) {
      const d = [...seen.values()].filter((e) => e.nodeId === id && e.message.startsWith('unhealthy')).sort((x, y) => x.at - y.at)[0];
      if (d) detect.push((d.at - at) / 1000);
      const r = replacedOf(id);
      if (r) replace.push((r.at - at) / 1000);
    }
    let historyEvents = 0;
    let runs = 0;
    for await (const w of env.client.workflow.list({ query: `WorkflowId = 'pool/${POOL}'` })) {
      historyEvents += (await env.client.workflow.getHandle(w.workflowId, w.runId).describe()).historyLength;
      runs++;
    }
    const hours = (tEnd - tStart) / 3_600_000;
    const intervals = (tEnd - tStart) / 1000 / PROBE;
    const results = {
      nodes: N,
      probeIntervalSeconds: PROBE,
      faults: FAULTS,
      spreadSeconds: SPREAD,
      detectedOf: detect.length,
      replacedOf: replace.length,
      timeToDetectS: { p50: pct(detect, 50), p99: pct(detect, 99), goalP99: PROBE + 1 },
      timeToReplaceS: { p50: pct(replace, 50), p99: pct(replace, 99) },
      probeActivityMs: { p50: pct([...probeMs.values()], 50), max: Math.max(...probeMs.values()) },
      workerCpuPercent: (100 * (cpu1 - cpu0)) / ((tEnd - tStart) / 1000),
      workerMaxRssMiB: maxRss,
      historyEventsPerHour: historyEvents / hours,
      historyEventsPerProbeInterval: historyEvents / intervals,
      perNodeDesignEventsPerProbeInterval: N,
      runs,
      maxDisrupted: maxLeases,
      maxUnavailable: MAX_UNAVAILABLE,
      burst: { nodes: burstNodes.length, breakerOpened: after.breaker.open, reason: after.breaker.reason, secondsAfterBurst: (tEnd - tBurst) / 1000 },
      machine: `${(await import('node:os')).cpus().length} cores`,
      at: new Date().toISOString(),
    };
    console.log(`
pool-scale: ${N} nodes, probe every ${PROBE} s, ${FAULTS} fatal faults over ${SPREAD} s
  time to detect   p50 ${f1(results.timeToDetectS.p50)} s   p99 ${f1(results.timeToDetectS.p99)} s   (goal p99 <= ${PROBE + 1} s; ${detect.length}/${FAULTS} seen)
  probe activity   p50 ${f1(results.probeActivityMs.p50)} ms   max ${f1(results.probeActivityMs.max)} ms (all ${N} agents, from the worker)
  time to replace  p50 ${f1(results.timeToReplaceS.p50)} s   p99 ${f1(results.timeToReplaceS.p99)} s   (${replace.length}/${FAULTS} replaced)
  control worker   CPU ${f1(results.workerCpuPercent)} %   max RSS ${f1(maxRss)} MiB
  history          ${results.historyEventsPerHour.toFixed(0)} events/hour = ${results.historyEventsPerProbeInterval.toFixed(1)} per probe interval (a per-node design: ${N}, ratio ${(results.historyEventsPerProbeInterval / N).toFixed(3)}); ${runs} run(s)
  disruption       max ${maxLeases} nodes disrupted at once (maxUnavailable ${MAX_UNAVAILABLE}) ${maxLeases <= MAX_UNAVAILABLE ? 'OK' : 'VIOLATED'}
  burst            ${burstNodes.length} nodes of one rack: breaker ${after.breaker.open ? `OPENED (${after.breaker.reason})` : 'stayed closed'}`);
    const out = a.out ?? join(REPO_ROOT, `scripts/fleet-sim/results/pool-scale-${N}.json`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
    console.log(`wrote ${out}`);
    await handle.terminate('benchmark over');
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await env.teardown();
  }
}

await main();

/**
 * Rolling update at scale: the real rollingUpdate workflow and a real control worker against N
 * simulated nodes (the fleet simulator: one process, one real gpu-agent HTTP server per node, with
 * simulated inference whose swap, drain and smoke durations are drawn per node, seeded).
 *
 *   node --import tsx scripts/bench/rollout.ts [--nodes 100] [--max-unavailable 10%]
 *     [--swap 2-4] [--drain 0.5-2] [--generation-ms 100-300] [--seed 1] [--no-pool]
 *     [--pool-max-unavailable AMOUNT (default: the rollout's)] [--timeout-minutes 20] [--out FILE]
 *
 * Rolls a new model across the pool (analysis intervalSeconds 0: one smoke check per batch) and
 * prints the total wall time, the ideal (per batch, the slowest node's agent-side work: drain +
 * swap + smoke, as the simulator measured it, summed over the rollout's batches) and the overhead
 * total / ideal − 1 (goal ≤ 10 %), with a per-batch breakdown and Temporal's per-activity
 * latencies from the workflow history. With the pool workflow running (default) every node's
 * lease goes through the pool's disruption budget. Writes the figures to --out (default
 * scripts/fleet-sim/results/rollout-<N>.json).
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { REPO_ROOT } from '../lib/paths.ts';
import { simulatedModelSha256 } from '../../gpu-agent/inference/simulated.ts';
import type { NodeTimings } from '../fleet-sim/simulator.ts';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import type { RollingUpdateInput } from '../../workflows/inputs/rollingUpdate.ts';
import type { PoolStatus } from '../../workflows/pool/api.ts';
import type { RolloutResult, RolloutStatus } from '../../workflows/rollout/api.ts';
import { waitFor } from '../lib/waitFor.ts';
import { workflowBundle } from '../lib/bundle.ts';
import { startDevServer } from '../lib/temporal.ts';
import { procStats, spawnUntilReady } from './processes.ts';

const { values: a } = parseArgs({
  options: {
    nodes: { type: 'string', default: '100' },
    'max-unavailable': { type: 'string', default: '10%' },
    swap: { type: 'string', default: '2-4' },
    drain: { type: 'string', default: '0.5-2' },
    'generation-ms': { type: 'string', default: '100-300' },
    seed: { type: 'string', default: '1' },
    'no-pool': { type: 'boolean', default: false },
    'pool-max-unavailable': { type: 'string' },
    'timeout-minutes': { type: 'string', default: '20' },
    out: { type: 'string' },
  },
});
const N = Number(a.nodes);
const MAX_UNAVAILABLE: number | string = /^\d+$/.test(a['max-unavailable']) ? Number(a['max-unavailable']) : a['max-unavailable'];
const WITH_POOL = !a['no-pool'];
const POOL_MAX_UNAVAILABLE: number | string = a['pool-max-unavailable'] === undefined ? MAX_UNAVAILABLE : /^\d+$/.test(a['pool-max-unavailable']) ? Number(a['pool-max-unavailable']) : a['pool-max-unavailable'];
const POOL = 'sim';
const TQ = 'rollout-bench';
const BASE_MODEL = '/models/bench-base.gguf';
const TARGET = { uri: '/models/bench-next.gguf', sha256: simulatedModelSha256('/models/bench-next.gguf') };
const token = randomBytes(24).toString('hex');

const s2 = (ms: number) => (ms / 1000).toFixed(2);
const mean = (xs: number[]) => (xs.length ? xs.reduce((x, y) => x + y, 0) / xs.length : NaN);
const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

/** One node's agent-side work during its walk [from, to]: its drain, its swap to the target, its smoke generation(s). */
function nodeWork(t: NodeTimings, from: number, to: number): { drainMs: number; swapMs: number; smokeMs: number } {
  const inWalk = (x: { startedAt: number }) => x.startedAt >= from && x.startedAt <= to;
  const sum = (xs: { ms: number }[]) => xs.reduce((x, y) => x + y.ms, 0);
  return {
    drainMs: sum(t.drains.filter(inWalk)),
    swapMs: sum(t.swaps.filter((s) => inWalk(s) && s.ok && s.sha256 === TARGET.sha256)),
    smokeMs: sum(t.generations.filter((g) => inWalk(g) && g.sha256 === TARGET.sha256)),
  };
}

/** Per activity type from the history: how long tasks waited to start and how long they ran. */
async function activityLatencies(history: { events?: unknown[] | null }) {
  type Ev = {
    eventId?: { toString(): string } | null;
    eventTime?: { seconds?: { toString(): string } | null; nanos?: number | null } | null;
    activityTaskScheduledEventAttributes?: { activityType?: { name?: string | null } | null; input?: { payloads?: { data?: Uint8Array | null }[] | null } | null } | null;
    activityTaskStartedEventAttributes?: { scheduledEventId?: { toString(): string } | null } | null;
    activityTaskCompletedEventAttributes?: { scheduledEventId?: { toString(): string } | null } | null;
    workflowTaskScheduledEventAttributes?: unknown;
    workflowTaskCompletedEventAttributes?: unknown;
  };
  const ms = (e: Ev) => Number(e.eventTime?.seconds?.toString() ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6;
  const scheduled = new Map<string, { type: string; at: number; nodeId?: string; startedAt?: number; completedAt?: number }>();
  const byType = new Map<string, { toStart: number[]; run: number[] }>();
  let wfTaskScheduledAt: number | undefined;
  const wfTasks: number[] = [];
  for (const raw of history.events ?? []) {
    const e = raw as Ev;
    const id = e.eventId?.toString() ?? '';
    const sa = e.activityTaskScheduledEventAttributes;
    if (sa) {
      let nodeId: string | undefined;
      try {
        const arg = JSON.parse(Buffer.from(sa.input?.payloads?.[0]?.data ?? []).toString()) as { nodeId?: unknown };
        if (typeof arg.nodeId === 'string') nodeId = arg.nodeId;
      } catch {
        /* not a per-node activity */
      }
      scheduled.set(id, { type: sa.activityType?.name ?? '?', at: ms(e), nodeId });
    }
    const st = e.activityTaskStartedEventAttributes?.scheduledEventId?.toString();
    if (st && scheduled.has(st)) scheduled.get(st)!.startedAt = ms(e);
    const done = e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString();
    const s = done ? scheduled.get(done) : undefined;
    if (s) s.completedAt = ms(e);
    if (s?.startedAt !== undefined) {
      const b = byType.get(s.type) ?? { toStart: [], run: [] };
      b.toStart.push(s.startedAt - s.at);
      b.run.push(ms(e) - s.startedAt);
      byType.set(s.type, b);
    }
    if (e.workflowTaskScheduledEventAttributes) wfTaskScheduledAt = ms(e);
    if (e.workflowTaskCompletedEventAttributes && wfTaskScheduledAt !== undefined) wfTasks.push(ms(e) - wfTaskScheduledAt);
  }
  return {
    activities: Object.fromEntries(
      [...byType].map(([type, b]) => [type, { count: b.run.length, scheduleToStartMs: { mean: mean(b.toStart), p99: pct(b.toStart, 99) }, runMs: { mean: mean(b.run), p99: pct(b.run, 99) } }]),
    ),
    workflowTaskMs: { count: wfTasks.length, mean: mean(wfTasks), p99: pct(wfTasks, 99) },
    events: (history.events ?? []).length,
    /** Per node, its activities in order (ms since epoch). */
    perNode: [...scheduled.values()].reduce((m, x) => {
      if (x.nodeId && x.startedAt !== undefined && x.completedAt !== undefined) {
        m.set(x.nodeId, [...(m.get(x.nodeId) ?? []), { type: x.type, scheduledAt: x.at, startedAt: x.startedAt, completedAt: x.completedAt }]);
      }
      return m;
    }, new Map<string, { type: string; scheduledAt: number; startedAt: number; completedAt: number }[]>()),
  };
}

/**
 * Where a node walk's time goes beyond the agent's own work, mean per node: waiting for activity
 * tasks to start, gaps between one activity's end and the next one's scheduling (workflow tasks),
 * and activity run time beyond what the agent measured (polling, HTTP, the short steps).
 */
function attribution(perNode: Map<string, { type: string; scheduledAt: number; startedAt: number; completedAt: number }[]>, work: Map<string, { drainMs: number; swapMs: number; smokeMs: number }>) {
  const toStart: number[] = [];
  const gaps: number[] = [];
  const excess = new Map<string, number[]>();
  for (const [nodeId, acts] of perNode) {
    const w = work.get(nodeId);
    if (!w) continue;
    acts.sort((x, y) => x.scheduledAt - y.scheduledAt);
    toStart.push(acts.reduce((x, a) => x + (a.startedAt - a.scheduledAt), 0));
    gaps.push(acts.slice(1).reduce((x, a, i) => x + Math.max(0, a.scheduledAt - acts[i].completedAt), 0));
    for (const a of acts) {
      const agent = a.type === 'drainNode' ? w.drainMs : a.type === 'swapModel' ? w.swapMs : a.type === 'smokeCheck' ? w.smokeMs : 0;
      excess.set(a.type, [...(excess.get(a.type) ?? []), a.completedAt - a.startedAt - agent]);
    }
  }
  const run = Object.fromEntries([...excess].map(([t, xs]) => [t, mean(xs)]));
  const runTotal = Object.values(run).reduce((x, y) => x + y, 0);
  return { nodes: toStart.length, scheduleToStartMs: mean(toStart), gapsBetweenActivitiesMs: mean(gaps), runBeyondAgentWorkMs: run, runBeyondAgentWorkTotalMs: runTotal, totalMs: mean(toStart) + mean(gaps) + runTotal };
}

async function main(): Promise<void> {
  const env = await startDevServer();
  const procs: ChildProcess[] = [];
  try {
    const sim = await spawnUntilReady(
      ['scripts/fleet-sim/main.ts', '--boot-seconds', '2', '--inference', '--swap-seconds', a.swap, '--drain-seconds', a.drain,
        '--generation-ms', a['generation-ms'], '--seed', a.seed, '--initial-model', BASE_MODEL],
      { DRYDOCK_AGENT_TOKEN: token },
      /http:\/\/127\.0\.0\.1:\d+/,
    );
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
    // Every agent loads the base model at start (one swap time each).
    const list = await ctl<{ id: string; agentUrl: string }[]>('GET', `/list?pool=${POOL}`);
    const ready = async (url: string) => (await fetch(`${url}/ready`, { headers: { authorization: `Bearer ${token}` } })).status === 200;
    await waitFor(async () => (await Promise.all(list.map((n) => ready(n.agentUrl)))).every(Boolean), 120_000, 'every agent to serve the base model');
    console.log(`${N} simulated nodes serving ${BASE_MODEL} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const worker = await spawnUntilReady(
      ['scripts/fleet-sim/worker.ts'],
      { TEMPORAL_ADDRESS: env.address, DRYDOCK_TASK_QUEUE: TQ, DRYDOCK_AGENT_TOKEN: token, FLEET_SIM_URL: simUrl, FLEET_SIM_POOL: POOL, DRYDOCK_WORKFLOW_BUNDLE: await workflowBundle() },
      /fleet-sim worker: ready/,
    );
    procs.push(worker.proc);
    const wpid = worker.proc.pid!;

    if (WITH_POOL) {
      const spec: FleetPoolSpec = {
        name: POOL,
        minNodes: N,
        maxNodes: N,
        // Probes every 10 s as in pool-scale; by default the pool's budget is the rollout's own.
        health: { probeIntervalSeconds: 10, unhealthyAfter: 2, drainTimeoutSeconds: 30 },
        disruption: { maxUnavailable: POOL_MAX_UNAVAILABLE },
      };
      const pool = await env.client.workflow.start('fleetPool', { taskQueue: TQ, workflowId: `pool/${POOL}`, args: [spec] });
      await waitFor(async () => {
        try {
          const s = await pool.query<PoolStatus>('status');
          return s.phase === 'running' && s.counts.healthy === N;
        } catch {
          return false;
        }
      }, 300_000, 'the pool to adopt every node');
      console.log(`pool workflow running: ${N} healthy nodes, disruption budget ${POOL_MAX_UNAVAILABLE}`);
    }

    const input: RollingUpdateInput = {
      pool: POOL,
      target: { model: TARGET },
      maxUnavailable: MAX_UNAVAILABLE,
      analysis: { intervalSeconds: 0, expect: 'hello', maxLatencyMs: 10_000 },
      drainTimeoutSeconds: 60,
    };
    const id = `rollout/${POOL}/bench-${Date.now()}`;
    const cpu0 = procStats(wpid).cpuS;
    const tStart = Date.now();
    const handle = await env.client.workflow.start('rollingUpdate', { taskQueue: TQ, workflowId: id, args: [input] });
    let result: RolloutResult;
    try {
      const limit = Number(a['timeout-minutes']) * 60_000;
      result = await Promise.race([
        handle.result(),
        // Unref'd: a finished rollout must not keep the process alive until the limit.
        sleep(limit, undefined, { ref: false }).then(async () => {
          const s = await handle.query<RolloutStatus>('status').catch((e: Error) => e.message);
          throw new Error(`rollout not done after ${limit / 60_000} min: ${typeof s === 'string' ? s : `${s.phase}, ${JSON.stringify(s.counts)}, ${s.reason ?? ''}`}`);
        }),
      ]);
    } catch (err) {
      if (err instanceof WorkflowFailedError) console.error(`rollout failed: ${err.cause?.message ?? err.message}`);
      throw err;
    }
    const totalMs = Date.now() - tStart;
    const cpu1 = procStats(wpid).cpuS;
    const st: RolloutStatus = result.status;
    if (result.outcome !== 'succeeded') throw new Error(`rollout ended ${result.outcome}: ${st.reason}`);

    // The ideal, per batch: the slowest node's drain + swap + smoke (within its walk, as the agent
    // measured them), plus the slowest generation of the analysis round after the batch (it checks
    // every updated node at once and waits for all), summed over batches.
    const all = await ctl<NodeTimings[]>('GET', `/timings?pool=${POOL}`);
    const timings = new Map(all.map((t) => [t.nodeId, t]));
    const byNode = new Map(st.nodes.map((n) => [n.id, n]));
    const batches = st.batches.map((ids, i) => {
      const walk = (id: string) => {
        const n = byNode.get(id);
        return [Date.parse(n?.startedAt ?? ''), Date.parse(n?.finishedAt ?? '')] as const;
      };
      const work = ids.map((nodeId) => ({ nodeId, ...nodeWork(timings.get(nodeId)!, ...walk(nodeId)) }));
      const nodeMs = work.map((w) => w.drainMs + w.swapMs + w.smokeMs);
      const slowest = work[nodeMs.indexOf(Math.max(...nodeMs))];
      const started = Math.min(...ids.map((id) => walk(id)[0]));
      const finished = Math.max(...ids.map((id) => walk(id)[1]));
      const analysisAt = Date.parse(st.analyses.find((x) => x.batch === i)?.at ?? '');
      const analysisGens = all.flatMap((t) => t.generations).filter((g) => g.startedAt >= finished && g.startedAt <= analysisAt);
      const analysisMs = Math.max(0, ...analysisGens.map((g) => g.ms));
      return {
        batch: i,
        nodes: ids.length,
        idealMs: Math.max(...nodeMs) + analysisMs,
        slowest: { nodeId: slowest.nodeId, drainMs: slowest.drainMs, swapMs: slowest.swapMs, smokeMs: slowest.smokeMs },
        analysis: { generations: analysisGens.length, slowestMs: analysisMs, wallMs: analysisAt - finished },
        /** First node start to last node finish in this batch (the workflow's timestamps). */
        wallMs: finished - started,
      };
    });
    const idealMs = batches.reduce((x, b) => x + b.idealMs, 0);
    const overhead = totalMs / idealMs - 1;
    const history = await handle.fetchHistory();
    const lat = await activityLatencies(history);
    const work = new Map(st.nodes.map((n) => [n.id, nodeWork(timings.get(n.id)!, Date.parse(n.startedAt ?? ''), Date.parse(n.finishedAt ?? ''))]));
    const attr = attribution(lat.perNode, work);

    const results = {
      nodes: N,
      maxUnavailable: MAX_UNAVAILABLE,
      batches: batches.length,
      poolWorkflow: WITH_POOL,
      poolMaxUnavailable: WITH_POOL ? POOL_MAX_UNAVAILABLE : null,
      poolBudgetUsed: st.poolBudget,
      durations: { swapSeconds: a.swap, drainSeconds: a.drain, generationMs: a['generation-ms'], seed: Number(a.seed) },
      totalS: totalMs / 1000,
      idealS: idealMs / 1000,
      overhead,
      goalOverhead: 0.1,
      perBatchOverheadS: (totalMs - idealMs) / 1000 / batches.length,
      maxDisrupted: st.maxDisrupted,
      workerCpuPercent: (100 * (cpu1 - cpu0)) / (totalMs / 1000),
      historyEvents: lat.events,
      workflowTaskMs: lat.workflowTaskMs,
      activities: lat.activities,
      perNodeOverheadMs: attr,
      perBatch: batches,
      machine: `${cpus().length} cores`,
      at: new Date().toISOString(),
    };
    console.log(`
rollout: ${N} nodes, maxUnavailable ${MAX_UNAVAILABLE} → ${batches.length} batches, analysis once per batch, pool workflow ${WITH_POOL ? `on, budget ${POOL_MAX_UNAVAILABLE}` : 'off'} (used: ${st.poolBudget})
  agent work       swap ${a.swap} s, drain ${a.drain} s, smoke ${a['generation-ms']} ms per node (seed ${a.seed})
  total            ${s2(totalMs)} s
  ideal            ${s2(idealMs)} s   (per batch: slowest node's drain + swap + smoke, summed)
  overhead         ${(overhead * 100).toFixed(1)} %   (goal <= 10 %) ${overhead <= 0.1 ? 'OK' : 'ABOVE GOAL'}; ${s2(totalMs - idealMs)} s = ${s2((totalMs - idealMs) / batches.length)} s per batch
  disruption       max ${st.maxDisrupted} nodes out at once
  control worker   CPU ${results.workerCpuPercent.toFixed(1)} %; history ${lat.events} events, workflow tasks mean ${lat.workflowTaskMs.mean.toFixed(0)} ms (p99 ${lat.workflowTaskMs.p99.toFixed(0)} ms)
  batches          ideal s / node walks s (slowest node: drain + swap + smoke ms; analysis round after the batch)`);
    for (const b of batches) {
      console.log(`    #${String(b.batch).padEnd(3)} ${s2(b.idealMs)} / ${s2(b.wallMs)}   (${b.slowest.drainMs} + ${b.slowest.swapMs} + ${b.slowest.smokeMs}; analysis ${b.analysis.generations} checks, slowest ${b.analysis.slowestMs} ms, round ${b.analysis.wallMs} ms) ${b.nodes} nodes`);
    }
    console.log('  activities       count   schedule→start mean/p99 ms   run mean/p99 ms');
    for (const [type, x] of Object.entries(lat.activities)) {
      console.log(`    ${type.padEnd(20)} ${String(x.count).padStart(4)}   ${x.scheduleToStartMs.mean.toFixed(0).padStart(6)} / ${x.scheduleToStartMs.p99.toFixed(0).padEnd(6)}          ${x.runMs.mean.toFixed(0).padStart(6)} / ${x.runMs.p99.toFixed(0)}`);
    }
    console.log(`  per node walk    overhead beyond agent work, mean ${attr.totalMs.toFixed(0)} ms: waiting to start ${attr.scheduleToStartMs.toFixed(0)} ms, between activities ${attr.gapsBetweenActivitiesMs.toFixed(0)} ms, run beyond agent work ${attr.runBeyondAgentWorkTotalMs.toFixed(0)} ms`);
    console.log(`                   (${Object.entries(attr.runBeyondAgentWorkMs).map(([t, x]) => `${t} ${x.toFixed(0)}`).join(', ')})`);
    const out = a.out ?? join(REPO_ROOT, `scripts/fleet-sim/results/rollout-${N}.json`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
    console.log(`wrote ${out}`);
    if (WITH_POOL) await env.client.workflow.getHandle(`pool/${POOL}`).terminate('benchmark over');
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await env.teardown();
    await sleep(0);
  }
}

await main();

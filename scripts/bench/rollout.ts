/**
 * Rolling update at scale: the real rollingUpdate workflow and a real control worker, with
 * production's worker settings (workers/controlWorker.ts: codec, metrics interceptors, default
 * concurrency), against N simulated nodes (the fleet simulator: one process, one real gpu-agent
 * HTTP server per node, with simulated inference whose swap, drain and smoke durations are drawn
 * per node, seeded).
 *
 *   node --import tsx scripts/bench/rollout.ts [--nodes 100] [--max-unavailable 10%]
 *     [--swap 2-4] [--drain 0.5-2] [--generation-ms 100-300] [--seed 1] [--no-pool]
 *     [--pool-max-unavailable AMOUNT (default: the rollout's)] [--runs 3] [--no-eager | --compare-eager]
 *     [--timeout-minutes 20] [--out FILE] [--download 10-20 [--prefetch 100%]]
 *
 * Each run starts its own dev server, simulator, worker and (default) pool workflow, then rolls a
 * new model across the pool (analysis intervalSeconds 0: one smoke check per batch). A run's
 * figures: the total wall time, the ideal (per batch, the slowest node's agent-side work: drain +
 * swap + smoke, as the simulator measured it, plus the analysis round's slowest generation,
 * summed over the rollout's batches) and the overhead total / ideal − 1 (goal ≤ 10 %). Prints
 * each run, then the median and range over `runs` runs, and the per-batch breakdown and
 * Temporal's per-activity latencies of the median run. The server runs with eager activity
 * execution (workers/serverSettings.ts); `--no-eager` turns it off, `--compare-eager` interleaves
 * runs with and without it and prints the difference. Writes the figures to --out (default
 * scripts/fleet-sim/results/rollout-<N>.json, rollout-<N>-no-eager.json with --no-eager).
 *
 * `--download MIN-MAX` makes the target a remote model (s3://) that takes that many seconds to
 * download onto each node, and interleaves runs with prefetch (`--prefetch`, default 100%) and
 * without (prefetch 0: each node downloads while out of service). For each it reports the seconds
 * every node was out of service (cordon to uncordon, as the simulator saw it) against that node's
 * own drain + load + smoke (goal with prefetch: at most 0.5 s more), and the total against the
 * ideal: the first batch's slowest download (nothing can hide it) plus the batches' ideals (goal ≤ 1.10×).
 * Writes rollout-<N>-download.json by default.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { simulatedModelSha256 } from '../../gpu-agent/inference/simulated.ts';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import type { RollingUpdateInput } from '../../workflows/inputs/rollingUpdate.ts';
import type { RolloutResult, RolloutStatus } from '../../workflows/rollout/api.ts';
import { REPO_ROOT } from '../lib/paths.ts';
import { startDevServer } from '../lib/temporal.ts';
import { waitFor } from '../lib/waitFor.ts';
import { procStats } from './processes.ts';
import { activityLatencies, attribution, batchIdeals, walkWork } from './rolloutHistory.ts';
import type { NodeTimings } from '../fleet-sim/simulator.ts';
import { startSimFleet, waitPoolAdopted } from './simFleet.ts';
import { spread } from './stats.ts';

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
    runs: { type: 'string', default: '3' },
    'no-eager': { type: 'boolean', default: false },
    'compare-eager': { type: 'boolean', default: false },
    'timeout-minutes': { type: 'string', default: '20' },
    out: { type: 'string' },
    download: { type: 'string', default: '0' },
    prefetch: { type: 'string', default: '100%' },
  },
});
const N = Number(a.nodes);
const amount = (raw: string): number | string => (/^\d+$/.test(raw) ? Number(raw) : raw);
const MAX_UNAVAILABLE = amount(a['max-unavailable']);
const WITH_POOL = !a['no-pool'];
const POOL_MAX_UNAVAILABLE = a['pool-max-unavailable'] === undefined ? MAX_UNAVAILABLE : amount(a['pool-max-unavailable']);
const RUNS = Number(a.runs);
if (a['no-eager'] && a['compare-eager']) throw new Error('--no-eager and --compare-eager: give one of them');
if (!(RUNS >= 1)) throw new Error(`--runs: expected a whole number >= 1, got '${a.runs}'`);
const POOL = 'sim';
const TQ = 'rollout-bench';
const BASE_MODEL = '/models/bench-base.gguf';
const DOWNLOADS = a.download !== '0';
const TARGET_URI = DOWNLOADS ? 's3://bench-models/bench-next.gguf' : '/models/bench-next.gguf';
const TARGET = { uri: TARGET_URI, sha256: simulatedModelSha256(TARGET_URI) };
const token = randomBytes(24).toString('hex');

const s2 = (ms: number) => (ms / 1000).toFixed(2);
const pc = (x: number) => `${(x * 100).toFixed(1)} %`;

/** One run on fresh processes: dev server (eager activity execution on or off), simulator, worker, pool, rollout. */
async function oneRun(eager: boolean, prefetch?: number | string) {
  const env = await startDevServer({ dynamicConfig: { 'system.enableActivityEagerExecution': eager } });
  let procs: { kill(signal: NodeJS.Signals): void }[] = [];
  try {
    const t0 = Date.now();
    const fleet = await startSimFleet({
      address: env.address,
      taskQueue: TQ,
      pool: POOL,
      nodes: N,
      token,
      simArgs: ['--boot-seconds', '2', '--inference', '--swap-seconds', a.swap, '--drain-seconds', a.drain, '--generation-ms', a['generation-ms'], '--seed', a.seed, '--initial-model', BASE_MODEL, '--download-seconds', a.download],
      // Every agent loads the base model at start (one swap time each).
      beforeWorker: async (sim) => {
        const list = await sim.list(POOL);
        const ready = async (url: string) => (await fetch(`${url}/ready`, { headers: { authorization: `Bearer ${token}` } })).status === 200;
        await waitFor(async () => (await Promise.all(list.map((n) => ready(n.agentUrl!)))).every(Boolean), 120_000, 'every agent to serve the base model', 200);
      },
    });
    procs = fleet.procs;
    const { sim, workerPid: wpid } = fleet;
    console.log(`  ${N} simulated nodes serving ${BASE_MODEL}, worker ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    if (WITH_POOL) {
      const spec: FleetPoolSpec = {
        name: POOL,
        minNodes: N,
        maxNodes: N,
        // Probes every 10 s as in pool-scale; by default the pool's budget is the rollout's own.
        health: { probeIntervalSeconds: 10, unhealthyAfter: 2, drainTimeoutSeconds: 30 },
        disruption: { maxUnavailable: POOL_MAX_UNAVAILABLE },
      };
      await waitPoolAdopted(await env.client.workflow.start('fleetPool', { taskQueue: TQ, workflowId: `pool/${POOL}`, args: [spec] }), N);
    }

    const input: RollingUpdateInput = {
      pool: POOL,
      target: { model: TARGET },
      maxUnavailable: MAX_UNAVAILABLE,
      analysis: { intervalSeconds: 0, expect: 'hello', maxLatencyMs: 10_000 },
      drainTimeoutSeconds: 60,
      ...(prefetch === undefined ? {} : { prefetch }),
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

    const all = await sim.timings(POOL);
    const batches = batchIdeals(st, all, TARGET.sha256);
    // With prefetch the first batch must wait for its own downloads: nothing can hide the slowest of them.
    const firstDownloadMs = prefetch !== undefined && amount(String(prefetch)) !== 0 ? Math.max(0, ...(st.batches[0] ?? []).map((id) => all.find((t) => t.nodeId === id)!.durations.downloadSeconds * 1000)) : 0;
    const idealMs = firstDownloadMs + batches.reduce((x, b) => x + b.idealMs, 0);
    const oos = outOfService(st, all, tStart);
    const lat = activityLatencies(await handle.fetchHistory());
    const attr = attribution(lat.perNode, walkWork(st, all, TARGET.sha256));
    if (WITH_POOL) await env.client.workflow.getHandle(`pool/${POOL}`).terminate('benchmark over');
    return {
      eager,
      prefetch: prefetch ?? null,
      outOfService: oos,
      firstDownloadS: firstDownloadMs / 1000,
      totalS: totalMs / 1000,
      idealS: idealMs / 1000,
      overhead: totalMs / idealMs - 1,
      perBatchOverheadS: (totalMs - idealMs) / 1000 / batches.length,
      batches: batches.length,
      poolBudgetUsed: st.poolBudget,
      maxDisrupted: st.maxDisrupted,
      workerCpuPercent: (100 * (cpu1 - cpu0)) / (totalMs / 1000),
      historyEvents: lat.events,
      workflowTaskMs: lat.workflowTaskMs,
      activities: lat.activities,
      perNodeOverheadMs: attr,
      perBatch: batches,
    };
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await env.teardown();
  }
}
type Run = Awaited<ReturnType<typeof oneRun>>;

/**
 * Per updated node: seconds out of service during the rollout (cordon to uncordon, as the simulator
 * measured it) and how much longer that was than its own drain + load + smoke.
 */
function outOfService(st: RolloutStatus, all: NodeTimings[], since: number) {
  const work = walkWork(st, all, TARGET.sha256);
  const per = st.nodes
    .filter((n) => n.state === 'done')
    .map((n) => {
      const t = all.find((x) => x.nodeId === n.id)!;
      const outMs = t.outOfService.filter((o) => o.from >= since).reduce((x, o) => x + o.ms, 0);
      const w = work.get(n.id)!;
      return { nodeId: n.id, outMs, workMs: w.drainMs + w.swapMs + w.smokeMs, excessMs: outMs - (w.drainMs + w.swapMs + w.smokeMs), downloadS: t.durations.downloadSeconds };
    });
  const xs = (f: (p: (typeof per)[number]) => number) => per.map(f).sort((x, y) => x - y);
  const mean = (v: number[]) => v.reduce((x, y) => x + y, 0) / Math.max(v.length, 1);
  const q = (v: number[], p: number) => v[Math.min(v.length - 1, Math.floor(p * v.length))] ?? NaN;
  return {
    nodes: per.length,
    outS: { mean: mean(xs((p) => p.outMs)) / 1000, p50: q(xs((p) => p.outMs), 0.5) / 1000, max: q(xs((p) => p.outMs), 1) / 1000 },
    excessS: { mean: mean(xs((p) => p.excessMs)) / 1000, p50: q(xs((p) => p.excessMs), 0.5) / 1000, max: q(xs((p) => p.excessMs), 1) / 1000 },
    withinHalfSecond: per.filter((p) => p.excessMs <= 500).length,
  };
}

/** Median and range of each figure over a mode's runs, and the run whose overhead is the median (its details are printed). */
function summarize(runs: Run[]) {
  const byOverhead = [...runs].sort((x, y) => x.overhead - y.overhead);
  return {
    runs: runs.length,
    totalS: spread(runs.map((r) => r.totalS)),
    idealS: spread(runs.map((r) => r.idealS)),
    overhead: spread(runs.map((r) => r.overhead)),
    perBatchOverheadS: spread(runs.map((r) => r.perBatchOverheadS)),
    workerCpuPercent: spread(runs.map((r) => r.workerCpuPercent)),
    maxDisrupted: Math.max(...runs.map((r) => r.maxDisrupted)),
    each: runs.map((r) => ({ totalS: r.totalS, idealS: r.idealS, overhead: r.overhead, workerCpuPercent: r.workerCpuPercent, historyEvents: r.historyEvents })),
    medianRun: byOverhead[Math.floor((byOverhead.length - 1) / 2)],
  };
}
type Summary = ReturnType<typeof summarize>;

function printSummary(name: string, s: Summary): void {
  const r = s.medianRun;
  const range = (x: { min: number; max: number }, f: (v: number) => string) => `${f(x.min)} – ${f(x.max)}`;
  console.log(`
rollout (${name}): ${N} nodes, maxUnavailable ${MAX_UNAVAILABLE} → ${r.batches} batches, analysis once per batch, pool workflow ${WITH_POOL ? `on, budget ${POOL_MAX_UNAVAILABLE}` : 'off'} (used: ${r.poolBudgetUsed})
  agent work       swap ${a.swap} s, drain ${a.drain} s, smoke ${a['generation-ms']} ms per node (seed ${a.seed})
  runs             ${s.runs}: median (min – max)
  total            ${s.totalS.median.toFixed(2)} s   (${range(s.totalS, (v) => v.toFixed(2))} s)
  ideal            ${s.idealS.median.toFixed(2)} s   (${range(s.idealS, (v) => v.toFixed(2))} s; per batch: slowest node's drain + swap + smoke, summed)
  overhead         ${pc(s.overhead.median)}   (${range(s.overhead, pc)}; goal <= 10 %) ${s.overhead.median <= 0.1 ? 'OK' : 'ABOVE GOAL'}; ${s.perBatchOverheadS.median.toFixed(2)} s per batch
  disruption       max ${s.maxDisrupted} nodes out at once
  control worker   CPU ${s.workerCpuPercent.median.toFixed(1)} %
  median run       ${r.totalS.toFixed(2)} s; history ${r.historyEvents} events, workflow tasks mean ${r.workflowTaskMs.mean.toFixed(0)} ms (p99 ${r.workflowTaskMs.p99.toFixed(0)} ms)
  batches          ideal s / node walks s (slowest node: drain + swap + smoke ms; analysis round after the batch)`);
  for (const b of r.perBatch) {
    console.log(`    #${String(b.batch).padEnd(3)} ${s2(b.idealMs)} / ${s2(b.wallMs)}   (${b.slowest.drainMs} + ${b.slowest.swapMs} + ${b.slowest.smokeMs}; analysis ${b.analysis.generations} checks, slowest ${b.analysis.slowestMs} ms, round ${b.analysis.wallMs} ms) ${b.nodes} nodes`);
  }
  console.log('  activities       count   schedule→start mean/p99 ms   run mean/p99 ms');
  for (const [type, x] of Object.entries(r.activities)) {
    console.log(`    ${type.padEnd(20)} ${String(x.count).padStart(4)}   ${x.scheduleToStartMs.mean.toFixed(0).padStart(6)} / ${x.scheduleToStartMs.p99.toFixed(0).padEnd(6)}          ${x.runMs.mean.toFixed(0).padStart(6)} / ${x.runMs.p99.toFixed(0)}`);
  }
  const attr = r.perNodeOverheadMs;
  console.log(`  per node walk    overhead beyond agent work, mean ${attr.totalMs.toFixed(0)} ms: waiting to start ${attr.scheduleToStartMs.toFixed(0)} ms, between activities ${attr.gapsBetweenActivitiesMs.toFixed(0)} ms, run beyond agent work ${attr.runBeyondAgentWorkTotalMs.toFixed(0)} ms`);
  console.log(`                   (${Object.entries(attr.runBeyondAgentWorkMs).map(([t, x]) => `${t} ${x.toFixed(0)}`).join(', ')})`);
}

async function main(): Promise<void> {
  const modes = a['compare-eager'] ? [true, false] : [!a['no-eager']];
  const runs = new Map<boolean, Run[]>(modes.map((m) => [m, []]));
  const started = Date.now();
  // Interleaved (eager, no-eager, eager, …), so load from other processes skews both modes alike.
  for (let i = 0; i < RUNS; i++) {
    for (const eager of modes) {
      console.log(`run ${i + 1}/${RUNS}, eager activity execution ${eager ? 'on' : 'off'}`);
      const r = await oneRun(eager);
      runs.get(eager)!.push(r);
      console.log(`  total ${r.totalS.toFixed(2)} s, ideal ${r.idealS.toFixed(2)} s, overhead ${pc(r.overhead)}`);
    }
  }
  const eager = runs.has(true) ? summarize(runs.get(true)!) : undefined;
  const noEager = runs.has(false) ? summarize(runs.get(false)!) : undefined;
  if (eager) printSummary('eager activity execution on', eager);
  if (noEager) printSummary('eager activity execution off', noEager);
  const gain = eager && noEager
    ? { overheadPointsSaved: (noEager.overhead.median - eager.overhead.median) * 100, totalRatio: eager.totalS.median / noEager.totalS.median }
    : undefined;
  if (gain) {
    console.log(`\neager activity execution: overhead ${pc(noEager!.overhead.median)} → ${pc(eager!.overhead.median)} (median of ${RUNS} each), total ${noEager!.totalS.median.toFixed(2)} → ${eager!.totalS.median.toFixed(2)} s (${gain.totalRatio.toFixed(3)}×)`);
  }
  const results = {
    nodes: N,
    maxUnavailable: MAX_UNAVAILABLE,
    poolWorkflow: WITH_POOL,
    poolMaxUnavailable: WITH_POOL ? POOL_MAX_UNAVAILABLE : null,
    durations: { swapSeconds: a.swap, drainSeconds: a.drain, generationMs: a['generation-ms'], seed: Number(a.seed) },
    runsPerMode: RUNS,
    goalOverhead: 0.1,
    eager,
    noEager,
    eagerGain: gain,
    wallSeconds: (Date.now() - started) / 1000,
    machine: `${cpus().length} cores`,
    at: new Date().toISOString(),
  };
  const out = a.out ?? join(REPO_ROOT, `scripts/fleet-sim/results/rollout-${N}${modes.length === 1 && !modes[0] ? '-no-eager' : ''}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
  console.log(`wrote ${out} (${results.wallSeconds.toFixed(0)} s in all)`);
}

/** `--download`: interleaved runs with and without prefetch, out of service per node and total vs ideal for each. */
async function downloadMain(): Promise<void> {
  const PREFETCH = amount(a.prefetch);
  const modes: { name: string; prefetch: number | string }[] = [
    { name: `prefetch ${PREFETCH}`, prefetch: PREFETCH },
    { name: 'no prefetch (download while out of service)', prefetch: 0 },
  ];
  const started = Date.now();
  const byMode = new Map<string, Run[]>(modes.map((m) => [m.name, []]));
  for (let i = 0; i < RUNS; i++) {
    for (const m of modes) {
      console.log(`run ${i + 1}/${RUNS}, ${m.name}`);
      const r = await oneRun(!a['no-eager'], m.prefetch);
      byMode.get(m.name)!.push(r);
      console.log(`  total ${r.totalS.toFixed(2)} s, ideal ${r.idealS.toFixed(2)} s (${(r.totalS / r.idealS).toFixed(3)}×), out of service per node mean ${r.outOfService.outS.mean.toFixed(2)} s, max ${r.outOfService.outS.max.toFixed(2)} s`);
    }
  }
  const summary = modes.map((m) => {
    const rs = byMode.get(m.name)!;
    const med = (f: (r: Run) => number) => spread(rs.map(f)).median;
    return {
      mode: m.name,
      prefetch: m.prefetch,
      totalS: med((r) => r.totalS),
      idealS: med((r) => r.idealS),
      totalOverIdeal: med((r) => r.totalS / r.idealS),
      firstDownloadS: med((r) => r.firstDownloadS),
      outOfServiceS: { mean: med((r) => r.outOfService.outS.mean), p50: med((r) => r.outOfService.outS.p50), max: med((r) => r.outOfService.outS.max) },
      beyondDrainLoadSmokeS: { mean: med((r) => r.outOfService.excessS.mean), p50: med((r) => r.outOfService.excessS.p50), max: med((r) => r.outOfService.excessS.max) },
      nodesWithinHalfSecond: med((r) => r.outOfService.withinHalfSecond),
      nodes: rs[0].outOfService.nodes,
      historyEvents: med((r) => r.historyEvents),
      batches: rs[0].batches,
      runs: rs.map((r) => ({ totalS: r.totalS, idealS: r.idealS, outOfService: r.outOfService })),
    };
  });
  const [on, off] = summary;
  console.log(`
rollout with model downloads: ${N} nodes, maxUnavailable ${MAX_UNAVAILABLE} → ${on.batches} batches; download ${a.download} s, swap ${a.swap} s, drain ${a.drain} s, smoke ${a['generation-ms']} ms per node (seed ${a.seed}); median of ${RUNS} run(s) each`);
  for (const x of summary) {
    console.log(`  ${x.mode}
    total            ${x.totalS.toFixed(2)} s vs ideal ${x.idealS.toFixed(2)} s (first batch's slowest download ${x.firstDownloadS.toFixed(2)} s + the batches' drain + swap + smoke + analysis): ${x.totalOverIdeal.toFixed(3)}× (goal ≤ 1.10× with prefetch)
    out of service   per node mean ${x.outOfServiceS.mean.toFixed(2)} s, median ${x.outOfServiceS.p50.toFixed(2)} s, max ${x.outOfServiceS.max.toFixed(2)} s
    beyond its own   drain + load + smoke: mean ${x.beyondDrainLoadSmokeS.mean.toFixed(2)} s, max ${x.beyondDrainLoadSmokeS.max.toFixed(2)} s; ${x.nodesWithinHalfSecond}/${x.nodes} nodes within 0.5 s (goal: all, with prefetch)
    history          ${x.historyEvents} events`);
  }
  console.log(`  prefetch vs none: out of service per node ${off.outOfServiceS.mean.toFixed(2)} → ${on.outOfServiceS.mean.toFixed(2)} s (${(on.outOfServiceS.mean / off.outOfServiceS.mean).toFixed(3)}×), total ${off.totalS.toFixed(2)} → ${on.totalS.toFixed(2)} s (${(on.totalS / off.totalS).toFixed(3)}×)`);
  const out = a.out ?? join(REPO_ROOT, `scripts/fleet-sim/results/rollout-${N}-download.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ nodes: N, maxUnavailable: MAX_UNAVAILABLE, poolWorkflow: WITH_POOL, durations: { downloadSeconds: a.download, swapSeconds: a.swap, drainSeconds: a.drain, generationMs: a['generation-ms'], seed: Number(a.seed) }, runsPerMode: RUNS, goals: { totalOverIdeal: 1.1, beyondDrainLoadSmokeS: 0.5 }, modes: summary, wallSeconds: (Date.now() - started) / 1000, machine: `${cpus().length} cores`, at: new Date().toISOString() }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

await (DOWNLOADS ? downloadMain() : main());

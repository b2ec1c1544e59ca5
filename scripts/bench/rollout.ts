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
 *     [--timeout-minutes 20] [--out FILE]
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
const TARGET = { uri: '/models/bench-next.gguf', sha256: simulatedModelSha256('/models/bench-next.gguf') };
const token = randomBytes(24).toString('hex');

const s2 = (ms: number) => (ms / 1000).toFixed(2);
const pc = (x: number) => `${(x * 100).toFixed(1)} %`;

/** One run on fresh processes: dev server (eager activity execution on or off), simulator, worker, pool, rollout. */
async function oneRun(eager: boolean) {
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
      simArgs: ['--boot-seconds', '2', '--inference', '--swap-seconds', a.swap, '--drain-seconds', a.drain, '--generation-ms', a['generation-ms'], '--seed', a.seed, '--initial-model', BASE_MODEL],
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
    const idealMs = batches.reduce((x, b) => x + b.idealMs, 0);
    const lat = activityLatencies(await handle.fetchHistory());
    const attr = attribution(lat.perNode, walkWork(st, all, TARGET.sha256));
    if (WITH_POOL) await env.client.workflow.getHandle(`pool/${POOL}`).terminate('benchmark over');
    return {
      eager,
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

await main();

/**
 * Pool at scale: the real fleetPool workflow and a real control worker, with production's worker
 * settings (its provider is the fleet simulator: one process, one real gpu-agent HTTP server per
 * node) against N nodes.
 *
 *   node --import tsx scripts/bench/pool-scale.ts [--nodes 200] [--probe 10] [--faults 20]
 *     [--spread 180] [--rack-size 50] [--burst 0.4] [--max-unavailable 10] [--seed 1]
 *     [--breaker-fraction 0.08] [--breaker-window 60] [--rest 60] [--reboots 5] [--out FILE]
 *
 * Phase 1: `faults` fatal XIDs on nodes outside rack 0, one in each of `faults` equal slices of
 * `spread` seconds (node and time within the slice drawn from `seed`); every one must be detected
 * and replaced. Phase 2: a correlated burst on `burst` of rack 0. The breaker limit is fixed (not
 * derived from the burst): `breaker-fraction` of the pool going bad within `breaker-window`
 * seconds; the defaults (8 % in 60 s) sit above the default background (at most ~4 % of 200 nodes
 * in any 60 s) and below the default burst (20 of 200 nodes, 10 %). The run expects the breaker
 * to stay closed through phase 1; after the burst, open when the burst alone exceeds the limit,
 * closed (and the burst's nodes replaced) when the burst plus the background faults still in the
 * window do not, either in between.
 *
 * Health events (the watch, quarantine, the ladder): phase 1's faults are XID 48 (double-bit
 * ECC: the ladder replaces at once); time to quarantine is fault → node cordoned at its agent
 * (polled every 50 ms). Before phase 1, `rest` seconds at rest measure history growth with
 * nothing happening; after it, `reboots` XID 79 faults (reboot first) measure time back in service
 * after a reboot. History events per hour are reported at rest, through the background faults and
 * through the burst.
 *
 * Prints time-to-detect and time-to-replace (p50/p99 over every injected fault), the probe
 * activity's duration, worker CPU and RSS, history events per hour and per probe interval, the
 * most nodes disrupted at once (≤ maxUnavailable) and the breaker. Exits 1 naming what failed: a
 * fault not detected or not replaced in time, the budget exceeded, the breaker not as expected.
 * Writes the figures to --out (default scripts/fleet-sim/results/pool-scale-<N>.json).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { mulberry32 } from '../../activities/training/random.ts';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import type { PoolStatus } from '../../workflows/pool/api.ts';
import { REPO_ROOT } from '../lib/paths.ts';
import { startDevServer } from '../lib/temporal.ts';
import { waitFor } from '../lib/waitFor.ts';
import { procStats } from './processes.ts';
import { startSimFleet, waitPoolAdopted } from './simFleet.ts';
import { pct } from './stats.ts';

const { values: a } = parseArgs({
  options: {
    nodes: { type: 'string', default: '200' },
    probe: { type: 'string', default: '10' },
    faults: { type: 'string', default: '20' },
    spread: { type: 'string', default: '180' },
    'rack-size': { type: 'string', default: '50' },
    burst: { type: 'string', default: '0.4' },
    'max-unavailable': { type: 'string', default: '10' },
    seed: { type: 'string', default: '1' },
    'breaker-fraction': { type: 'string', default: '0.08' },
    'breaker-window': { type: 'string', default: '60' },
    'replace-timeout': { type: 'string', default: '240' },
    rest: { type: 'string', default: '60' },
    reboots: { type: 'string', default: '5' },
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
const SEED = Number(a.seed);
const BREAKER = { maxUnhealthyFraction: Number(a['breaker-fraction']), windowSeconds: Number(a['breaker-window']) };
const REPLACE_TIMEOUT_S = Number(a['replace-timeout']);
const POOL = 'sim';
const TQ = 'pool-scale';
const REST_S = Number(a.rest);
const REBOOTS = Number(a.reboots);
/** Double-bit ECC: a bad part, replaced at once by the default ladder. */
const FATAL = { kind: 'xid', gpu: 0, code: 48 } as const;
/** Fallen off the bus: rebooted first by the default ladder. */
const BUS = { kind: 'xid', gpu: 0, code: 79 } as const;
const token = randomBytes(24).toString('hex');
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');

async function main(): Promise<number> {
  const env = await startDevServer();
  const failures: string[] = [];
  const t0 = Date.now();
  const fleet = await startSimFleet({ address: env.address, taskQueue: TQ, pool: POOL, nodes: N, token, simArgs: ['--rack-size', String(RACK), '--boot-seconds', '2'] }).catch(async (err) => {
    await env.teardown();
    throw err;
  });
  const { sim, procs, workerPid: wpid } = fleet;
  try {
    console.log(`${N} simulated nodes up and the worker ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const spec: FleetPoolSpec = {
      name: POOL,
      minNodes: N,
      maxNodes: N,
      health: { probeIntervalSeconds: PROBE, unhealthyAfter: 2, drainTimeoutSeconds: 30 },
      disruption: { maxUnavailable: MAX_UNAVAILABLE, breaker: BREAKER },
    };
    const handle = await env.client.workflow.start('fleetPool', { taskQueue: TQ, workflowId: `pool/${POOL}`, args: [spec] });
    const status = () => handle.query<PoolStatus>('status');
    await waitPoolAdopted(handle, N);
    console.log(`pool running: ${N} healthy nodes, breaker limit ${(BREAKER.maxUnhealthyFraction * 100).toFixed(1)} % in ${BREAKER.windowSeconds} s (fixed)`);

    // Observe: every status event (deduplicated), max leases, breaker, worker RSS.
    const seen = new Map<string, { at: number; nodeId?: string; message: string }>();
    let maxLeases = 0;
    /** How long each probe activity took (start → all agents answered), by probe start. */
    const probeMs = new Map<string, number>();
    let maxRss = 0;
    let breakerOpenedAt: number | undefined;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        try {
          const s = await status();
          maxLeases = Math.max(maxLeases, s.leases.length, s.maxDisrupted);
          if (s.breaker.open) breakerOpenedAt ??= Date.now();
          if (s.lastProbe && !probeMs.has(s.lastProbe.at)) probeMs.set(s.lastProbe.at, s.lastProbe.tookMs);
          for (const e of s.events) seen.set(`${e.at}|${e.nodeId}|${e.message}`, { at: Date.parse(e.at), nodeId: e.nodeId, message: e.message });
        } catch {
          /* between runs (continue-as-new) */
        }
        maxRss = Math.max(maxRss, procStats(wpid).rssMiB);
        await sleep(500);
      }
    })();
    const historyNow = async () => {
      let n = 0;
      for await (const w of env.client.workflow.list({ query: `WorkflowId = 'pool/${POOL}'` })) n += (await env.client.workflow.getHandle(w.workflowId, w.runId).describe()).historyLength;
      return n;
    };
    const perHour = (events: number, ms: number) => (events * 3_600_000) / ms;
    // At rest: nothing happens; history should grow only with probes, not with nodes.
    const rest0 = { at: Date.now(), events: await historyNow() };
    await sleep(REST_S * 1000);
    const rest1 = { at: Date.now(), events: await historyNow() };
    const historyAtRestPerHour = perHour(rest1.events - rest0.events, rest1.at - rest0.at);
    console.log(`at rest for ${REST_S} s: ${historyAtRestPerHour.toFixed(0)} history events/hour`);

    // Quarantine: fault injected → cordoned at the agent, polled every 50 ms.
    const urls = new Map((await sim.list(POOL)).map((n) => [n.id, n.agentUrl!]));
    const quarantined = new Map<string, number>();
    const watchCordon = (id: string, from: number) =>
      (async () => {
        const deadline = from + 60_000;
        while (Date.now() < deadline) {
          const r = await fetch(`${urls.get(id)}/drain`, { headers: { authorization: `Bearer ${token}` } }).catch(() => undefined);
          if (r?.ok && ((await r.json()) as { state: string }).state !== 'active') {
            quarantined.set(id, (Date.now() - from) / 1000);
            return;
          }
          await sleep(50);
        }
      })();
    const cordonWatchers: Promise<void>[] = [];
    const cpu0 = procStats(wpid).cpuS;
    const tStart = Date.now();
    const hist0 = await historyNow();
    const replacedOf = (id: string) => [...seen.values()].find((e) => e.nodeId === id && e.message.startsWith('replaced by'));
    const detectedOf = (id: string) => [...seen.values()].filter((e) => e.nodeId === id && e.message.startsWith('unhealthy')).sort((x, y) => x.at - y.at)[0];
    const waitReplaced = async (ids: string[], what: string) => {
      await waitFor(() => ids.every((id) => replacedOf(id)), REPLACE_TIMEOUT_S * 1000, what).catch(() => {
        const missing = ids.filter((id) => !replacedOf(id));
        failures.push(`${missing.length} of ${ids.length} ${what} not replaced within ${REPLACE_TIMEOUT_S} s: ${missing.join(', ')}`);
      });
    };

    // Phase 1: background fatal faults, one per time slice, seeded.
    const rand = mulberry32(SEED);
    const burstRack = 0;
    const candidates = (await sim.list(POOL)).filter((n) => n.tags.rack !== String(burstRack)).map((n) => n.id);
    const injected = new Map<string, number>();
    const times = Array.from({ length: FAULTS }, (_, i) => (SPREAD * 1000 * (i + rand())) / FAULTS);
    for (const at of times) {
      await sleep(Math.max(0, tStart + at - Date.now()));
      const id = candidates.splice(Math.floor(rand() * candidates.length), 1)[0];
      injected.set(id, Date.now());
      await sim.fault(id, FATAL);
      cordonWatchers.push(watchCordon(id, injected.get(id)!));
    }
    console.log(`${FAULTS} faults injected over ${SPREAD} s (seed ${SEED}); waiting for their replacements`);
    await waitReplaced([...injected.keys()], 'background faults');
    await Promise.all(cordonWatchers);
    const tBackground = Date.now();
    const histBackground = await historyNow();

    // Reboots: XID 79 on a few nodes; the ladder reboots them and they come back in service (the same node).
    const rebootBack = new Map<string, number>();
    const rebootNodes = candidates.splice(0, REBOOTS);
    const rebootAt = new Map<string, number>();
    for (const id of rebootNodes) {
      rebootAt.set(id, Date.now());
      await sim.fault(id, BUS);
    }
    await waitFor(
      async () => {
        const st = await status().catch(() => undefined);
        for (const i of st?.incidents?.recent ?? []) {
          if (rebootAt.has(i.nodeId) && i.outcome === 'back-in-service' && i.closedAt && !rebootBack.has(i.nodeId)) rebootBack.set(i.nodeId, (Date.parse(i.closedAt) - rebootAt.get(i.nodeId)!) / 1000);
        }
        return rebootBack.size === rebootNodes.length;
      },
      REPLACE_TIMEOUT_S * 1000,
      'rebooted nodes back in service',
    ).catch(() => failures.push(`${rebootNodes.length - rebootBack.size} of ${rebootNodes.length} rebooted nodes not back in service within ${REPLACE_TIMEOUT_S} s`));
    const breakerBeforeBurst = breakerOpenedAt !== undefined;
    if (breakerBeforeBurst) failures.push(`the breaker opened during the background faults (${(await status()).breaker.reason}), below its limit`);

    // Phase 2: correlated burst on one rack.
    const rack = await sim.rack(POOL, burstRack);
    const burstNodes = rack.slice(0, Math.round(rack.length * BURST));
    const tBurst = Date.now();
    // The breaker counts distinct nodes gone bad in its window: the burst, and background faults still
    // in it (counted generously: a fault is seen up to two probe intervals after its injection).
    const backgroundInWindow = [...injected.values()].filter((at) => at > tBurst - (BREAKER.windowSeconds + 2 * PROBE) * 1000).length;
    const expected: 'open' | 'closed' | 'either' =
      burstNodes.length / N > BREAKER.maxUnhealthyFraction ? 'open' : (burstNodes.length + backgroundInWindow) / N <= BREAKER.maxUnhealthyFraction ? 'closed' : 'either';
    const expectOpen = expected === 'open';
    await Promise.all(burstNodes.map((id) => sim.fault(id, FATAL)));
    console.log(`burst: ${burstNodes.length} nodes of rack ${burstRack} fatal at once (${((100 * burstNodes.length) / N).toFixed(1)} % of the pool, ${backgroundInWindow} background faults in the window: breaker expected ${expected})`);
    if (expected === 'closed') await waitReplaced(burstNodes, 'burst nodes (breaker closed)');
    else await sleep((PROBE * 3 + 5) * 1000);
    const after = await status();
    const tEnd = Date.now();
    const histEnd = await historyNow();
    polling = false;
    await poll;
    const cpu1 = procStats(wpid).cpuS;
    if (!breakerBeforeBurst && expected !== 'either' && after.breaker.open !== expectOpen) {
      failures.push(`after the burst the breaker is ${after.breaker.open ? `open (${after.breaker.reason})` : 'closed'}, expected ${expected}`);
    }

    const detect: number[] = [];
    const replace: number[] = [];
    for (const [id, at] of injected) {
      const d = detectedOf(id);
      if (d) detect.push((d.at - at) / 1000);
      const r = replacedOf(id);
      if (r) replace.push((r.at - at) / 1000);
    }
    const undetected = [...injected.keys()].filter((id) => !detectedOf(id));
    if (undetected.length) failures.push(`${undetected.length} background faults never detected: ${undetected.join(', ')}`);
    if (maxLeases > MAX_UNAVAILABLE) failures.push(`${maxLeases} nodes disrupted at once, above maxUnavailable ${MAX_UNAVAILABLE}`);
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
      seed: SEED,
      detectedOf: detect.length,
      replacedOf: replace.length,
      timeToDetectS: { p50: pct(detect, 50), p99: pct(detect, 99), goalP99: 2 },
      timeToReplaceS: { p50: pct(replace, 50), p99: pct(replace, 99) },
      timeToQuarantineS: { p50: pct([...quarantined.values()], 50), p99: pct([...quarantined.values()], 99), goalP99: 3, of: quarantined.size },
      backInServiceAfterRebootS: { p50: pct([...rebootBack.values()], 50), p99: pct([...rebootBack.values()], 99), of: rebootBack.size },
      historyEventsPerHourAtRest: historyAtRestPerHour,
      historyEventsPerHourBackground: perHour(histBackground - hist0, tBackground - tStart),
      historyEventsPerHourBurst: perHour(histEnd - histBackground, tEnd - tBackground),
      probeActivityMs: { p50: pct([...probeMs.values()], 50), max: Math.max(...probeMs.values()) },
      workerCpuPercent: (100 * (cpu1 - cpu0)) / ((tEnd - tStart) / 1000),
      workerMaxRssMiB: maxRss,
      historyEventsPerHour: historyEvents / hours,
      historyEventsPerProbeInterval: historyEvents / intervals,
      runs,
      maxDisrupted: maxLeases,
      maxUnavailable: MAX_UNAVAILABLE,
      breakerLimit: BREAKER,
      burst: {
        nodes: burstNodes.length,
        fraction: burstNodes.length / N,
        backgroundFaultsInWindow: backgroundInWindow,
        breakerExpected: expected,
        breakerOpened: after.breaker.open,
        openedBeforeBurst: breakerBeforeBurst,
        reason: after.breaker.reason,
        secondsAfterBurst: (tEnd - tBurst) / 1000,
      },
      wallSeconds: (tEnd - t0) / 1000,
      failures,
      machine: `${cpus().length} cores`,
      at: new Date().toISOString(),
    };
    console.log(`
pool-scale: ${N} nodes, probe every ${PROBE} s, ${FAULTS} fatal faults over ${SPREAD} s (seed ${SEED})
  time to detect   p50 ${f1(results.timeToDetectS.p50)} s   p99 ${f1(results.timeToDetectS.p99)} s   (goal p99 <= 2 s with the watch; ${detect.length}/${FAULTS} seen)
  probe activity   p50 ${f1(results.probeActivityMs.p50)} ms   max ${f1(results.probeActivityMs.max)} ms (all ${N} agents, from the worker)
  time to quarantine p50 ${f1(results.timeToQuarantineS.p50)} s   p99 ${f1(results.timeToQuarantineS.p99)} s   (goal p99 <= 3 s; fault → cordoned at the agent; ${quarantined.size}/${FAULTS})
  time to replace  p50 ${f1(results.timeToReplaceS.p50)} s   p99 ${f1(results.timeToReplaceS.p99)} s   (${replace.length}/${FAULTS} replaced; back in service with the replacement)
  reboot rung      back in service p50 ${f1(results.backInServiceAfterRebootS.p50)} s   p99 ${f1(results.backInServiceAfterRebootS.p99)} s   (${rebootBack.size}/${REBOOTS})
  history rate     at rest ${historyAtRestPerHour.toFixed(0)}/h · background faults ${results.historyEventsPerHourBackground.toFixed(0)}/h · reboots + burst ${results.historyEventsPerHourBurst.toFixed(0)}/h
  control worker   CPU ${f1(results.workerCpuPercent)} %   max RSS ${f1(maxRss)} MiB
  history          ${results.historyEventsPerHour.toFixed(0)} events/hour = ${results.historyEventsPerProbeInterval.toFixed(1)} per probe interval for the whole pool; ${runs} run(s)
  disruption       max ${maxLeases} nodes disrupted at once (maxUnavailable ${MAX_UNAVAILABLE}) ${maxLeases <= MAX_UNAVAILABLE ? 'OK' : 'VIOLATED'}
  breaker          limit ${(BREAKER.maxUnhealthyFraction * 100).toFixed(1)} % in ${BREAKER.windowSeconds} s; ${breakerBeforeBurst ? 'OPENED during the background' : 'closed through the background'}
  burst            ${burstNodes.length} nodes of one rack: breaker ${after.breaker.open ? `OPENED (${after.breaker.reason})` : 'stayed closed'}, expected ${expected}
  wall             ${f1(results.wallSeconds)} s from the simulator's start`);
    const out = a.out ?? join(REPO_ROOT, `scripts/fleet-sim/results/pool-scale-${N}.json`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
    console.log(`wrote ${out}`);
    await handle.terminate('benchmark over');
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await env.teardown();
  }
  if (failures.length) {
    console.error(`\npool-scale FAILED:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
    return 1;
  }
  console.log('pool-scale: every check passed');
  return 0;
}

process.exitCode = await main();

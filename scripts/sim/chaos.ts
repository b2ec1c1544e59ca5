/**
 * Chaos mode: from a seed and a duration, random node faults, provider faults, worker SIGKILLs and
 * Temporal restarts over a pool, rollouts, backups and training jobs running together, with the
 * invariants checked every second, then convergence after the storm (faults cleared, a latched
 * breaker resumed by the "operator"). Every violation carries the seed, the time and the invariant.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { mulberry32 } from '../../activities/training/random.ts';
import { simulatedModelSha256 } from '../../gpu-agent/inference/simulated.ts';
import { AgentClient } from '../../activities/agentClient.ts';
import { backupWorkflowId, fleetPoolWorkflowId, restoreWorkflowId, rollingUpdateWorkflowId, trainingJobWorkflowId } from '../../workflows/common/ids.ts';
import type { PoolStatus } from '../../workflows/pool/api.ts';
import type { RolloutStatus } from '../../workflows/rollout/api.ts';
import { TERMINAL } from '../../workflows/rollout/state.ts';
import type { BackupResult } from '../../workflows/backup.ts';
import type { TrainingJobResult } from '../../workflows/trainingJob.ts';
import { historyFacts, liveNodes } from './observe.ts';
import { simFault } from './runner.ts';
import { NODE_FAULTS, type FleetConfig, type NodeFaultKind } from './scenario.ts';
import { SimStack } from './stack.ts';

export interface ChaosOptions {
  seed: number;
  /** How long the storm lasts. */
  seconds: number;
  /** Node faults per node per minute. */
  faultRate?: number;
  /** Worker kills and Temporal restarts per minute, all kinds together. */
  killRate?: number;
  nodes?: number;
  /** An instance no pool knows, alive longer than this, is an orphan; a node cordoned this long with no one holding it is left cordoned. */
  graceSeconds?: number;
  convergeSeconds?: number;
  work: string;
  log?: (line: string) => void;
}

export interface Violation {
  seed: number;
  atSeconds: number;
  invariant: string;
  detail: string;
}

export interface ChaosReport {
  seed: number;
  stormSeconds: number;
  faults: Record<string, number>;
  kills: Record<string, number>;
  violations: Violation[];
  /** Seconds from the storm's end (faults cleared) until the pool was whole; null when it never was. */
  convergedAfterSeconds: Record<string, number | null>;
  completed: { rollouts: number; backups: number; trainingJobs: number; replacements: number };
}

const POOL = 'chaos';
/** Trainer processes, and workers per training job (one shard each per round). */
const TRAINERS = 2;
const MODELS = ['/models/base.gguf', '/models/next-a.gguf', '/models/next-b.gguf'];
const MAX_UNAVAILABLE = 1;

function treeDigest(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const abs = join(e.parentPath, e.name);
    out[relative(root, abs).split(sep).join('/')] = createHash('sha256').update(readFileSync(abs)).digest('hex');
  }
  return out;
}

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? ((l: string) => console.log(l));
  const nodes = o.nodes ?? 4;
  const grace = (o.graceSeconds ?? 90) * 1000;
  const rand = mulberry32(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const fleet: FleetConfig = {
    pools: [{ name: POOL, nodes }],
    rackSize: 2,
    racksPerZone: 2,
    bootSeconds: 1,
    inference: { initialModel: MODELS[0], swapSeconds: 0.5, drainSeconds: 0.3, generationMs: 30, failModels: [] },
    trainers: TRAINERS,
    data: { files: 12, kib: 256 },
  };
  const stack = new SimStack(fleet, o.work, 'drydock-chaos');
  const report: ChaosReport = { seed: o.seed, stormSeconds: o.seconds, faults: {}, kills: {}, violations: [], convergedAfterSeconds: {}, completed: { rollouts: 0, backups: 0, trainingJobs: 0, replacements: 0 } };
  const t0 = Date.now();
  const at = () => (Date.now() - t0) / 1000;
  const seen = new Set<string>();
  const violate = (invariant: string, detail: string) => {
    const key = `${invariant}|${detail}`;
    if (seen.has(key)) return;
    seen.add(key);
    const v = { seed: o.seed, atSeconds: Math.round(at()), invariant, detail };
    report.violations.push(v);
    log(`VIOLATION seed ${o.seed} at ${v.atSeconds} s: ${invariant}: ${detail}`);
  };
  const count = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);
  /** Trainer losses (kills, server restarts) since the start, for the training invariant. */
  let trainerLosses = 0;
  let storming = true;
  let stopped = false;
  let desiredModel = MODELS[0];

  await stack.start();
  const client = () => stack.client;
  const poolHandle = () => client().workflow.getHandle(fleetPoolWorkflowId(POOL));
  await client().workflow.start('fleetPool', {
    taskQueue: stack.taskQueue,
    workflowId: fleetPoolWorkflowId(POOL),
    args: [{ name: POOL, minNodes: nodes, maxNodes: nodes, health: { probeIntervalSeconds: 1, unhealthyAfter: 2, unreachableAfterSeconds: 5, drainTimeoutSeconds: 5 }, disruption: { maxUnavailable: MAX_UNAVAILABLE, breaker: { maxUnhealthyFraction: 0.5, windowSeconds: 30 } },
      // A serving pool: an agent that restarts (crash, reboot) comes back on its start-up model and
      // the pool converges it to the desired one, which each rollout moves.
      serving: { model: { uri: MODELS[0], sha256: simulatedModelSha256(MODELS[0]) } } }],
  });
  /** Retries `f` while the server may be restarting; an error `final` accepts is the answer and is thrown. */
  const retry = async <T>(f: () => Promise<T>, final: (err: unknown) => boolean = () => false): Promise<T> => {
    for (;;) {
      try {
        return await f();
      } catch (err) {
        if (stopped || final(err)) throw err;
        await sleep(500); // the server may be restarting
      }
    }
  };
  await retry(async () => {
    const s = await poolHandle().query<PoolStatus>('status');
    if (s.counts.healthy !== nodes) throw new Error('not yet');
  });
  log(`chaos seed ${o.seed}: pool of ${nodes} up at ${at().toFixed(1)} s; storm of ${o.seconds} s begins`);

  // Workloads, each a loop that checks its own invariant when a run ends.
  const loops: Promise<void>[] = [];
  /** A workflow's result; one that failed has ended (its failure is thrown), only reaching the server is retried. */
  const until = (handle: () => WorkflowHandle): Promise<unknown> => retry(() => handle().result(), (err) => err instanceof WorkflowFailedError);
  loops.push((async () => {
    let i = 0;
    while (storming) {
      const model = MODELS[1 + (i % 2)];
      const id = `r${i++}`;
      const wid = rollingUpdateWorkflowId(POOL, id);
      await retry(() => client().workflow.start('rollingUpdate', { taskQueue: stack.taskQueue, workflowId: wid, args: [{ pool: POOL, target: { model: { uri: model, sha256: simulatedModelSha256(model) } }, maxUnavailable: 1, analysis: { intervalSeconds: 0 } }] }).catch((e: Error) => { if (!/already started/i.test(e.message)) throw e; }));
      const failed = await until(() => client().workflow.getHandle(wid)).then(() => undefined, (e: Error) => e);
      const s = await retry(() => client().workflow.getHandle(wid).query<RolloutStatus>('status'));
      if (s.maxDisrupted > 1) violate('budget', `rollout ${id} had ${s.maxDisrupted} nodes out at once, above its maxUnavailable 1`);
      if (s.phase === 'succeeded') desiredModel = model;
      report.completed.rollouts++;
      if (failed) await sleep(2000); // a rollout refused at once (an agent down) is retried, not spun on
      const why = s.reason ?? (failed instanceof WorkflowFailedError ? failed.cause?.message : failed?.message);
      log(`[${at().toFixed(0)} s] rollout ${id} to ${model} ended ${failed && !TERMINAL.includes(s.phase) ? `failed in ${s.phase}` : s.phase}${why ? ` (${why})` : ''}`);
    }
  })());
  loops.push((async () => {
    let i = 0;
    while (storming) {
      const when = new Date();
      const wid = backupWorkflowId('chaos', when);
      await retry(() => client().workflow.start('backup', { taskQueue: stack.taskQueue, workflowId: wid, args: [{ name: 'chaos', sources: [{ type: 'files', name: 'data', path: join(o.work, 'data') }], destination: `file://${o.work}/backups` }] }).catch((e: Error) => { if (!/already started/i.test(e.message)) throw e; }));
      const r = (await until(() => client().workflow.getHandle(wid)).catch((e: Error) => e)) as BackupResult | Error;
      if (r instanceof Error) {
        violate('every backup verifies', `backup ${wid} failed: ${r.message}`);
        continue;
      }
      if (r.phase !== 'Completed' || !r.verification?.ok) violate('every backup verifies', `backup ${r.backupId}: phase ${r.phase}, verification ${JSON.stringify(r.verification)}`);
      const dest = join(o.work, `restore-${i++}`);
      const rid = restoreWorkflowId(r.backupId);
      await retry(() => client().workflow.start('restore', { taskQueue: stack.taskQueue, workflowId: rid, args: [{ backupId: r.backupId, store: `file://${o.work}/backups`, destination: dest, source: 'data' }] }).catch((e: Error) => { if (!/already started/i.test(e.message)) throw e; }));
      const restored = await until(() => client().workflow.getHandle(rid)).then(() => true, (e: Error) => (violate('every backup restores byte-identical', `restore of ${r.backupId} failed: ${e.message}`), false));
      if (restored && JSON.stringify(treeDigest(dest)) !== JSON.stringify(treeDigest(join(o.work, 'data')))) violate('every backup restores byte-identical', `restore of ${r.backupId} differs from the source tree`);
      report.completed.backups++;
      log(`[${at().toFixed(0)} s] backup ${r.backupId} ${r.phase}, verified ${r.verification?.ok}, restored ${restored ? 'byte-identical' : 'NOT'}`);
      await sleep(5000); // one backup every few seconds is plenty of kills to land in
    }
  })());
  loops.push((async () => {
    let i = 0;
    while (storming) {
      const name = `chaos-${i++}`;
      const wid = trainingJobWorkflowId(name);
      const lossesBefore = trainerLosses;
      await retry(() => client().workflow.start('trainingJob', { taskQueue: stack.taskQueue, workflowId: wid, args: [{ name, workers: TRAINERS, rounds: 3, innerSteps: 20, batchSize: 32, evalEvery: 3, heartbeatTimeoutSeconds: 3, checkpoint: { uri: `file://${o.work}/checkpoints` }, trainerQueue: stack.trainerQueue }] }).catch((e: Error) => { if (!/already started/i.test(e.message)) throw e; }));
      const r = (await until(() => client().workflow.getHandle(wid)).catch((e: Error) => e)) as TrainingJobResult | Error;
      if (r instanceof Error) {
        violate('training loses at most one round per lost trainer', `job ${name} failed: ${r.message}`);
        continue;
      }
      const facts = await retry(() => historyFacts(client(), wid));
      const redone = facts.retried.trainShard ?? 0;
      const lost = trainerLosses - lossesBefore;
      if (redone > lost) violate('training loses at most one round per lost trainer', `job ${name} redid ${redone} shards with ${lost} trainers lost`);
      report.completed.trainingJobs++;
      log(`[${at().toFixed(0)} s] training ${name}: ${r.rounds} rounds, ${redone} shards redone, ${lost} trainers lost meanwhile`);
    }
  })());

  // Continuous invariants.
  const orphanSince = new Map<string, number>();
  const cordonedSince = new Map<string, number>();
  const watch = (async () => {
    while (!stopped) {
      await sleep(1000);
      let s: PoolStatus;
      try {
        s = await poolHandle().query<PoolStatus>('status');
      } catch {
        continue; // server restarting, or between runs
      }
      if (s.maxDisrupted > s.maxUnavailable || s.leases.length > s.maxUnavailable) violate('budget never exceeded', `${Math.max(s.maxDisrupted, s.leases.length)} nodes disrupted, budget ${s.maxUnavailable}`);
      const members = new Set([...s.nodes.map((n) => n.id), ...s.claims.map((c) => c.nodeId)]);
      const live = liveNodes(stack.sim, POOL);
      const keys = new Map<string, string>();
      for (const n of live) {
        const key = n.tags['sim-key'];
        if (keys.has(key)) violate('no two instances per idempotency key', `${keys.get(key)} and ${n.id} share key ${key}`);
        keys.set(key, n.id);
        if (members.has(n.id)) orphanSince.delete(n.id);
        else if (!orphanSince.has(n.id)) orphanSince.set(n.id, Date.now());
        else if (Date.now() - orphanSince.get(n.id)! > grace) violate('no orphan instance', `${n.id} (key ${key}) alive ${Math.round((Date.now() - Date.parse(n.createdAt)) / 1000)} s, in no pool`);
      }
      const held = new Set(s.leases.map((l) => l.nodeId).filter(Boolean));
      await Promise.all(
        live.filter((n) => n.agentUrl).map(async (n) => {
          const member = s.nodes.find((m) => m.id === n.id);
          let cordoned = false;
          try {
            cordoned = (await new AgentClient(n.agentUrl!, stack.token, 2000).health()).drain.state !== 'active';
          } catch {
            return;
          }
          // The pool holds a quarantined or sick member cordoned on purpose (until it recovers or is
          // remediated); a healthy one it holds active is uncordoned by the pool (pool/strays.ts).
          const sick = member !== undefined && member.health !== 'healthy' && member.health !== 'degraded';
          const owned = !member || member.phase !== 'active' || member.quarantinedAt !== undefined || sick || held.has(n.id);
          if (!cordoned || owned) return void cordonedSince.delete(n.id);
          if (!cordonedSince.has(n.id)) cordonedSince.set(n.id, Date.now());
          else if (Date.now() - cordonedSince.get(n.id)! > grace) violate('no node left cordoned', `${n.id} cordoned ${Math.round((Date.now() - cordonedSince.get(n.id)!) / 1000)} s while the pool holds it active and no lease names it`);
        }),
      );
    }
  })();

  // The storm: one decision per second, seeded.
  const stormEnd = Date.now() + o.seconds * 1000;
  const faultP = ((o.faultRate ?? 0.5) * nodes) / 60;
  const killP = (o.killRate ?? 1.5) / 60;
  while (Date.now() < stormEnd) {
    await sleep(1000);
    const r1 = rand();
    const r2 = rand();
    if (r1 < faultP) {
      const kind = pick([...NODE_FAULTS.filter((k) => k !== 'dead'), 'capacity', 'throttle'] as const);
      if (kind === 'capacity' || kind === 'throttle') {
        stack.sim.providerFault({ kind, seconds: 5 + Math.floor(rand() * 10) });
        count(report.faults, kind);
        log(`[${at().toFixed(0)} s] provider ${kind}`);
      } else {
        const running = liveNodes(stack.sim, POOL).filter((n) => n.state === 'running');
        if (running.length) {
          const n = pick(running);
          try {
            await stack.sim.fault(n.id, simFault(kind as NodeFaultKind, { code: pick([79, 48, 94]), seconds: 3 }));
            count(report.faults, kind);
            log(`[${at().toFixed(0)} s] ${kind} on ${n.id}`);
          } catch {
            /* its agent is down already */
          }
        }
      }
    }
    if (r2 < killP) {
      const what = pick(['control', 'trainer', 'temporal'] as const);
      log(`[${at().toFixed(0)} s] kill ${what}`);
      count(report.kills, what);
      if (what === 'control') await stack.killControl(true);
      else if (what === 'trainer') {
        trainerLosses++;
        await stack.killTrainer(Math.floor(rand() * TRAINERS), true);
      } else {
        // A server restart can cost every trainer its in-flight shard: one round of the job's TRAINERS shards.
        trainerLosses += TRAINERS;
        await stack.restartTemporal(1 + Math.floor(rand() * 3));
      }
    }
  }

  // After the storm: clear faults, let the workloads finish, resume a latched breaker, converge.
  storming = false;
  stack.sim.clearProviderFault();
  for (const n of liveNodes(stack.sim, POOL)) {
    await stack.sim.fault(n.id, { kind: 'revive' }).catch(() => {});
    await stack.sim.fault(n.id, { kind: 'recover' }).catch(() => {});
  }
  /** What each workflow still running (but the pool) waits on: its pending activities and the last failure of each. */
  const stillRunning = async (): Promise<string> => {
    const out: string[] = [];
    for await (const w of client().workflow.list({ query: 'ExecutionStatus = "Running"' })) {
      if (w.type === 'fleetPool') continue;
      const d = await client().workflow.getHandle(w.workflowId).describe();
      const pending = (d.raw.pendingActivities ?? []).map((p) => `${p.activityType?.name} attempt ${p.attempt ?? 1}${p.lastFailure?.message ? ` (${p.lastFailure.message.slice(0, 200)})` : ''}`);
      out.push(`${w.workflowId} (${w.type}): ${pending.join('; ') || 'no activity pending'}`);
    }
    return out.join(' | ') || 'none found';
  };
  const tCalm = Date.now();
  log(`[${at().toFixed(0)} s] storm over: faults cleared; waiting for the workloads to end and the pool to converge`);
  // The operator's one decision: a breaker the storm latched is resumed as soon as the storm is
  // over, while the workloads still wait on it (a rollout does not walk a pool whose breaker is open).
  let calm = true;
  const operator = (async () => {
    while (calm) {
      try {
        const s = await poolHandle().query<PoolStatus>('status');
        if (s.breaker.open || s.phase === 'paused') {
          log(`[${at().toFixed(0)} s] operator: resumeRemediation (${s.phaseReason ?? s.breaker.reason ?? s.phase})`);
          await poolHandle().executeUpdate('resumeRemediation', { args: [] });
        }
      } catch {
        /* the server may be restarting; ask again */
      }
      await sleep(1000);
    }
  })();
  const deadline = tCalm + (o.convergeSeconds ?? 240) * 1000;
  const timeout = sleep(Math.max(0, deadline - Date.now())).then(() => 'timeout' as const);
  const ended = await Promise.race([Promise.all(loops).then(() => 'ended' as const), timeout]);
  if (ended === 'timeout') violate('every workflow ends', `rollouts, backups or training jobs still running ${o.convergeSeconds ?? 240} s after the storm: ${await stillRunning().catch((e: Error) => e.message)}`);
  let converged: number | null = null;
  while (Date.now() < deadline) {
    try {
      const s = await poolHandle().query<PoolStatus>('status');
      const agents = await Promise.all(
        liveNodes(stack.sim, POOL).map(async (n) => (n.agentUrl ? new AgentClient(n.agentUrl, stack.token, 2000).health().catch(() => undefined) : undefined)),
      );
      const good = agents.filter((h) => h && h.status === 'healthy' && h.drain.state === 'active' && h.model?.sha256 === simulatedModelSha256(desiredModel)).length;
      if (s.phase === 'running' && s.counts.members === nodes && s.counts.healthy === nodes && s.leases.length === 0 && good === nodes && agents.length === nodes) {
        converged = (Date.now() - tCalm) / 1000;
        break;
      }
    } catch {
      /* retry */
    }
    await sleep(1000);
  }
  calm = false;
  await operator;
  report.convergedAfterSeconds[POOL] = converged;
  if (converged === null) {
    const s = await poolHandle().query<PoolStatus>('status').catch(() => undefined);
    const agents = await Promise.all(liveNodes(stack.sim, POOL).map(async (n) => `${n.id}:${n.state}:${n.agentUrl ? await new AgentClient(n.agentUrl, stack.token, 2000).health().then((h) => `${h.status}/${h.drain.state}/${h.model?.uri}`, () => 'no answer') : 'no agent'}`));
    violate('convergence after the storm', `pool ${s?.phase} ${JSON.stringify(s?.counts)}, leases ${s?.leases.length}, desired model ${desiredModel}; agents ${agents.join(', ')}`);
  } else log(`[${at().toFixed(0)} s] pool converged ${converged.toFixed(1)} s after the storm`);
  stopped = true;
  await watch;

  // Histories: no workflow task failure anywhere; no replaceNode or rollout left running.
  for await (const w of client().workflow.list()) {
    const facts = await historyFacts(client(), w.workflowId, w.runId);
    if (facts.workflowTaskFailures) {
      // Kept for the post-mortem (a replay of it names the command that differs): the server goes with the run.
      const file = join(tmpdir(), `drydock-chaos-${o.seed}-${w.workflowId.replace(/[^\w.-]+/g, '_')}.json`);
      writeFileSync(file, historyToJSON(await client().workflow.getHandle(w.workflowId, w.runId).fetchHistory()));
      violate('no workflow task failure', `${w.workflowId} (${w.type}) has ${facts.workflowTaskFailures}; the first: ${facts.firstTaskFailure}; history in ${file}`);
    }
    if ((w.type === 'replaceNode' || w.type === 'rollingUpdate') && w.status.name === 'RUNNING') violate('every replaceNode and rollout ends', `${w.workflowId} still running`);
    if (w.type === 'replaceNode' && w.status.name === 'COMPLETED') report.completed.replacements++;
  }
  await stack.close();
  return report;
}

export function printReport(r: ChaosReport, log: (l: string) => void = (l) => console.log(l)): void {
  log(`chaos seed ${r.seed}, storm ${r.stormSeconds} s`);
  log(`  faults: ${Object.entries(r.faults).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
  log(`  kills: ${Object.entries(r.kills).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
  log(`  completed: ${r.completed.rollouts} rollouts, ${r.completed.backups} backups (each restored), ${r.completed.trainingJobs} training jobs, ${r.completed.replacements} replacements`);
  log(`  converged after the storm: ${Object.entries(r.convergedAfterSeconds).map(([p, s]) => `${p} ${s === null ? 'NEVER' : `${s.toFixed(1)} s`}`).join(', ')}`);
  const by = new Map<string, number>();
  for (const v of r.violations) by.set(v.invariant, (by.get(v.invariant) ?? 0) + 1);
  log(`  violations: ${r.violations.length}${by.size ? ` (${[...by].map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`);
  for (const v of r.violations) log(`    seed ${v.seed} at ${v.atSeconds} s: ${v.invariant}: ${v.detail}`);
}

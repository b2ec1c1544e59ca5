import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  setWorkflowOptions,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { PoolActivities } from '../activities/pool/index.ts';
import type { ProbePoolResult } from '../activities/pool/probe.ts';
import { INVALID_ARGUMENT, invalidArgument } from './common/errors.ts';
import { fleetPoolWorkflowId } from './common/ids.ts';
import { parseFleetPoolSpec, type FleetPoolSpec } from './inputs/fleetPool.ts';
import {
  acquireLeaseUpdate,
  applySpecUpdate,
  claimNodesUpdate,
  cordonNodeUpdate,
  pauseRemediationUpdate,
  poolStatusQuery,
  releaseClaimsUpdate,
  releaseLeaseUpdate,
  replaceNodeUpdate,
  resizeUpdate,
  resumeRemediationUpdate,
  setServingModelUpdate,
  swapMembersUpdate,
  uncordonNodeUpdate,
  type PoolPhase,
} from './pool/api.ts';
import { advanceClock, HISTORY_CLOCK_PATCH, startClock, wakeAt } from './pool/clock.ts';
import { freshRun, members, poolPhase, type PoolContext } from './pool/context.ts';
import { expireLeases, grantPass } from './pool/disruption.ts';
import * as handle from './pool/handlers.ts';
import { reconcile } from './pool/membership.ts';
import { applyProbe, probeFailed, probeInput } from './pool/probe.ts';
import { remediate } from './pool/remediation.ts';
import { converge, setServing, validateSetServing } from './pool/serving.ts';
import { SERVING_PATCH } from './pool/servingWork.ts';
import { size } from './pool/sizing.ts';
import { freshState, pushEvent, type PoolState } from './pool/state.ts';
import { poolDetails, poolStatus } from './pool/status.ts';
import * as validate from './pool/validators.ts';
import { poolWork } from './pool/work.ts';
import { publishSizeGauges } from './pool/autoscale/gauges.ts';
import { applyWatch, healthChangesSignal, startWatch, type PoolWatch } from './pool/watch.ts';
import { DRYDOCK_PHASE, DRYDOCK_POOL } from './searchAttributes.ts';

export type { PoolStatus } from './pool/api.ts';

/** patched() id of the phase memo (test/replay/patches.test.ts removes this check to show old pools would break). */
export const PHASE_MEMO_PATCH = 'pool-phase-memo';
/** patched() id: quarantined members (out of service without a lease) count toward the disruption budget. */
export const QUARANTINE_COUNTS_PATCH = 'quarantine-counts';
/** patched() id: a member cordoned with nothing of the pool holding it is uncordoned (pool/strays.ts). */
export const UNCORDON_STRAYS_PATCH = 'uncordon-strays';
/** patched() id: members the probe found on the model it was asked about are recorded as serving that one (pool/serving.ts). */
export const SERVING_PROBED_PATCH = 'serving-probed-model';

// fleetPool never finishes (it lives as long as its pool), so pinning would keep every old build
// alive forever: it auto-upgrades to the current build at its next workflow task, and every change
// to the commands it replays goes behind patched() / deprecatePatch() (test/replay replays every
// fleetPool history ever committed against the current code).
setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, fleetPool);

/**
 * A long-lived workflow per pool (id `pool/<name>`): probes every agent each interval, reconciles
 * membership with the provider, replaces nodes that stay unhealthy or unreachable through
 * replaceNode children, keeps the size between min and max (reactive autoscaling), and puts every
 * disruptive action through one disruption budget guarded by a circuit breaker.
 * `carried` is only for continue-as-new: the whole state of the previous run.
 */
export async function fleetPool(rawSpec: FleetPoolSpec, carried?: PoolState): Promise<void> {
  const cfg = parseFleetPoolSpec(rawSpec);
  const expectedId = fleetPoolWorkflowId(cfg.name);
  if (workflowInfo().workflowId !== expectedId) {
    throw invalidArgument('workflowId', `must be '${expectedId}' so that one pool has exactly one manager`);
  }
  const pool = cfg.name;
  const s: PoolState = carried ?? freshState(rawSpec);
  s.spec = rawSpec;

  const probeActs = proxyActivities<PoolActivities>({ startToCloseTimeout: '5 minutes', heartbeatTimeout: '1 minute', retry: { maximumAttempts: 3 } });
  const ctx: PoolContext = {
    pool,
    state: s,
    cfg,
    run: freshRun(),
    work: poolWork(),
    // The history clock (pool/clock.ts) once patched; the task's time in runs recorded before it.
    now: () => (ctx.run.historyClock && s.clock !== undefined ? s.clock : Date.now()),
    event(message, nodeId) {
      pushEvent(s, Date.now(), message, nodeId);
      log.info(`pool ${pool}: ${nodeId ? `${nodeId}: ` : ''}${message}`);
    },
  };
  const { run } = ctx;
  // Health events (watch, quarantine, ladder, outage rules): on for new runs, off when replaying older histories.
  run.health = patched('health-events');
  run.quarantineCounts = patched(QUARANTINE_COUNTS_PATCH);
  run.uncordonStrays = patched(UNCORDON_STRAYS_PATCH);
  run.historyClock = patched(HISTORY_CLOCK_PATCH);
  run.servingProbed = patched(SERVING_PROBED_PATCH);
  startClock(ctx);
  let watch: PoolWatch | undefined;

  // ---- updates and the status query (handlers.ts, validators.ts) ----------------------------

  setHandler(poolStatusQuery, () => poolStatus(ctx));
  setHandler(applySpecUpdate, (spec) => handle.applySpec(ctx, spec), { validator: (spec) => validate.applySpec(ctx, spec) });
  setHandler(resizeUpdate, (r) => handle.resize(ctx, r), { validator: (r) => validate.resize(ctx, r) });
  setHandler(pauseRemediationUpdate, (r?: { reason?: string }) => handle.pauseRemediation(ctx, r), { validator: (r?: { reason?: string }) => validate.pauseRemediation(r) });
  setHandler(resumeRemediationUpdate, () => handle.resumeRemediation(ctx));
  setHandler(cordonNodeUpdate, (r) => handle.cordonNode(ctx, r), { validator: (r) => validate.cordonNode(ctx, r) });
  setHandler(uncordonNodeUpdate, (r) => handle.uncordonNode(ctx, r), { validator: (r) => validate.uncordonNode(ctx, r) });
  setHandler(replaceNodeUpdate, (r) => handle.replaceNode(ctx, r), { validator: (r) => validate.replaceNode(ctx, r) });
  setHandler(acquireLeaseUpdate, (r) => handle.acquireLease(ctx, r), { validator: (r) => validate.acquireLease(ctx, r) });
  setHandler(releaseLeaseUpdate, (r) => handle.releaseLease(ctx, r), { validator: (r) => validate.releaseLease(ctx, r) });
  setHandler(claimNodesUpdate, (r) => handle.claimNodes(ctx, r), { validator: (r) => validate.claimNodes(ctx, r) });
  setHandler(swapMembersUpdate, (r) => handle.swapMembers(ctx, r), { validator: (r) => validate.swapMembers(ctx, r) });
  setHandler(releaseClaimsUpdate, (r) => handle.releaseClaims(ctx, r), { validator: (r) => validate.releaseClaims(r) });
  setHandler(healthChangesSignal, (c) => (run.health ? applyWatch(ctx, c) : undefined));
  setHandler(setServingModelUpdate, (r) => setServing(ctx, r), { validator: (r) => validateSetServing(ctx, r) });

  // ---- steps of the loop ----------------------------------------------------------------------

  /** Asks every agent for its health; bad input (an unknown pool) fails the pool, anything else waits for the next probe. */
  async function probe(): Promise<void> {
    const at = ctx.now();
    const asked = ctx.cfg.serving?.model; // applySpec or a rollout may change it while the probe runs
    let r: ProbePoolResult;
    try {
      r = await probeActs.probePool.executeWithOptions({ summary: `probe ${members(ctx).length} nodes` }, [probeInput(ctx)]);
    } catch (err) {
      const cause = err instanceof ActivityFailure ? err.cause : err;
      if (cause instanceof ApplicationFailure && cause.type === INVALID_ARGUMENT) throw cause;
      probeFailed(ctx, at, err);
      return;
    }
    advanceClock(ctx, r.finishedAt);
    applyProbe(ctx, at, r, asked);
  }

  let lastPhase: PoolPhase | undefined;
  /** Search attributes when the phase changes, and the Web UI's current details every pass. */
  function publish(): void {
    const p = poolPhase(ctx);
    if (p !== lastPhase) {
      upsertSearchAttributes([
        { key: DRYDOCK_POOL, value: pool },
        { key: DRYDOCK_PHASE, value: p },
      ]);
      // Since when the pool is in its phase, in the memo (`temporal workflow describe`, the Web UI).
      // A new command, so behind a patch: pools started on older builds replay without it.
      if (patched(PHASE_MEMO_PATCH)) upsertMemo({ drydockPhase: { phase: p, since: new Date(ctx.now()).toISOString() } });
      lastPhase = p;
    }
    const st = poolStatus(ctx);
    setCurrentDetails(poolDetails(st, ctx.cfg));
    publishSizeGauges(st);
  }

  // ---- the runbook ----------------------------------------------------------------------------

  // 1. A new pool first checks that this worker's pools file serves it (and with the provider the spec expects).
  if (!carried) {
    try {
      const where = await probeActs.describePoolConfig.executeWithOptions({ summary: `check the worker serves pool ${pool}` }, [{ pool }]);
      // ctx.cfg, not cfg: an applySpec may have been accepted while the check ran.
      const { provider } = ctx.cfg;
      if (provider && provider !== where.provider) {
        throw invalidArgument('provider', `pool '${pool}' is served by provider '${where.provider}' in the worker's pools file, not '${provider}'`);
      }
    } catch (err) {
      throw err instanceof ActivityFailure && err.cause ? err.cause : err;
    }
    ctx.event(`pool manager started (${ctx.cfg.autoscaling.type} autoscaling, maxUnavailable ${JSON.stringify(ctx.cfg.disruption.maxUnavailable)})`);
  } else {
    ctx.event(`continued as new (run ${s.runs + 1})`);
  }

  for (;;) {
    // 1b. Health events: a pool upgraded mid-run switches on here; the watch runs beside the loop.
    run.health ||= patched('health-events');
    run.quarantineCounts ||= patched(QUARANTINE_COUNTS_PATCH);
    run.uncordonStrays ||= patched(UNCORDON_STRAYS_PATCH);
    run.historyClock ||= patched(HISTORY_CLOCK_PATCH);
    run.servingProbed ||= patched(SERVING_PROBED_PATCH);
    startClock(ctx);
    if (run.health && ctx.cfg.health.watch && !watch && !run.stopping) watch = startWatch(ctx);
    // 2. Each probe interval: probe every agent, then reconcile membership with the provider.
    const due = !s.lastProbe || ctx.now() >= s.lastProbe.at + ctx.cfg.health.probeIntervalSeconds * 1000;
    run.dirty = false;
    if (due) {
      await probe();
      reconcile(ctx);
    }
    // 3. Every pass: expire leases nobody renewed, request replacements for sick nodes (unless the
    //    breaker is open or remediation paused), hold the size, grant what the budget allows, publish.
    expireLeases(ctx);
    remediate(ctx);
    // Serving pools: members that drifted from the pool's model queue for the budget (serving.ts).
    if (ctx.cfg.serving && patched(SERVING_PATCH)) converge(ctx);
    size(ctx);
    grantPass(ctx);
    publish();

    // 4. A long history continues as new once the side tasks finish, carrying the whole state.
    if (!run.stopping && workflowInfo().continueAsNewSuggested) {
      run.stopping = true;
      ctx.event(`history is long: continuing as new once ${run.tasks.size} running task(s) finish`);
    }
    if (run.stopping && run.tasks.size === 0) {
      await watch?.stop();
      await condition(() => run.tasks.size === 0 && allHandlersFinished());
      s.runs++;
      await continueAsNew<typeof fleetPool>(s.spec, s);
    }
    // 5. Sleep until the next probe is due, or until a handler or a finished task changed something.
    //    On the history clock the probe's timer is started once per deadline and moves the clock.
    const deadline = s.lastProbe ? s.lastProbe.at + ctx.cfg.health.probeIntervalSeconds * 1000 : ctx.now();
    const wait = deadline - ctx.now();
    const woken = () => run.dirty || (run.stopping && run.tasks.size === 0);
    if (run.historyClock) {
      wakeAt(ctx, deadline);
      if (wait > 0) await condition(woken);
    } else if (wait > 0) await condition(woken, wait);
  }
}

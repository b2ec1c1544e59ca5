import { ActivityFailure, ApplicationFailure, setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { RolloutMembers } from '../activities/rollout/index.ts';
import { INVALID_ARGUMENT, invalidArgument } from './common/errors.ts';
import { parseRollingUpdateInput, rolloutIdFrom, type RollingUpdateInput } from './inputs/rollingUpdate.ts';
import { amount } from './inputs/validate.ts';
import {
  abortRolloutUpdate,
  pauseRolloutUpdate,
  promoteRolloutUpdate,
  resumeRolloutUpdate,
  rolloutStatusQuery,
  setMaxUnavailableUpdate,
  type RolloutPhase,
  type RolloutResult,
} from './rollout/api.ts';
import { runBlueGreen } from './rollout/blueGreen.ts';
import { unavailableLimit } from './rollout/plan.ts';
import { runRolling, type Outcome } from './rollout/rolling.ts';
import { Rollout } from './rollout/runtime.ts';
import { setPoolModel, settlePoolModel } from './rollout/serving.ts';
import { effectivePhase, freshRolloutState, rolloutDetails, rolloutStatus, TERMINAL } from './rollout/state.ts';
import { DRYDOCK_PHASE, DRYDOCK_POOL } from './searchAttributes.ts';

export type { RolloutResult, RolloutStatus } from './rollout/api.ts';

const FAILURE_TYPE = { 'rolled-back': 'RolloutRolledBack', aborted: 'RolloutAborted', failed: 'RolloutFailed' } as const;

/**
 * Rolls a model across a pool (id `rollout/<pool>/<id>`): rolling batches through the pool's
 * disruption budget, each node walking cordon → drain → swap → smoke → readiness → uncordon, with
 * analysis after every batch and rollback on failure; or blue-green with an instant rollback.
 * A rolled-back, aborted or failed rollout fails the workflow (non-retryable) with its result as details.
 */
export async function rollingUpdate(input: RollingUpdateInput): Promise<RolloutResult> {
  const cfg = parseRollingUpdateInput(input);
  const info = workflowInfo();
  const id = rolloutIdFrom(info.workflowId, cfg.pool);
  const st = freshRolloutState(id, cfg, new Date().toISOString());
  let lastPhase: RolloutPhase | undefined;
  const publish = () => {
    const phase = effectivePhase(st);
    if (phase !== lastPhase) {
      upsertSearchAttributes([
        { key: DRYDOCK_POOL, value: cfg.pool },
        { key: DRYDOCK_PHASE, value: phase },
      ]);
      lastPhase = phase;
    }
    setCurrentDetails(rolloutDetails(rolloutStatus(st, cfg)));
  };
  const rt = new Rollout(cfg, st, info.workflowId, publish);

  setHandler(rolloutStatusQuery, () => rolloutStatus(st, cfg));
  const notFinished = () => {
    if (TERMINAL.includes(st.phase) || st.phase === 'rolling-back') throw invalidArgument('phase', `the rollout is ${st.phase}`);
  };
  const objectArg = (v: unknown) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalidArgument('input', 'expected a JSON object');
    return v as Record<string, unknown>;
  };
  const reasonArg = (o: Record<string, unknown>) => {
    if (o.reason !== undefined && (typeof o.reason !== 'string' || o.reason.length > 500)) throw invalidArgument('reason', 'expected a string of at most 500 characters');
  };

  setHandler(
    pauseRolloutUpdate,
    (r) => {
      st.hold = { kind: 'operator', reason: r.reason ?? 'paused by operator' };
      rt.event(`paused: ${st.hold.reason} (nodes already walking finish their step machine)`);
      return { phase: effectivePhase(st) };
    },
    {
      validator: (r) => {
        notFinished();
        reasonArg(objectArg(r));
        if (st.hold) throw invalidArgument('phase', `already paused: ${st.hold.reason}`);
        if (st.phase === 'switched' || st.phase === 'scaling-down') throw invalidArgument('phase', `the rollout is ${st.phase}: abort to roll back instead`);
      },
    },
  );
  setHandler(
    resumeRolloutUpdate,
    () => {
      const was = st.hold!;
      st.hold = undefined;
      if (was.kind === 'operator') rt.event('resumed by operator');
      return { phase: effectivePhase(st) };
    },
    {
      validator: () => {
        notFinished();
        if (!st.hold) throw invalidArgument('phase', `the rollout is ${effectivePhase(st)}, not paused`);
        if (st.hold.kind === 'step' || st.hold.kind === 'switch') throw invalidArgument('phase', `held at a ${st.hold.kind === 'step' ? 'pause step' : 'switch'}: use promote`);
      },
    },
  );
  setHandler(
    abortRolloutUpdate,
    (r) => {
      rt.controls.abort = `aborted: ${r.reason ?? 'by operator'}`;
      rt.event(`${rt.controls.abort}; rolling back`);
      return { phase: effectivePhase(st) };
    },
    {
      validator: (r) => {
        notFinished();
        reasonArg(objectArg(r));
        if (rt.controls.abort) throw invalidArgument('phase', 'already aborting');
      },
    },
  );
  setHandler(
    promoteRolloutUpdate,
    (r) => {
      if (r.all) rt.controls.promoteAll = true;
      if (st.phase === 'switched') rt.controls.skipDelay = true;
      else st.hold = undefined;
      rt.event(`promoted${r.all ? ' (all later pauses skipped)' : ''}`);
      return { phase: effectivePhase(st), step: st.step };
    },
    {
      validator: (r) => {
        notFinished();
        const o = objectArg(r);
        if (o.all !== undefined && typeof o.all !== 'boolean') throw invalidArgument('all', 'expected true or false');
        const promotable = st.hold?.kind === 'step' || st.hold?.kind === 'switch' || st.phase === 'switched';
        if (!promotable && !o.all) throw invalidArgument('phase', `nothing to promote: the rollout is ${st.phase}${st.hold ? ` (${st.hold.reason}; use resume)` : ''}`);
      },
    },
  );
  setHandler(
    setMaxUnavailableUpdate,
    (r) => {
      rt.maxUnavailable = amount(r, 'maxUnavailable', 'maxUnavailable', 1, cfg.maxUnavailable);
      st.maxUnavailable = unavailableLimit(rt.maxUnavailable, Math.max(st.nodes.filter((n) => n.role !== 'green').length, 1));
      rt.event(`maxUnavailable set to ${st.maxUnavailable}`);
      return { maxUnavailable: st.maxUnavailable };
    },
    {
      validator: (r) => {
        notFinished();
        const o = objectArg(r);
        for (const k of Object.keys(o)) if (k !== 'maxUnavailable') throw invalidArgument(k, 'unknown field (allowed: maxUnavailable)');
        if (o.maxUnavailable === undefined) throw invalidArgument('maxUnavailable', 'is required');
        amount(o, 'maxUnavailable', 'maxUnavailable', 1, cfg.maxUnavailable);
      },
    },
  );

  // ---- plan --------------------------------------------------------------------------------
  publish();
  let members: RolloutMembers;
  try {
    members = await rt.acts.rollout.listRolloutMembers.executeWithOptions({ summary: `list pool ${cfg.pool}` }, [{ pool: cfg.pool }]);
  } catch (err) {
    // An unknown pool is bad input: fail with the InvalidArgument itself, not wrapped.
    throw err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === INVALID_ARGUMENT ? err.cause : err;
  }
  st.poolBudget = members.poolWorkflow;
  if (members.nodes.length === 0) throw ApplicationFailure.nonRetryable(`pool ${cfg.pool} has no running nodes to roll out to`, 'EmptyPool');
  const unknown = members.nodes.filter((n) => n.model === undefined);
  if (unknown.length) {
    throw ApplicationFailure.nonRetryable(`the agents of ${unknown.map((n) => n.id).join(', ')} did not answer, so their current model (what a rollback restores) is unknown; fix them or wait for the pool to replace them, then start again`, 'AgentUnreachable');
  }
  const blueGreen = cfg.strategy === 'blueGreen';
  const todo = blueGreen ? members.nodes : members.nodes.filter((n) => n.model?.sha256 !== cfg.target.model.sha256);
  st.nodes = todo.map((n) => ({ id: n.id, state: 'pending', direction: 'forward', previous: n.model ?? null, ...(blueGreen ? { role: 'blue' as const } : {}) }));
  st.maxUnavailable = unavailableLimit(blueGreen ? cfg.maxSurge : rt.maxUnavailable, Math.max(members.nodes.length, 1));
  rt.event(
    `planned: ${members.nodes.length} node(s) in pool ${cfg.pool}, ${todo.length} to ${blueGreen ? 'replace with a green set' : 'update'} (${members.nodes.length - todo.length} already serve the target); ` +
      `${st.poolBudget ? "disruption goes through the pool's budget" : 'no pool workflow runs: only maxUnavailable limits disruption'}`,
  );

  // ---- run ---------------------------------------------------------------------------------
  // Rolling: the target is the pool's desired model from now on (blue-green sets it at the switch).
  if (!blueGreen && todo.length > 0) await setPoolModel(rt, cfg.target.model, true);
  const outcome: Outcome = todo.length === 0 ? { outcome: 'succeeded' } : blueGreen ? await runBlueGreen(rt) : await runRolling(rt);
  // Rolled back or aborted: the previous model again; failed with nodes accepted (no rollback): the target stays.
  const rolledBack = outcome.outcome === 'rolled-back' || outcome.outcome === 'aborted' || st.nodes.some((n) => n.direction === 'rollback' || n.state === 'rolled-back');
  await settlePoolModel(rt, outcome.outcome === 'succeeded' || !rolledBack);
  st.phase = outcome.outcome;
  st.hold = undefined;
  if (outcome.outcome !== 'succeeded') st.reason = outcome.reason;
  st.finishedAt = new Date().toISOString();
  rt.event(outcome.outcome === 'succeeded' ? `succeeded: every node serves ${cfg.target.model.sha256.slice(0, 12)}…` : `${outcome.outcome}: ${outcome.reason}`);
  const result: RolloutResult = { outcome: outcome.outcome, status: rolloutStatus(st, cfg) };
  if (outcome.outcome === 'succeeded') return result;
  throw ApplicationFailure.create({ type: FAILURE_TYPE[outcome.outcome], message: `rollout ${id} ${outcome.outcome}: ${outcome.reason}`, nonRetryable: true, details: [result] });
}

import type { ProbePoolInput, ProbePoolResult } from '../../activities/pool/probe.ts';
import { invalidArgument } from '../common/errors.ts';
import { parseFleetPoolSpec } from '../inputs/fleetPool.ts';
import { modelRef, type ModelRef } from '../inputs/rollingUpdate.ts';
import type { PoolServingStatus, SetServingAnswer, SetServingRequest } from './api.ts';
import * as budget from './budget.ts';
import { members, type PoolContext } from './context.ts';

/**
 * The pool's desired serving state (spec `serving`): what every member must serve. Probes report
 * who serves something else; drift is converged through the disruption budget (a `converge`
 * lease: cordon, verified swap, smoke, uncordon) or only reported; rollouts move the desired
 * model (setServingModel) and hold convergence while they walk the pool.
 */

const HOLDER = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;
/** A hold a rollout never let go of (its workflow was terminated) ends after this long. */
export const SERVING_HOLD_TTL_MS = 24 * 3600_000;

export function convergeHolder(nodeId: string): string {
  return `converge/${nodeId}`;
}

/** The probe's part: the desired model's sha256, so the activity reports members that serve another. */
export function servingProbeInput(ctx: PoolContext): Pick<ProbePoolInput, 'desiredSha256'> {
  return ctx.cfg.serving ? { desiredSha256: ctx.cfg.serving.model.sha256 } : {};
}

/**
 * Records what each reachable member serves: the probe lists only those that differ from the model
 * it was asked about (`asked`), so the others serve that one, which is not the desired model when
 * the desired model changed while the probe ran (patched 'serving-probed-model'; before it, a pool
 * recorded them as serving the new model and never converged them).
 */
export function applyServingProbe(ctx: PoolContext, r: ProbePoolResult, asked?: ModelRef): void {
  const want = ctx.cfg.serving?.model;
  if (!want || !r.drift) return;
  const served = ctx.run.servingProbed && asked ? asked : want;
  const drift = new Map(r.drift.map((d) => [d.id, d.model]));
  for (const n of members(ctx)) {
    const h = ctx.state.view[n.id];
    if (drift.has(n.id)) n.model = drift.get(n.id) ?? null;
    else if (h && h !== 'unreachable') n.model = served;
  }
}

function drifted(ctx: PoolContext) {
  const want = ctx.cfg.serving?.model;
  if (!want) return [];
  return members(ctx).filter((n) => n.model !== undefined && n.model?.sha256 !== want.sha256 && n.phase !== 'replacing' && n.phase !== 'leaving');
}

/**
 * After each pass: members that drifted (another model, or none) get a `converge` lease request
 * (reconcile `converge`, unless a rollout holds the pool's serving state, remediation is paused or
 * the breaker is open), or are reported once (`report`). Only healthy active members converge: a
 * sick one is remediation's.
 */
export function converge(ctx: PoolContext): void {
  const { state: s, cfg } = ctx;
  const serving = cfg.serving;
  if (!serving || !s.initialized || ctx.run.stopping) return;
  const t = ctx.now();
  if (s.servingHold && t - s.servingHold.since > SERVING_HOLD_TTL_MS) {
    ctx.event(`serving hold of ${s.servingHold.holder} expired after ${SERVING_HOLD_TTL_MS / 3600_000} h`);
    delete s.servingHold;
  }
  const reported = new Set(s.reportedDrift ?? []);
  const now: string[] = [];
  for (const n of drifted(ctx)) {
    now.push(n.id);
    const serves = n.model ? `${n.model.uri} (${n.model.sha256.slice(0, 12)}…)` : 'no model';
    const acting = serving.reconcile === 'converge' && !s.servingHold;
    if (!reported.has(n.id)) {
      ctx.event(`drift: serves ${serves}, the pool's model is ${serving.model.uri} (${serving.model.sha256.slice(0, 12)}…)${acting ? '; converging through the budget' : serving.reconcile === 'report' ? ' (reconcile: report)' : ` (held by ${s.servingHold?.holder})`}`, n.id);
    }
    if (!acting || s.paused || s.breaker.open) continue;
    if (n.phase !== 'active' || n.health !== 'healthy' || (n.retryAfter && n.retryAfter > t)) continue;
    if (budget.leaseForNode(s.budget, n.id) || s.budget.queue.some((q) => q.nodeId === n.id)) continue;
    s.budget = budget.request(s.budget, { holder: convergeHolder(n.id), kind: 'converge', nodeId: n.id, requestedAt: t, origin: 'auto', reason: `serves ${serves}` });
  }
  s.reportedDrift = now;
}

/** A granted converge lease: the node is held out of traffic while it loads the pool's model. */
export function startConverge(ctx: PoolContext, l: budget.Lease): void {
  const node = l.nodeId ? ctx.state.nodes[l.nodeId] : undefined;
  if (!node || !ctx.cfg.serving) {
    ctx.state.budget = budget.release(ctx.state.budget, l.holder);
    return;
  }
  node.phase = 'cordoned';
  ctx.event(`converging to the pool's model ${ctx.cfg.serving.model.sha256.slice(0, 12)}…`, node.id);
  ctx.work.converge(ctx, node, l);
}

export function servingStatus(ctx: PoolContext): PoolServingStatus | undefined {
  const serving = ctx.cfg.serving;
  if (!serving) return undefined;
  const s = ctx.state;
  return {
    desired: serving.model,
    reconcile: serving.reconcile,
    ...(s.servingHold ? { hold: { holder: s.servingHold.holder, since: new Date(s.servingHold.since).toISOString() } } : {}),
    drifted: drifted(ctx).map((n) => ({ nodeId: n.id, serves: n.model ?? null, converging: !!budget.leaseOf(s.budget, convergeHolder(n.id)) })),
  };
}

// ---- the setServingModel update (rollouts) -----------------------------------------------------

export function validateSetServing(ctx: PoolContext, r: unknown): void {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw invalidArgument('input', 'expected a JSON object');
  const o = r as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['holder', 'model', 'hold'].includes(k)) throw invalidArgument(k, 'unknown field (allowed: holder, model, hold)');
  if (typeof o.holder !== 'string' || !HOLDER.test(o.holder)) throw invalidArgument('holder', "expected the caller's workflow id (letters, digits, . _ : / -, at most 200)");
  if (typeof o.model !== 'object' || o.model === null || Array.isArray(o.model)) throw invalidArgument('model', 'expected {uri, sha256}');
  modelRef(o.model as Record<string, unknown>);
  if (typeof o.hold !== 'boolean') throw invalidArgument('hold', 'expected true or false');
  const held = ctx.state.servingHold;
  if (held && held.holder !== o.holder) throw invalidArgument('holder', `the pool's serving state is held by ${held.holder} (a rollout walking the pool); wait for it to finish or abort it`);
}

/** Sets the desired model (the spec's serving.model) and takes or lets go of the hold; a pool without `serving` changes nothing. */
export function setServing(ctx: PoolContext, r: SetServingRequest): SetServingAnswer {
  const s = ctx.state;
  const current = ctx.cfg.serving;
  if (!current || !s.spec.serving) return { serving: false };
  const model: ModelRef = { uri: r.model.uri, sha256: r.model.sha256.toLowerCase() };
  const previous = current.model;
  if (previous.sha256 !== model.sha256 || previous.uri !== model.uri) {
    s.spec = { ...s.spec, serving: { ...s.spec.serving, model } };
    ctx.cfg = parseFleetPoolSpec(s.spec);
    ctx.event(`desired model set to ${model.uri} (${model.sha256.slice(0, 12)}…) by ${r.holder} (was ${previous.sha256.slice(0, 12)}…)`);
  }
  if (r.hold) s.servingHold ??= { holder: r.holder, since: ctx.now() };
  else if (s.servingHold?.holder === r.holder) {
    delete s.servingHold;
    ctx.event(`serving hold released by ${r.holder}`);
  }
  ctx.run.dirty = true;
  return { serving: true, previous };
}

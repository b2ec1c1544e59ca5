import { isDead } from '../common/health.ts';
import { replaceNodeWorkflowId } from '../common/ids.ts';
import type { IncidentView, PoolNode, PoolStatus } from './api.ts';
import { evaluate as evaluateBreaker } from './breaker.ts';
import * as budget from './budget.ts';
import { autoRemediation, healthyCount, members, type PoolContext } from './context.ts';
import { dropAutomaticRequests, grantPass, requestReplace } from './disruption.ts';
import { resolveAmount } from '../inputs/fleetPool.ts';
import { actionAt, classify, startRung, type FaultClass, type RemedyAction } from './ladder.ts';

/**
 * Incidents (behind patched('health-events')): a node gone bad opens one; a fatal fault
 * quarantines (cordons) it at once unless the breaker is open or remediation paused; remediation
 * then climbs the node's ladder (ladder.ts) through the disruption budget; the node is back in
 * service once it proves healthy, or the incident ends with its replacement. Each stage is an event
 * and is kept in the pool status; the closed incident goes to Prometheus (recordIncident).
 */
export type IncidentStage = 'detected' | 'quarantined' | 'remediation' | 'back-in-service' | 'replaced' | 'removed' | 'recovered';

export interface Incident {
  id: number;
  nodeId: string;
  class: FaultClass;
  reason: string;
  detectedAt: number;
  quarantinedAt?: number;
  /** Ladder rung of the remediation running or last started, and its action. */
  rung: number;
  action?: RemedyAction;
  remediationAt?: number;
  /** A `wait` rung: the fault has until then to clear by itself. */
  waitUntil?: number;
  closedAt?: number;
  outcome?: 'back-in-service' | 'replaced' | 'removed' | 'recovered';
  stages: { stage: IncidentStage; at: number; rung?: number; action?: RemedyAction }[];
}

export interface IncidentState {
  next: number;
  open: Record<string, Incident>;
  /** The last closed ones, newest last. */
  closed: Incident[];
}

const MAX_CLOSED = 20;

export function incidents(ctx: PoolContext): IncidentState {
  return (ctx.state.incidents ??= { next: 1, open: {}, closed: [] });
}

export const rebootHolder = (pool: string, nodeId: string) => `reboot/${pool}/${nodeId}`;

function stage(ctx: PoolContext, inc: Incident, st: IncidentStage, message: string, extra: { rung?: number; action?: RemedyAction } = {}): void {
  inc.stages.push({ stage: st, at: ctx.now(), ...extra });
  if (inc.stages.length > 12) inc.stages.splice(1, inc.stages.length - 12);
  ctx.event(`incident ${inc.id} ${message}`, inc.nodeId);
}

/** Ends the node's open incident (replaced, removed, back in service, recovered) and reports its stages. */
export function closeIncident(ctx: PoolContext, nodeId: string, outcome: NonNullable<Incident['outcome']>, note = ''): void {
  const st = ctx.state.incidents;
  const inc = st?.open[nodeId];
  if (!st || !inc) return;
  const t = ctx.now();
  inc.closedAt = t;
  inc.outcome = outcome;
  stage(ctx, inc, outcome, `${outcome.replace(/-/g, ' ')}${note ? `: ${note}` : ''} (${Math.round((t - inc.detectedAt) / 100) / 10} s after detection)`);
  delete st.open[nodeId];
  st.closed.push(inc);
  if (st.closed.length > MAX_CLOSED) st.closed.splice(0, st.closed.length - MAX_CLOSED);
  const n = ctx.state.nodes[nodeId];
  if (n) {
    if (inc.action) n.lastRemedy = { class: inc.class, rung: inc.rung, endedAt: t };
    delete n.quarantinedAt;
  }
  ctx.work.recordIncident?.(ctx, inc);
}

/** Out of service already: dead at the provider, or unreachable longer than unreachableAfterSeconds. */
export function outOfService(ctx: PoolContext, n: PoolNode, t = ctx.now()): boolean {
  if (n.health !== 'unreachable') return false;
  if (isDead(n.reasons)) return true;
  return n.unreachableSince !== undefined && t - n.unreachableSince >= ctx.cfg.health.unreachableAfterSeconds * 1000;
}

/** minHealthy over the nodes still in service: replacing a node that is already out of service takes nothing away. */
export function inServiceMinHealthy(ctx: PoolContext): number {
  const inService = members(ctx).filter((n) => !outOfService(ctx, n)).length;
  return resolveAmount(ctx.cfg.disruption.minHealthy, inService, 'up');
}

const badNow = (n: PoolNode) => n.health === 'unhealthy' || n.health === 'unreachable';

function inFlight(ctx: PoolContext, n: PoolNode): boolean {
  const b = ctx.state.budget;
  return [replaceNodeWorkflowId(ctx.pool, n.id), rebootHolder(ctx.pool, n.id)].some((h) => budget.leaseOf(b, h) || budget.queuePosition(b, h)) || !!budget.leaseForNode(b, n.id);
}

/** Asks for a reboot lease (FIFO with every other disruption). */
function requestReboot(ctx: PoolContext, n: PoolNode, reason: string): void {
  const s = ctx.state;
  s.budget = budget.request(s.budget, { holder: rebootHolder(ctx.pool, n.id), kind: 'reboot', nodeId: n.id, requestedAt: ctx.now(), origin: 'auto', reason });
  grantPass(ctx);
}

/**
 * After each pass of health news (probe or watch): the breaker with the outage rules, then for
 * each member its incident: open, quarantine, the next rung, or back in service.
 */
export function remediateWithLadder(ctx: PoolContext): void {
  const { state: s, cfg } = ctx;
  if (!s.initialized) return;
  const rc = cfg.health.remediation;
  const t = ctx.now();
  const ms = members(ctx);
  s.breaker = evaluateBreaker(
    s.breaker,
    cfg.disruption.breaker,
    { size: ms.length, healthy: healthyCount(ctx), minHealthy: inServiceMinHealthy(ctx), bad: ms.filter(badNow).length },
    t,
  );
  if (s.breaker.open && s.breaker.openedAt === t) {
    ctx.event(`circuit breaker opened: ${s.breaker.reason}; automatic remediation and quarantine stop until resumeRemediation`);
    dropAutomaticRequests(ctx, 'breaker open');
  }
  const st = incidents(ctx);
  for (const id of Object.keys(st.open)) if (!s.nodes[id]) closeIncident(ctx, id, 'removed', 'the node left the pool');
  const auto = autoRemediation(ctx);
  for (const n of ms) {
    if (n.phase === 'replacing' || n.phase === 'leaving' || n.phase === 'rebooting') continue;
    let inc = st.open[n.id];
    const bad = badNow(n);
    if (bad && !inc) {
      const cls = classify(n.health, n.reasons);
      inc = { id: st.next++, nodeId: n.id, class: cls, reason: (n.reasons ?? [n.health]).join('; ').slice(0, 300), detectedAt: n.badSince ?? t, rung: startRung(cls, n.lastRemedy, t, rc), stages: [] };
      st.open[n.id] = inc;
      stage(ctx, inc, 'detected', `detected: ${cls} (${inc.reason})${inc.rung ? `; came back within ${rc.recurrenceWindowSeconds} s of the last remediation: rung ${inc.rung + 1}` : ''}`);
    }
    if (!inc || inFlight(ctx, n)) continue;
    if (inc.class === 'unreachable' && isDead(n.reasons)) inc.class = 'dead'; // the provider has since said why
    if (!bad) {
      // Healthy (or only degraded) again, with no remediation running: the node proved itself.
      if (n.health === 'healthy' || n.health === 'degraded') {
        if (n.quarantinedAt) ctx.work.uncordon(ctx, n.id);
        closeIncident(ctx, n.id, inc.action ? 'back-in-service' : 'recovered', inc.action ? `after ${inc.action}` : 'the fault cleared by itself');
      }
      continue;
    }
    // Quarantine first: a fatal fault stops the node taking work at once (not while the breaker is open).
    if (rc.quarantine && cfg.health.autoReplace && n.health === 'unhealthy' && !n.quarantinedAt && !s.breaker.open && !s.paused) {
      n.quarantinedAt = t;
      inc.quarantinedAt ??= t;
      ctx.work.quarantine?.(ctx, n.id);
      stage(ctx, inc, 'quarantined', `quarantined (cordoned) ${Math.round((t - inc.detectedAt) / 100) / 10} s after detection`);
    }
    if (!auto || (n.retryAfter && n.retryAfter > t)) continue;
    const ready =
      n.health === 'unhealthy' ? n.badProbes >= cfg.health.unhealthyAfter : isDead(n.reasons) || (n.unreachableSince !== undefined && t - n.unreachableSince >= cfg.health.unreachableAfterSeconds * 1000);
    if (!ready) continue;
    if (inc.waitUntil !== undefined) {
      if (t < inc.waitUntil) continue;
      delete inc.waitUntil;
      inc.rung++;
    }
    let action = actionAt(inc.class, inc.rung, rc);
    if (action === 'reboot' && isDead(n.reasons)) action = 'replace'; // a dead instance cannot take a reboot
    inc.action = action;
    inc.remediationAt = t;
    const reason = n.health === 'unhealthy' ? `unhealthy for ${n.badProbes} probes: ${(n.reasons ?? []).join('; ')}` : `${isDead(n.reasons) ? 'dead' : 'unreachable'}: ${(n.reasons ?? []).join('; ')}`;
    stage(ctx, inc, 'remediation', `remediation: rung ${inc.rung + 1} of ${inc.class}: ${action}`, { rung: inc.rung, action });
    if (action === 'replace') requestReplace(ctx, n, 'auto', `${reason} (incident ${inc.id}, rung ${inc.rung + 1})`);
    else if (action === 'reboot') requestReboot(ctx, n, `${reason} (incident ${inc.id}, rung ${inc.rung + 1})`);
    else inc.waitUntil = t + rc.waitSeconds * 1000;
  }
}

/** A rung that did not bring the node back (reboot failed or left it unhealthy): the next pass runs the next rung. */
export function rungFailed(ctx: PoolContext, nodeId: string, why: string): void {
  const inc = ctx.state.incidents?.open[nodeId];
  if (!inc) return;
  inc.rung++;
  ctx.event(`incident ${inc.id}: ${why}; next rung: ${actionAt(inc.class, inc.rung, ctx.cfg.health.remediation)}`, nodeId);
}

export function openIncident(ctx: PoolContext, nodeId: string): Incident | undefined {
  return ctx.state.incidents?.open[nodeId];
}

/** resumeRemediation while the breaker was open: remember the condition the operator accepted (breaker.latched). */
export function latchBreaker(ctx: PoolContext, reason: string): void {
  const ms = members(ctx);
  ctx.state.breaker.latched = { at: ctx.now(), reason, bad: ms.filter(badNow).length, healthy: healthyCount(ctx) };
  ctx.event(`breaker latched closed: the operator accepted "${reason}"; it opens again only if more than ${ctx.state.breaker.latched.bad} node(s) are bad`);
}

const iso = (ms?: number) => (ms === undefined ? undefined : new Date(ms).toISOString());

function view(inc: Incident): IncidentView {
  const { detectedAt, quarantinedAt, remediationAt, waitUntil, closedAt, stages, ...rest } = inc;
  return {
    ...rest,
    detectedAt: iso(detectedAt)!,
    ...(quarantinedAt !== undefined ? { quarantinedAt: iso(quarantinedAt) } : {}),
    ...(remediationAt !== undefined ? { remediationAt: iso(remediationAt) } : {}),
    ...(waitUntil !== undefined ? { waitUntil: iso(waitUntil) } : {}),
    ...(closedAt !== undefined ? { closedAt: iso(closedAt) } : {}),
    stages: stages.map((x) => ({ ...x, at: iso(x.at)! })),
  };
}

/** The status query's incident part (pools with health events only). */
export function incidentStatus(ctx: PoolContext): Pick<PoolStatus, 'incidents' | 'dead' | 'quarantined' | 'phaseReason'> | undefined {
  if (!ctx.run.health) return undefined;
  const st = incidents(ctx);
  const ms = members(ctx);
  const l = ctx.state.breaker.latched;
  return {
    incidents: { open: Object.values(st.open).map(view), recent: st.closed.slice(-10).map(view) },
    dead: ms.filter((n) => n.health === 'unreachable' && isDead(n.reasons)).length,
    quarantined: ms.filter((n) => n.quarantinedAt !== undefined).length,
    ...(l && !ctx.state.breaker.open && !ctx.state.paused
      ? { phaseReason: `breaker latched closed by resumeRemediation at ${iso(l.at)} (accepted: ${l.reason}); it opens again only if more than ${l.bad} node(s) go bad` }
      : {}),
  };
}

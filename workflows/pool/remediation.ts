import { replaceNodeWorkflowId } from '../common/ids.ts';
import { evaluate as evaluateBreaker } from './breaker.ts';
import * as budget from './budget.ts';
import { autoRemediation, healthyCount, members, minHealthy, type PoolContext } from './context.ts';
import { dropAutomaticRequests, requestReplace } from './disruption.ts';
import { remediateWithLadder } from './incidents.ts';

/**
 * Automatic remediation after each probe: the circuit breaker is judged first (opening it drops
 * queued automatic requests); then, unless paused, the breaker is open or autoReplace is off, a
 * replacement is requested for each member unhealthy for `unhealthyAfter` probes or unreachable
 * for `unreachableAfterSeconds`, unless it waits out a failed try.
 */
export function remediate(ctx: PoolContext): void {
  if (ctx.run.health) return remediateWithLadder(ctx); // incidents.ts: quarantine, the ladder, the outage rules
  const { state: s, cfg } = ctx;
  if (!s.initialized) return;
  const t = ctx.now();
  s.breaker = evaluateBreaker(s.breaker, cfg.disruption.breaker, { size: members(ctx).length, healthy: healthyCount(ctx), minHealthy: minHealthy(ctx) }, t);
  if (s.breaker.open && s.breaker.openedAt === t) {
    ctx.event(`circuit breaker opened: ${s.breaker.reason}; automatic remediation stops until resumeRemediation`);
    dropAutomaticRequests(ctx, 'breaker open');
  }
  if (!autoRemediation(ctx)) return;
  for (const n of members(ctx)) {
    if (n.phase !== 'active' && n.phase !== 'cordoned') continue;
    if (n.retryAfter && n.retryAfter > t) continue;
    const holder = replaceNodeWorkflowId(ctx.pool, n.id);
    if (budget.leaseOf(s.budget, holder) || budget.queuePosition(s.budget, holder)) continue;
    let reason: string | undefined;
    if (n.health === 'unhealthy' && n.badProbes >= cfg.health.unhealthyAfter) reason = `unhealthy for ${n.badProbes} probes: ${(n.reasons ?? []).join('; ')}`;
    else if (n.health === 'unreachable' && n.unreachableSince !== undefined && t - n.unreachableSince >= cfg.health.unreachableAfterSeconds * 1000) {
      reason = `unreachable for ${Math.round((t - n.unreachableSince) / 1000)} s`;
    }
    if (reason) requestReplace(ctx, n, 'auto', reason);
  }
}

import { replaceNodeWorkflowId } from '../common/ids.ts';
import type { LeaseAnswer, PoolNode } from './api.ts';
import * as budget from './budget.ts';
import { maxUnavailable, members, type PoolContext } from './context.ts';
import { startConverge } from './serving.ts';

/**
 * The pool's side of the disruption budget (budget.ts is the pure queue): granting leases and
 * starting the work a granted lease allows, replacement requests, outside holders, expiry.
 */

/** Voids requests for nodes that left, then grants from the head of the queue and starts the granted work. */
export function grantPass(ctx: PoolContext): void {
  const s = ctx.state;
  for (const r of s.budget.queue) if (r.nodeId && !s.nodes[r.nodeId]) s.budget = budget.release(s.budget, r.holder);
  if (ctx.run.stopping) return;
  // Quarantined members are out of service without a lease; they count toward the budget (patched('quarantine-counts')).
  const quarantined = ctx.run.quarantineCounts ? new Set(members(ctx).filter((n) => n.quarantinedAt !== undefined).map((n) => n.id)) : undefined;
  const { budget: next, granted } = budget.grant(s.budget, maxUnavailable(ctx), ctx.now(), quarantined);
  s.budget = next;
  s.maxDisrupted = Math.max(s.maxDisrupted, s.budget.leases.length);
  for (const l of granted) startLeaseWork(ctx, l);
}

/** Starts what a granted lease is for: a replacement, a scale-down or a cordon; an external lease only marks its node. */
export function startLeaseWork(ctx: PoolContext, l: budget.Lease): void {
  const s = ctx.state;
  if (l.kind === 'external') {
    const n = isOutsideReplacement(ctx, l.holder) && l.nodeId ? s.nodes[l.nodeId] : undefined;
    if (n) n.phase = 'replacing';
    ctx.event(n ? `a replaceNode started outside the pool took a lease (${l.holder})` : `lease granted to ${l.holder}`, l.nodeId);
    return;
  }
  const node = l.nodeId ? s.nodes[l.nodeId] : undefined;
  if (!node) {
    s.budget = budget.release(s.budget, l.holder);
    return;
  }
  if (l.kind === 'replace') {
    node.phase = 'replacing';
    s.replacements.started++;
    const reason = l.reason ?? 'unhealthy';
    ctx.event(`replacing (${l.origin ?? 'auto'}): ${reason}`, node.id);
    ctx.work.replace(ctx, node, l, reason);
  } else if (l.kind === 'reboot') {
    node.phase = 'rebooting';
    ctx.event(`rebooting (${l.origin ?? 'auto'}): ${l.reason ?? 'remediation'}`, node.id);
    ctx.work.reboot?.(ctx, node, l);
  } else if (l.kind === 'converge') {
    startConverge(ctx, l);
  } else if (l.kind === 'scale-down') {
    node.phase = 'leaving';
    ctx.event('scaling down: cordon, drain, terminate', node.id);
    ctx.work.scaleDown(ctx, node, l);
  } else {
    node.phase = 'cordoned';
    ctx.event('cordoned by operator', node.id);
    ctx.work.cordon(ctx, node, l);
  }
}

/** Asks for a replacement; a node the operator cordoned hands its lease over instead of queuing again. */
export function requestReplace(ctx: PoolContext, node: PoolNode, origin: 'auto' | 'operator', reason: string, force?: boolean): LeaseAnswer {
  const s = ctx.state;
  const holder = replaceNodeWorkflowId(ctx.pool, node.id);
  const cordon = `cordon/${node.id}`;
  if (budget.leaseOf(s.budget, cordon)) {
    s.budget = budget.transfer(s.budget, cordon, { holder, kind: 'replace' });
    const l = budget.leaseOf(s.budget, holder)!;
    Object.assign(l, { origin, reason, force });
    startLeaseWork(ctx, l);
    return { holder, granted: true, position: 0 };
  }
  s.budget = budget.release(s.budget, cordon);
  s.budget = budget.request(s.budget, { holder, kind: 'replace', nodeId: node.id, requestedAt: ctx.now(), origin, reason, ...(force === undefined ? {} : { force }) });
  grantPass(ctx);
  return leaseAnswer(ctx, holder);
}

export function leaseAnswer(ctx: PoolContext, holder: string): LeaseAnswer {
  const b = ctx.state.budget;
  return { holder, granted: !!budget.leaseOf(b, holder), position: budget.queuePosition(b, holder) };
}

/** A replaceNode workflow started directly (CLI, Web UI) holds `replace/<pool>/<node>` as an external lease. */
export function isOutsideReplacement(ctx: PoolContext, holder: string): boolean {
  return holder.startsWith(`replace/${ctx.pool}/`);
}

/** When an outside replacement gives its lease back, the node is active again until the next probe says whether it still exists. */
export function outsideReplacementEnded(ctx: PoolContext, l: budget.LeaseRequest): void {
  const n = l.nodeId ? ctx.state.nodes[l.nodeId] : undefined;
  if (!n || !isOutsideReplacement(ctx, l.holder) || n.phase !== 'replacing') return;
  n.phase = 'active';
  n.badProbes = 0;
  n.retryAfter = ctx.now() + 2 * ctx.cfg.health.probeIntervalSeconds * 1000;
}

export function dropAutomaticRequests(ctx: PoolContext, why: string): void {
  const s = ctx.state;
  const auto = s.budget.queue.filter((r) => r.origin === 'auto');
  for (const r of auto) s.budget = budget.release(s.budget, r.holder);
  if (auto.length) ctx.event(`${auto.length} queued automatic replacement(s) dropped: ${why}`);
}

/** Drops external leases whose holder stopped renewing them. */
export function expireLeases(ctx: PoolContext): void {
  const s = ctx.state;
  const expired = budget.expire(s.budget, ctx.now());
  s.budget = expired.budget;
  for (const l of expired.expired) {
    outsideReplacementEnded(ctx, l);
    ctx.event(`lease of ${l.holder} expired after ${l.ttlSeconds} s without renewal`, l.nodeId);
  }
}

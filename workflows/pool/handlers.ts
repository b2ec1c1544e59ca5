import { parseFleetPoolSpec, type FleetPoolSpec } from '../inputs/fleetPool.ts';
import type { LeaseAnswer, PoolPhase } from './api.ts';
import { sizeBounds } from './autoscale/index.ts';
import { clampDesired } from './autoscaler.ts';
import { reset as resetBreaker } from './breaker.ts';
import * as budget from './budget.ts';
import { claims, members, poolPhase, type PoolContext } from './context.ts';
import { dropAutomaticRequests, grantPass, leaseAnswer, outsideReplacementEnded, requestReplace } from './disruption.ts';
import { addNode } from './membership.ts';
import { latchBreaker } from './incidents.ts';

/**
 * What each of the pool's updates does to its state, once its validator (validators.ts) accepted
 * it. Every handler marks the state dirty, so the main loop acts on it at once.
 */

// ---- spec and size --------------------------------------------------------------------------

export function applySpec(ctx: PoolContext, spec: FleetPoolSpec): { desired: number } {
  const s = ctx.state;
  ctx.cfg = parseFleetPoolSpec(spec);
  s.spec = spec;
  s.autoscaler = clampDesired({ ...s.autoscaler, ...(ctx.cfg.desiredNodes !== undefined ? { desired: ctx.cfg.desiredNodes } : {}) }, sizeBounds(ctx));
  ctx.event('spec applied');
  ctx.run.dirty = true;
  return { desired: s.autoscaler.desired };
}

export function resize(ctx: PoolContext, r: { minNodes?: number; maxNodes?: number; desiredNodes?: number }): { desired: number; minNodes: number; maxNodes: number } {
  const s = ctx.state;
  s.spec = { ...s.spec, ...(r.minNodes !== undefined ? { minNodes: r.minNodes } : {}), ...(r.maxNodes !== undefined ? { maxNodes: r.maxNodes } : {}) };
  if (r.desiredNodes !== undefined) s.spec = { ...s.spec, desiredNodes: r.desiredNodes };
  ctx.cfg = parseFleetPoolSpec(s.spec);
  s.autoscaler = clampDesired({ ...s.autoscaler, ...(r.desiredNodes !== undefined ? { desired: r.desiredNodes } : {}) }, sizeBounds(ctx));
  ctx.event(`resized: min ${ctx.cfg.minNodes}, max ${ctx.cfg.maxNodes}, desired ${s.autoscaler.desired}`);
  ctx.run.dirty = true;
  return { desired: s.autoscaler.desired, minNodes: ctx.cfg.minNodes, maxNodes: ctx.cfg.maxNodes };
}

// ---- remediation --------------------------------------------------------------------------

export function pauseRemediation(ctx: PoolContext, r?: { reason?: string }): { phase: PoolPhase } {
  const s = ctx.state;
  s.paused = { reason: r?.reason ?? 'paused by operator', at: ctx.now() };
  dropAutomaticRequests(ctx, 'remediation paused');
  ctx.event(`remediation paused: ${s.paused.reason}`);
  ctx.run.dirty = true;
  return { phase: poolPhase(ctx) };
}

/** Also closes the breaker and lifts every node's wait after a failed replacement. */
export function resumeRemediation(ctx: PoolContext): { phase: PoolPhase } {
  const s = ctx.state;
  const was = poolPhase(ctx);
  delete s.paused;
  const open = s.breaker.open ? s.breaker.reason : undefined;
  s.breaker = resetBreaker();
  if (ctx.run.health && open) latchBreaker(ctx, open); // incidents.ts: the same condition does not re-open it
  for (const n of members(ctx)) delete n.retryAfter;
  ctx.event(`remediation resumed by operator (was ${was})`);
  ctx.run.dirty = true;
  return { phase: poolPhase(ctx) };
}

// ---- operator's node actions ------------------------------------------------------------------

export function cordonNode(ctx: PoolContext, { nodeId }: { nodeId: string }): LeaseAnswer {
  const s = ctx.state;
  const holder = `cordon/${nodeId}`;
  s.budget = budget.request(s.budget, { holder, kind: 'cordon', nodeId, requestedAt: ctx.now(), origin: 'operator' });
  grantPass(ctx);
  ctx.run.dirty = true;
  return leaseAnswer(ctx, holder);
}

/** Gives the cordon lease back (or drops the queued request); a cordoned node is uncordoned on its agent. */
export function uncordonNode(ctx: PoolContext, { nodeId }: { nodeId: string }): { nodeId: string } {
  const s = ctx.state;
  const holder = `cordon/${nodeId}`;
  const held = !!budget.leaseOf(s.budget, holder);
  s.budget = budget.release(s.budget, holder);
  const n = s.nodes[nodeId];
  if (held && n) {
    n.phase = 'active';
    ctx.work.uncordon(ctx, nodeId);
  }
  ctx.event('uncordoned by operator', nodeId);
  ctx.run.dirty = true;
  return { nodeId };
}

export function replaceNode(ctx: PoolContext, { nodeId, reason, force }: { nodeId: string; reason?: string; force?: boolean }): LeaseAnswer {
  ctx.run.dirty = true;
  return requestReplace(ctx, ctx.state.nodes[nodeId], 'operator', reason ?? 'manual (pool update)', force);
}

// ---- other workflows' leases ------------------------------------------------------------------

/** Queues, renews, or (for a replacement the pool had queued itself) hands the queued place to the outside holder. */
export function acquireLease(ctx: PoolContext, { holder, nodeId, ttlSeconds }: { holder: string; nodeId?: string; ttlSeconds?: number }): LeaseAnswer {
  const s = ctx.state;
  const queued = s.budget.queue.find((q) => q.holder === holder);
  if (budget.leaseOf(s.budget, holder)) s.budget = budget.renew(s.budget, holder, ctx.now());
  else if (queued && queued.kind !== 'external') {
    // The pool had queued this node's replacement itself; the outside replaceNode takes its place in line.
    s.budget = { ...s.budget, queue: s.budget.queue.map((q) => (q === queued ? { ...q, kind: 'external' as const, origin: 'workflow' as const, ttlSeconds: ttlSeconds ?? 1800 } : q)) };
    grantPass(ctx);
  } else {
    s.budget = budget.request(s.budget, { holder, kind: 'external', requestedAt: ctx.now(), origin: 'workflow', ttlSeconds: ttlSeconds ?? 1800, ...(nodeId ? { nodeId } : {}) });
    grantPass(ctx);
  }
  ctx.run.dirty = true;
  return leaseAnswer(ctx, holder);
}

export function releaseLease(ctx: PoolContext, { holder }: { holder: string }): { released: boolean } {
  const s = ctx.state;
  const lease = budget.leaseOf(s.budget, holder);
  const released = !!lease || !!budget.queuePosition(s.budget, holder);
  s.budget = budget.release(s.budget, holder);
  if (lease) outsideReplacementEnded(ctx, lease);
  if (released) ctx.event(`lease released by ${holder}`);
  ctx.run.dirty = true;
  return { released };
}

// ---- claims (blue-green) ----------------------------------------------------------------------

export function claimNodes(ctx: PoolContext, { holder, nodeIds }: { holder: string; nodeIds: string[] }): { claimed: string[] } {
  const held = claims(ctx);
  const fresh = nodeIds.filter((id) => held[id] !== holder);
  for (const id of nodeIds) held[id] = holder;
  if (fresh.length) ctx.event(`${fresh.length} instance(s) claimed by ${holder}: ${fresh.join(', ')}`);
  ctx.run.dirty = true;
  return { claimed: nodeIds };
}

/** In one step: claimed instances join as members, members leave and stay claimed by the holder. */
export function swapMembers(ctx: PoolContext, { holder, admit, remove }: { holder: string; admit: string[]; remove: string[] }): { members: number } {
  const s = ctx.state;
  const held = claims(ctx);
  for (const id of admit) {
    delete held[id];
    addNode(ctx, id, s.view[id] ?? 'healthy');
  }
  for (const id of remove) {
    if (!s.nodes[id]) continue; // already swapped out (a retried call)
    delete s.nodes[id];
    held[id] = holder;
  }
  ctx.event(`membership switched by ${holder}: ${admit.length} in (${admit.join(', ')}), ${remove.length} out (${remove.join(', ')})`);
  ctx.run.dirty = true;
  return { members: members(ctx).length };
}

export function releaseClaims(ctx: PoolContext, { holder, nodeIds }: { holder: string; nodeIds?: string[] }): { released: string[] } {
  const held = claims(ctx);
  const released = Object.keys(held).filter((id) => held[id] === holder && (!nodeIds || nodeIds.includes(id)));
  for (const id of released) delete held[id];
  if (released.length) ctx.event(`${released.length} claim(s) released by ${holder}`);
  ctx.run.dirty = true;
  return { released };
}

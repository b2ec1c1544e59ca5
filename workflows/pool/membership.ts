import type { PoolNode } from './api.ts';
import { sizeBounds } from './autoscale/index.ts';
import { clampDesired } from './autoscaler.ts';
import * as budget from './budget.ts';
import { members, type PoolContext } from './context.ts';
import { isOutsideReplacement } from './disruption.ts';

/** Membership: which live instances belong to the pool, reconciled with the provider after each probe. */

/** Adds an instance as an active member (no-op for a member). */
export function addNode(ctx: PoolContext, id: string, health: PoolNode['health'] = ctx.state.view[id] ?? 'unknown'): void {
  const s = ctx.state;
  if (s.nodes[id]) return;
  const now = ctx.now();
  s.nodes[id] = { id, phase: 'active', health, badProbes: 0, joinedAt: now, ...(health === 'unreachable' ? { unreachableSince: now } : {}) };
}

/**
 * The first time: adopts every live instance and sets the desired size. Then: drops members the
 * provider no longer lists, and adopts or reports unknown drydock-tagged instances once no
 * replacement or scale-up is running (those add their own instances when done).
 */
export function reconcile(ctx: PoolContext): void {
  const { state: s, cfg } = ctx;
  const t = ctx.now();
  if (!s.initialized) {
    for (const id of Object.keys(s.view)) addNode(ctx, id);
    const live = Object.keys(s.view).length;
    s.autoscaler = clampDesired({ ...s.autoscaler, desired: cfg.desiredNodes ?? live }, sizeBounds(ctx));
    s.initialized = true;
    ctx.event(`reconciled with the provider: ${live} live instance(s) adopted; desired ${s.autoscaler.desired}`);
    return;
  }
  const probedAt = s.lastProbe?.at ?? t;
  for (const n of members(ctx)) {
    // Nodes that joined while the probe ran may not be in its list yet.
    if (n.id in s.view || n.phase === 'replacing' || n.phase === 'leaving' || n.phase === 'rebooting' || n.joinedAt >= probedAt) continue;
    delete s.nodes[n.id];
    s.budget = budget.release(s.budget, `cordon/${n.id}`);
    ctx.event('missing at the provider: removed; the pool will provision a replacement to hold its size', n.id);
  }
  // New instances appear while a replacement or scale-up runs; those tasks add them when done.
  const settled =
    ![...ctx.run.tasks.keys()].some((k) => k.startsWith('replace/') || k.includes('/scale-up/')) &&
    !s.budget.leases.some((l) => l.kind === 'external' && isOutsideReplacement(ctx, l.holder));
  if (!settled) return;
  for (const id of Object.keys(s.view)) {
    if (s.nodes[id] || s.claims?.[id]) continue;
    if (cfg.membership.unknownInstances === 'adopt') {
      addNode(ctx, id);
      ctx.event('unknown drydock-tagged instance adopted', id);
    } else if (!s.reportedUnknown.includes(id)) {
      s.reportedUnknown.push(id);
      ctx.event('unknown drydock-tagged instance (reported, not adopted)', id);
    }
  }
  s.reportedUnknown = s.reportedUnknown.filter((id) => id in s.view);
}

import { fleetPoolWorkflowId } from '../common/ids.ts';
import { pickScaleDown } from './autoscaler.ts';
import * as budget from './budget.ts';
import { members, type PoolContext } from './context.ts';
import { startLeaseWork } from './disruption.ts';

/**
 * Holds the pool at the autoscaler's desired size: provisions what is missing (cancelling queued
 * scale-downs first), and queues scale-downs through the budget for what is too many, taking
 * cordoned, then idle, then the least-loaded, then the newest nodes; an operator's cordon lease becomes the scale-down's.
 */
export function size(ctx: PoolContext): void {
  const s = ctx.state;
  if (ctx.run.stopping || !s.initialized) return;
  const downQueued = s.budget.queue.filter((r) => r.kind === 'scale-down');
  const staying = members(ctx).filter((n) => n.phase !== 'leaving').length + ctx.run.provisioning;
  const desired = s.autoscaler.desired;
  let effective = staying - downQueued.length;
  // Cancel queued scale-downs first when the target went back up.
  while (effective < desired && downQueued.length) {
    s.budget = budget.release(s.budget, downQueued.pop()!.holder);
    effective++;
  }
  for (let i = effective; i < desired; i++) startProvision(ctx);
  if (effective > desired) {
    const t = ctx.now();
    const queuedNodes = new Set(s.budget.queue.map((r) => r.nodeId));
    const candidates = members(ctx)
      .filter((n) => (n.phase === 'active' || n.phase === 'cordoned') && !queuedNodes.has(n.id) && !(n.retryAfter && n.retryAfter > t))
      .map((n) => ({ ...n, cordoned: n.phase === 'cordoned', idle: s.idle.includes(n.id), ...(s.loads?.[n.id] !== undefined ? { load: s.loads[n.id] } : {}) }));
    for (let i = effective; i > desired; i--) {
      const victim = pickScaleDown(candidates);
      if (!victim) break;
      candidates.splice(candidates.indexOf(victim), 1);
      const holder = `scale-down/${victim.id}`;
      if (budget.leaseOf(s.budget, `cordon/${victim.id}`)) {
        s.budget = budget.transfer(s.budget, `cordon/${victim.id}`, { holder, kind: 'scale-down' });
        startLeaseWork(ctx, budget.leaseOf(s.budget, holder)!);
      } else {
        s.budget = budget.request(s.budget, { holder, kind: 'scale-down', nodeId: victim.id, requestedAt: t, origin: 'auto' });
      }
    }
  }
}

/** One scale-up under a fresh idempotency key (`pool/<name>/scale-up/<n>`, never reused). */
function startProvision(ctx: PoolContext): void {
  const key = `${fleetPoolWorkflowId(ctx.pool)}/scale-up/${++ctx.state.provisionCounter}`;
  ctx.run.provisioning++;
  ctx.event(`scaling up: provisioning with key ${key}`);
  ctx.work.provision(ctx, key);
}

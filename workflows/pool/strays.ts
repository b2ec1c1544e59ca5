import * as budget from './budget.ts';
import type { PoolContext } from './context.ts';

/** Probes in a row that must see a stray cordon before the pool undoes it. */
export const STRAY_PROBES = 2;

/**
 * A member the agent reports cordoned while nothing of the pool holds it (active, not quarantined,
 * healthy or degraded, no lease, no queued request, no task on the node) is a cordon whose
 * uncordon was lost: an agent that did not answer the uncordon, or a cordon retried after it.
 * The pool owns whether its members take traffic, so after STRAY_PROBES probes it uncordons it.
 */
export function uncordonStrays(ctx: PoolContext, cordoned: string[]): void {
  const { state: s, run } = ctx;
  const seen = run.strays ?? new Map<string, number>();
  const next = new Map<string, number>();
  for (const id of cordoned) {
    const n = s.nodes[id];
    if (!n || n.phase !== 'active' || n.quarantinedAt !== undefined || (n.health !== 'healthy' && n.health !== 'degraded')) continue;
    if (budget.leaseForNode(s.budget, id) || s.budget.queue.some((r) => r.nodeId === id)) continue;
    if ([...run.tasks.keys()].some((k) => k.endsWith(`/${id}`))) continue;
    const count = (seen.get(id) ?? 0) + 1;
    if (count < STRAY_PROBES) {
      next.set(id, count);
      continue;
    }
    ctx.event(`cordoned at the agent with nothing of the pool holding it (${count} probes): uncordoned`, id);
    ctx.work.uncordon(ctx, id);
  }
  run.strays = next;
}

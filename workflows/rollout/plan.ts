import { resolveAmount, type Amount } from '../inputs/validate.ts';
import type { ResolvedStep } from '../inputs/rollingUpdate.ts';

/** How many nodes a batch step takes: counts as given, percentages of the pool rounded up (at least 1). */
export function batchSize(a: Amount, total: number): number {
  return Math.max(1, resolveAmount(a, total, 'up'));
}

/** The rollout's own limit on nodes out of service at once: percentages round down, at least 1. */
export function unavailableLimit(a: Amount, total: number): number {
  return resolveAmount(a, total, 'down-min-1');
}

/** Steps still to run: the explicit ones, then enough default batches of `limit` for `pendingAfterSteps` nodes. */
export function estimateSteps(steps: ResolvedStep[], total: number, limit: number): number {
  let left = total;
  for (const s of steps) if ('batch' in s) left -= Math.min(left, batchSize(s.batch, total));
  return steps.length + Math.ceil(Math.max(left, 0) / Math.max(limit, 1));
}

import type { ProbePoolResult } from '../../../activities/pool/probe.ts';
import { decide } from '../autoscaler.ts';
import type { PoolContext } from '../context.ts';
import { currentBounds, decidePolicies } from './decide.ts';
import type { SizeBounds } from './schedule.ts';

/** The pool's hooks into autoscaling: one decision per probe, and the bounds other steps clamp to. */

/** Whether the probe must measure load (slots, queue) and request latency for this pool's policies. */
export function loadWanted(ctx: PoolContext): { latency: boolean } | undefined {
  const { type, policies } = ctx.cfg.autoscaling;
  if (type === 'none' || type === 'reactive') return undefined;
  return { latency: policies.some((p) => p.type === 'latency') };
}

/** One decision after a probe: `none` and `reactive` as before, the other policies through autoscale/decide.ts. */
export function autoscale(ctx: PoolContext, r: ProbePoolResult, now: number): void {
  const { state: s, cfg } = ctx;
  if (cfg.autoscaling.type === 'none' || cfg.autoscaling.type === 'reactive') {
    const d = decide(s.autoscaler, { ...cfg.autoscaling, type: cfg.autoscaling.type, minNodes: cfg.minNodes, maxNodes: cfg.maxNodes }, r.utilization, now);
    s.autoscaler = d.state;
    if (d.change !== 'none') ctx.event(`autoscaler: ${d.state.lastDecision}`);
    return;
  }
  const load = r.load && { ...r.load, ...(r.utilization !== undefined ? { utilization: r.utilization, utilizationNodes: r.activeNodes } : {}) };
  const d = decidePolicies({ ...s.autoscaler, utilization: r.utilization }, cfg.autoscaling, cfg, load, now);
  s.autoscaler = d.state;
  for (const e of d.events) ctx.event(e);
}

/** The size bounds in force now: an open scheduled window's, else the pool's min and max. */
export function sizeBounds(ctx: PoolContext): SizeBounds {
  return currentBounds(ctx.cfg, ctx.now());
}

import type { AutoscalingConfig } from '../../inputs/autoscaling.ts';
import type { AutoscalerState } from '../autoscaler.ts';
import { propose, type PoolLoad } from './policies.ts';
import { boundsAt, type SizeBounds } from './schedule.ts';

/**
 * One decision of the queue / latency / scheduled / composite autoscaler (pure). The pool wants
 * the largest size any policy asks for, clamped to the bounds (an open window's, else the pool's).
 * Leaving the bounds is immediate; moving inside them waits until the pool has wanted more
 * (fewer) nodes for upAfterSeconds (downAfterSeconds) on end, measured from the last scale
 * action too, and moves at most maxStep nodes.
 */

export interface Decision {
  state: AutoscalerState;
  change: 'up' | 'down' | 'none';
  /** Events to record: the decision with its inputs, windows opening and closing. */
  events: string[];
}

const clamp = (n: number, b: SizeBounds) => Math.min(b.maxNodes, Math.max(b.minNodes, n));

export function decidePolicies(s: AutoscalerState, cfg: Pick<AutoscalingConfig, 'type' | 'policies' | 'upAfterSeconds' | 'downAfterSeconds' | 'maxStep'>, pool: { minNodes: number; maxNodes: number }, load: PoolLoad | undefined, now: number): Decision {
  const bounds = boundsAt(cfg.policies, pool, now);
  const events: string[] = [];
  if (bounds.window !== s.window) {
    if (s.window) events.push(`autoscaler: window ${s.window} closed`);
    if (bounds.window) events.push(`autoscaler: window ${bounds.window} open: min ${bounds.minNodes}, max ${bounds.maxNodes}`);
  }
  const proposals = cfg.policies.map((p) => propose(p, load, s.desired, bounds));
  const inputs = proposals.map((p) => p.inputs).join('; ');
  const opinions = proposals.filter((p) => p.wanted !== undefined).map((p) => p.wanted!);
  const boundsText = bounds.window ? `window ${bounds.window} [${bounds.minNodes}, ${bounds.maxNodes}]` : `pool bounds [${bounds.minNodes}, ${bounds.maxNodes}]`;

  const state: AutoscalerState = { ...s, bounds: { minNodes: bounds.minNodes, maxNodes: bounds.maxNodes }, inputs, ...(load ? { load } : {}) };
  if (bounds.window) state.window = bounds.window;
  else delete state.window;
  const decided = (desired: number, why: string): Decision => {
    const change = desired > s.desired ? 'up' : desired < s.desired ? 'down' : 'none';
    const text = `${cfg.type}: ${change} ${s.desired} → ${desired}: ${why}`;
    delete state.upSince;
    delete state.downSince;
    events.push(`autoscaler ${text}`);
    return { state: { ...state, desired, lastScaleAt: now, lastDecision: text }, change, events };
  };

  const held = clamp(s.desired, bounds);
  if (held !== s.desired) return decided(held, `outside ${boundsText}; ${inputs}`);
  if (!opinions.length) {
    delete state.upSince;
    delete state.downSince;
    return { state, change: 'none', events };
  }
  const wanted = clamp(Math.max(...opinions), bounds);
  if (wanted > s.desired) {
    delete state.downSince;
    state.upSince ??= now;
    if (now - state.upSince >= cfg.upAfterSeconds * 1000) {
      return decided(Math.min(wanted, s.desired + cfg.maxStep), `wanted ${wanted} for ${Math.round((now - state.upSince) / 1000)} s (up after ${cfg.upAfterSeconds} s, step ≤ ${cfg.maxStep}); ${inputs}; ${boundsText}`);
    }
  } else if (wanted < s.desired) {
    delete state.upSince;
    state.downSince ??= now;
    if (now - state.downSince >= cfg.downAfterSeconds * 1000) {
      return decided(Math.max(wanted, s.desired - cfg.maxStep), `wanted ${wanted} for ${Math.round((now - state.downSince) / 1000)} s (down after ${cfg.downAfterSeconds} s, step ≤ ${cfg.maxStep}); ${inputs}; ${boundsText}`);
    }
  } else {
    delete state.upSince;
    delete state.downSince;
  }
  return { state, change: 'none', events };
}

/** The bounds the desired size must stay in right now (an open window's, else the pool's); resize and applySpec clamp to them. */
export function currentBounds(cfg: { minNodes: number; maxNodes: number; autoscaling: Pick<AutoscalingConfig, 'policies'> }, now: number): SizeBounds {
  return boundsAt(cfg.autoscaling.policies, cfg, now);
}

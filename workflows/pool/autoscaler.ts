import type { PoolLoad } from './autoscale/policies.ts';

/**
 * Decides the pool's desired size (pure). `none` only holds min/max; `reactive` adds one node
 * when mean GPU utilisation of the active nodes is at or above scaleUpAt and removes one at or
 * below scaleDownAt, at most once per cooldown. The queue, latency, scheduled and composite
 * policies decide in autoscale/decide.ts.
 */
export interface AutoscalerConfig {
  type: 'none' | 'reactive';
  scaleUpAt: number;
  scaleDownAt: number;
  cooldownSeconds: number;
  minNodes: number;
  maxNodes: number;
}

export interface AutoscalerState {
  desired: number;
  lastScaleAt?: number;
  lastDecision?: string;
  /** Mean GPU utilisation (%) of active nodes at the last probe, if any node reported. */
  utilization?: number;
  /** Policies of autoscale/: since when the pool has wanted more (fewer) nodes without acting yet. */
  upSince?: number;
  downSince?: number;
  /** The bounds in force at the last decision (an open window's, else the pool's) and the window's label. */
  bounds?: { minNodes: number; maxNodes: number };
  window?: string;
  /** The last probe's measurements and every policy's reading of them, in words. */
  load?: PoolLoad;
  inputs?: string;
}

export interface Decision {
  state: AutoscalerState;
  change: 'up' | 'down' | 'none';
}

export function clampDesired(s: AutoscalerState, cfg: Pick<AutoscalerConfig, 'minNodes' | 'maxNodes'>): AutoscalerState {
  const desired = Math.min(cfg.maxNodes, Math.max(cfg.minNodes, s.desired));
  return desired === s.desired ? s : { ...s, desired, lastDecision: `held within min ${cfg.minNodes} / max ${cfg.maxNodes}: ${desired}` };
}

/** One decision after a probe; `utilization` is undefined when no active node answered. */
export function decide(s: AutoscalerState, cfg: AutoscalerConfig, utilization: number | undefined, now: number): Decision {
  let state = clampDesired({ ...s, utilization }, cfg);
  if (cfg.type === 'none' || utilization === undefined) return { state, change: 'none' };
  const cooling = state.lastScaleAt !== undefined && now - state.lastScaleAt < cfg.cooldownSeconds * 1000;
  if (utilization >= cfg.scaleUpAt && state.desired < cfg.maxNodes) {
    if (cooling) return { state, change: 'none' };
    state = { ...state, desired: state.desired + 1, lastScaleAt: now, lastDecision: `utilisation ${utilization.toFixed(0)} % >= ${cfg.scaleUpAt} %: up to ${state.desired + 1}` };
    return { state, change: 'up' };
  }
  if (utilization <= cfg.scaleDownAt && state.desired > cfg.minNodes) {
    if (cooling) return { state, change: 'none' };
    state = { ...state, desired: state.desired - 1, lastScaleAt: now, lastDecision: `utilisation ${utilization.toFixed(0)} % <= ${cfg.scaleDownAt} %: down to ${state.desired - 1}` };
    return { state, change: 'down' };
  }
  return { state, change: 'none' };
}

/**
 * Scale-down victims in order: cordoned nodes first, then idle ones, then the least loaded (work
 * in flight at the last probe, where known), then the newest.
 */
export function pickScaleDown<T extends { id: string; cordoned: boolean; idle: boolean; joinedAt: number; load?: number }>(candidates: T[]): T | undefined {
  const rank = (n: T) => (n.cordoned ? 0 : n.idle ? 1 : 2);
  const load = (n: T) => n.load ?? Number.MAX_SAFE_INTEGER;
  return [...candidates].sort((a, b) => rank(a) - rank(b) || load(a) - load(b) || b.joinedAt - a.joinedAt || (a.id < b.id ? -1 : 1))[0];
}

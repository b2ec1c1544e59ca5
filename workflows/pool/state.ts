import type { ProbeView } from '../common/digest.ts';
import type { FleetPoolSpec } from '../inputs/fleetPool.ts';
import type { PoolEvent, PoolNode, PoolStatus } from './api.ts';
import type { AutoscalerState } from './autoscaler.ts';
import { closedBreaker, type BreakerState } from './breaker.ts';
import { emptyBudget, type BudgetState } from './budget.ts';
import type { IncidentState } from './incidents.ts';

/** Everything the pool workflow knows; plain JSON, carried whole across continue-as-new. */
export interface PoolState {
  /** The spec as last applied (resize edits it too); the next run starts from it. */
  spec: FleetPoolSpec;
  nodes: Record<string, PoolNode>;
  /** The last probe's view of every live instance (members or not), mirrored with the probe activity. */
  view: ProbeView;
  budget: BudgetState;
  breaker: BreakerState;
  autoscaler: AutoscalerState;
  paused?: { reason: string; at: number };
  /** Counter for scale-up idempotency keys (`pool/<name>/scale-up/<n>`); never reused. */
  provisionCounter: number;
  /** Unknown instances already reported (membership.unknownInstances: report). */
  reportedUnknown: string[];
  /** Scale-down candidates with no work in flight, from the last probe. */
  idle: string[];
  /** The least-loaded accepting nodes' work in flight at the last probe (queue, latency, composite autoscaling). */
  loads?: Record<string, number>;
  events: PoolEvent[];
  runs: number;
  replacements: PoolStatus['replacements'];
  maxDisrupted: number;
  lastProbe?: { at: number; probed: number; tookMs: number; full: boolean };
  /** The first membership reconcile adopted the pool's instances. */
  initialized: boolean;
  /** Instance id → the workflow holding it outside the pool (claimNodes); absent in states from older runs. */
  claims?: Record<string, string>;
  /** Incidents and their stages (health events; absent in states from older runs). */
  incidents?: IncidentState;
  /** Serving pools: a rollout walking the pool (drift is reported, not converged); absent in older states. */
  servingHold?: { holder: string; since: number };
  /** Members whose drift was already reported (one event per drift). */
  reportedDrift?: string[];
  /** The history clock (clock.ts): ms since the epoch; absent in states from older runs. */
  clock?: number;
}

export const MAX_EVENTS = 50;

export function freshState(spec: FleetPoolSpec): PoolState {
  return {
    spec,
    nodes: {},
    view: {},
    budget: emptyBudget(),
    breaker: closedBreaker(),
    autoscaler: { desired: spec.minNodes },
    provisionCounter: 0,
    reportedUnknown: [],
    idle: [],
    events: [],
    runs: 0,
    replacements: { started: 0, succeeded: 0, failed: 0 },
    maxDisrupted: 0,
    initialized: false,
  };
}

export function pushEvent(s: PoolState, at: number, message: string, nodeId?: string): void {
  s.events.push({ at: new Date(at).toISOString(), message, ...(nodeId ? { nodeId } : {}) });
  if (s.events.length > MAX_EVENTS) s.events.splice(0, s.events.length - MAX_EVENTS);
}

export type { BudgetState, BreakerState, AutoscalerState };

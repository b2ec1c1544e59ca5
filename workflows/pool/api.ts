import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { ProbeHealth } from '../common/digest.ts';
import type { FleetPoolSpec } from '../inputs/fleetPool.ts';
import type { ModelRef } from '../inputs/rollingUpdate.ts';
import type { AutoscalerState } from './autoscaler.ts';
import type { BreakerState } from './breaker.ts';
import type { Lease, LeaseRequest } from './budget.ts';

/** The pool workflow's updates and query (public API, used by the CLI and other workflows). */

export type PoolPhase = 'starting' | 'running' | 'paused' | 'breaker-open';

/**
 * A member's life in the pool: active → (cordoned) → replacing | leaving. `replacing` is a
 * replaceNode child at work; `leaving` is a scale-down (cordon, drain, terminate).
 */
export type NodePhase = 'active' | 'cordoned' | 'replacing' | 'leaving';

export interface PoolNode {
  id: string;
  phase: NodePhase;
  health: ProbeHealth | 'unknown';
  /** Consecutive probes that found the node unhealthy. */
  badProbes: number;
  unreachableSince?: number;
  reasons?: string[];
  joinedAt: number;
  /** After a failed replacement the node waits until then before the next automatic try. */
  retryAfter?: number;
  failures?: number;
  /** Serving pools: what the node's agent serves, from the last probe that reached it (null: none; absent: not known yet). */
  model?: ModelRef | null;
}

export interface PoolEvent {
  at: string;
  nodeId?: string;
  message: string;
}

export interface PoolStatus {
  name: string;
  phase: PoolPhase;
  /** Why the pool is paused or its breaker is open. */
  phaseReason?: string;
  minNodes: number;
  maxNodes: number;
  desired: number;
  counts: { members: number; healthy: number; degraded: number; unhealthy: number; unreachable: number; disrupted: number; provisioning: number };
  nodes: (Omit<PoolNode, 'unreachableSince' | 'retryAfter'> & { unreachableForSeconds?: number })[];
  maxUnavailable: number;
  minHealthy: number;
  leases: Lease[];
  queue: LeaseRequest[];
  breaker: BreakerState;
  autoscaler: AutoscalerState;
  lastProbe?: { at: string; probed: number; tookMs: number; full: boolean };
  /** The most leases ever held at once (never above maxUnavailable). */
  maxDisrupted: number;
  replacements: { started: number; succeeded: number; failed: number };
  /** Continue-as-new count: how many earlier runs this state came through. */
  runs: number;
  events: PoolEvent[];
  /** Instances other workflows hold outside the pool's size (blue-green's green set before the switch, blue after it). */
  claims: { nodeId: string; holder: string }[];
  /** The pool's desired serving state and who drifts from it; absent for pools that declare no `serving`. */
  serving?: PoolServingStatus;
}

export interface PoolServingStatus {
  desired: ModelRef;
  reconcile: 'converge' | 'report';
  /** A rollout walking the pool: drift is reported, not converged, until it lets go. */
  hold?: { holder: string; since: string };
  /** Members whose agent serves another model than desired (or none), and what they serve. */
  drifted: { nodeId: string; serves: ModelRef | null; converging: boolean }[];
}

/** For rollouts: make `model` the pool's desired model; `hold: true` while the rollout walks the pool, false to let go. */
export interface SetServingRequest {
  holder: string;
  model: ModelRef;
  hold: boolean;
}

export interface SetServingAnswer {
  /** false: the pool declares no `serving`; nothing changed. */
  serving: boolean;
  previous?: ModelRef;
}

export interface LeaseAnswer {
  holder: string;
  granted: boolean;
  /** 1-based place in the queue while waiting. */
  position: number;
}

export const poolStatusQuery = defineQuery<PoolStatus>('status');

/** Replaces the spec (same name); min/max and desired are re-clamped, budgets apply at once. */
export const applySpecUpdate = defineUpdate<{ desired: number }, [FleetPoolSpec]>('applySpec');
export const resizeUpdate = defineUpdate<{ desired: number; minNodes: number; maxNodes: number }, [{ minNodes?: number; maxNodes?: number; desiredNodes?: number }]>('resize');
export const pauseRemediationUpdate = defineUpdate<{ phase: PoolPhase }, [{ reason?: string }?]>('pauseRemediation');
export const resumeRemediationUpdate = defineUpdate<{ phase: PoolPhase }, []>('resumeRemediation');
/** Cordons through the budget: the answer says whether the lease was granted or queued. */
export const cordonNodeUpdate = defineUpdate<LeaseAnswer, [{ nodeId: string }]>('cordonNode');
export const uncordonNodeUpdate = defineUpdate<{ nodeId: string }, [{ nodeId: string }]>('uncordonNode');
/** Manual replacement: works with the breaker open or remediation paused, but always through the budget. */
export const replaceNodeUpdate = defineUpdate<LeaseAnswer, [{ nodeId: string; reason?: string; force?: boolean }]>('replaceNode');
/**
 * For other workflows (rollouts): ask for one slot of the disruption budget. Never blocks:
 * re-send with the same holder to poll (and to renew a granted lease); leases expire after ttlSeconds.
 */
export const acquireLeaseUpdate = defineUpdate<LeaseAnswer, [{ holder: string; nodeId?: string; ttlSeconds?: number }]>('acquireLease');
export const releaseLeaseUpdate = defineUpdate<{ released: boolean }, [{ holder: string }]>('releaseLease');
/**
 * Blue-green (rollouts): instances a workflow provisions beside the pool are claimed first, so the
 * pool neither adopts them nor counts them; the switch then swaps claimed nodes in and members out
 * in one step, so the pool's size never changes half-way; claims are released once the workflow
 * has terminated what it holds.
 */
export const claimNodesUpdate = defineUpdate<{ claimed: string[] }, [{ holder: string; nodeIds: string[] }]>('claimNodes');
export const swapMembersUpdate = defineUpdate<{ members: number }, [{ holder: string; admit: string[]; remove: string[] }]>('swapMembers');
export const releaseClaimsUpdate = defineUpdate<{ released: string[] }, [{ holder: string; nodeIds?: string[] }]>('releaseClaims');
/** Rollouts: set the pool's desired model at the start, restore it on rollback or abort (blue-green: at the switch). */
export const setServingModelUpdate = defineUpdate<SetServingAnswer, [SetServingRequest]>('setServingModel');

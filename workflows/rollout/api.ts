import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { ModelRef } from '../inputs/rollingUpdate.ts';

/** The rollingUpdate workflow's query and updates (public API, used by the CLI and the Web UI). */

/**
 * Where the rollout is:
 *   planning → progressing ⇄ paused → (analyzing after each batch) → succeeded
 *                      └─ failure / abort → rolling-back → rolled-back | aborted
 * Blue-green: planning → provisioning → analyzing → (paused) → switched → scaling-down → succeeded.
 */
export type RolloutPhase =
  | 'planning'
  | 'progressing'
  | 'analyzing'
  | 'paused'
  | 'provisioning'
  | 'switched'
  | 'scaling-down'
  | 'rolling-back'
  | 'succeeded'
  | 'rolled-back'
  | 'aborted'
  | 'failed';

/**
 * One node's walk (like the GPU Operator's upgrade state machine):
 *   pending → cordoning → draining → swapping → smoke-testing → readiness → uncordoning → done
 * Any step can end in `failed`. Rolling back walks the same steps towards the node's previous
 * model and ends in `rolled-back`. Blue-green adds `provisioning` (green), `standby` (ready but
 * not serving: green before the switch, blue after it) and `terminating` → `terminated`. A node
 * that leaves the pool before its turn ends in `left` (counted as done).
 */
export type NodeRolloutState =
  | 'pending'
  | 'provisioning'
  | 'cordoning'
  | 'draining'
  | 'swapping'
  | 'smoke-testing'
  | 'readiness'
  | 'uncordoning'
  | 'done'
  | 'standby'
  | 'terminating'
  | 'terminated'
  | 'failed'
  | 'rolled-back'
  /** Left the pool before its turn (replaced by remediation, scaled down); its replacement is picked up at the end. */
  | 'left'
  /**
   * The health policy called the node unhealthy during its walk: a hardware fault, not evidence
   * against the model. Its lease was released at once for the pool's remediation; its replacement
   * gets the pool's desired model (the target). Never counts toward rollback.
   */
  | 'handedToRemediation';

export interface RolloutNode {
  id: string;
  state: NodeRolloutState;
  /** Which way the node is walking: to the target, or back to its previous model. */
  direction: 'forward' | 'rollback';
  /** Blue-green only. */
  role?: 'blue' | 'green';
  /** The model the node served before the rollout (what a rollback restores); null when none. */
  previous?: ModelRef | null;
  batch?: number;
  /** A failed node that serves its previous model again (restored at once, or never touched). */
  onPrevious?: boolean;
  /** While a step runs: what it waits for (the activity's heartbeat says the same, with details). */
  waitingFor?: string;
  error?: string;
  startedAt?: string;
  finishedAt?: string;
}

/** Client inference requests the analysed nodes served during an analysis, and how many got a 5xx. */
export interface AnalysisTraffic {
  requests: number;
  errors: number;
  meanLatencyMs: number;
}

export interface AnalysisResult {
  batch: number;
  ok: boolean;
  checks: number;
  failures: number;
  /** Slowest smoke generation seen (ms). */
  maxLatencyMs: number;
  meanLatencyMs: number;
  traffic?: AnalysisTraffic;
  reason?: string;
  at: string;
}

export interface RolloutEvent {
  at: string;
  nodeId?: string;
  message: string;
}

export interface RolloutStatus {
  id: string;
  pool: string;
  strategy: 'rolling' | 'blueGreen';
  phase: RolloutPhase;
  /** Why the rollout paused, is rolling back or ended as it did. */
  reason?: string;
  target: ModelRef;
  /** Index into the resolved plan (batches and pauses). */
  step: number;
  steps: number;
  /** Node ids per batch, in order (blue-green: one batch, the green set). */
  batches: string[][];
  maxUnavailable: number;
  /** Most of this rollout's nodes out of service at once. */
  maxDisrupted: number;
  /** Whether the pool workflow's disruption budget is being used (false: no pool workflow runs). */
  poolBudget: boolean;
  /** Serving pools: the pool's desired model before the rollout (restored on rollback or abort); absent when the pool declares none. */
  poolServing?: { previous: ModelRef };
  counts: { total: number; pending: number; inProgress: number; done: number; failed: number; rolledBack: number };
  nodes: RolloutNode[];
  analyses: AnalysisResult[];
  events: RolloutEvent[];
  startedAt: string;
  finishedAt?: string;
}

/** What a finished rollout returns (a rolled-back or aborted one fails with these as details). */
export interface RolloutResult {
  outcome: 'succeeded' | 'rolled-back' | 'aborted' | 'failed';
  status: RolloutStatus;
}

export const rolloutStatusQuery = defineQuery<RolloutStatus>('status');

/** Stops starting nodes; nodes already walking finish their step machine. */
export const pauseRolloutUpdate = defineUpdate<{ phase: RolloutPhase }, [{ reason?: string }]>('pause');
/** Continues a paused rollout (also one paused by a failed analysis with onFailure `pause`: the failure is accepted). */
export const resumeRolloutUpdate = defineUpdate<{ phase: RolloutPhase }, []>('resume');
/** Stops and rolls every updated node back (blue-green: removes green, or re-admits blue after the switch). */
export const abortRolloutUpdate = defineUpdate<{ phase: RolloutPhase }, [{ reason?: string }]>('abort');
/** Skips the current pause (or blue-green's wait before the switch); `all` skips every later pause too. */
export const promoteRolloutUpdate = defineUpdate<{ phase: RolloutPhase; step: number }, [{ all?: boolean }]>('promote');
export const setMaxUnavailableUpdate = defineUpdate<{ maxUnavailable: number }, [{ maxUnavailable: number | string }]>('setMaxUnavailable');

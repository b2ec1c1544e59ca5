import { condition, log, proxyActivities } from '@temporalio/workflow';
import type { NodeActivities } from '../../activities/nodes.ts';
import type { PoolActivities } from '../../activities/pool/index.ts';
import type { RolloutActivities } from '../../activities/rollout/index.ts';
import type { RollingUpdateConfig } from '../inputs/rollingUpdate.ts';
import type { Amount } from '../inputs/validate.ts';
import type { NodeRolloutState, RolloutNode } from './api.ts';
import { pushRolloutEvent, type Hold, type RolloutState } from './state.ts';

const retry = { maximumInterval: '10 seconds', maximumAttempts: 5 } as const;

/** Activity stubs with timeouts sized to the rollout's settings. */
export function rolloutActivities(cfg: RollingUpdateConfig) {
  return {
    nodes: proxyActivities<NodeActivities>({ startToCloseTimeout: '2 minutes', heartbeatTimeout: '30 seconds', retry }),
    drain: proxyActivities<NodeActivities>({ startToCloseTimeout: `${cfg.drainTimeoutSeconds + 120} seconds`, heartbeatTimeout: '30 seconds', retry }),
    provision: proxyActivities<NodeActivities>({ startToCloseTimeout: '20 minutes', heartbeatTimeout: '1 minute', retry }),
    // Lease waits can be long (the pool's budget is shared); they heartbeat while queued.
    lease: proxyActivities<PoolActivities>({ startToCloseTimeout: '24 hours', heartbeatTimeout: '1 minute', retry: { maximumInterval: '30 seconds' } }),
    // The pool's serving state and a node's health verdict (short calls).
    serving: proxyActivities<PoolActivities>({ startToCloseTimeout: '1 minute', retry }),
    rollout: proxyActivities<RolloutActivities>({ startToCloseTimeout: '10 minutes', heartbeatTimeout: '1 minute', retry }),
    // swapModel heartbeats every 5 s while the agent loads, so a dead worker's swap is retried within 15 s.
    swap: proxyActivities<RolloutActivities>({ startToCloseTimeout: '35 minutes', heartbeatTimeout: '15 seconds', retry }),
    analysis: proxyActivities<RolloutActivities>({
      startToCloseTimeout: `${cfg.analysis.intervalSeconds + 600} seconds`,
      heartbeatTimeout: `${Math.max(60, cfg.analysis.everySeconds * 2 + 60)} seconds`,
      retry,
    }),
  };
}

/** Operator controls, set by the update handlers and read by the strategies. */
export interface Controls {
  abort?: string;
  /** promote --all: every later pause is skipped too. */
  promoteAll: boolean;
  /** Blue-green: promote during scaleDownDelaySeconds scales blue down at once. */
  skipDelay: boolean;
}

/** What the strategies share: config, state, activities, controls and small helpers. */
export class Rollout {
  readonly acts: ReturnType<typeof rolloutActivities>;
  readonly controls: Controls = { promoteAll: false, skipDelay: false };
  /** maxUnavailable as given (setMaxUnavailable replaces it); st.maxUnavailable is it resolved against the node count. */
  maxUnavailable: Amount;
  constructor(
    readonly cfg: RollingUpdateConfig,
    readonly st: RolloutState,
    readonly workflowId: string,
    /** Called after every state change (status, search attributes, Web UI details). */
    readonly publish: () => void,
  ) {
    this.acts = rolloutActivities(cfg);
    this.maxUnavailable = cfg.maxUnavailable;
  }

  event(message: string, nodeId?: string): void {
    pushRolloutEvent(this.st, message, nodeId);
    log.info(`rollout ${this.workflowId}: ${nodeId ? `${nodeId}: ` : ''}${message}`);
    this.publish();
  }

  set(node: RolloutNode, state: NodeRolloutState): void {
    node.state = state;
    const waiting = WAITING_FOR[state];
    if (waiting) node.waitingFor = waiting;
    else delete node.waitingFor;
    if (state === 'done' || state === 'failed' || state === 'rolled-back' || state === 'terminated' || state === 'left' || state === 'handedToRemediation') node.finishedAt = new Date().toISOString();
    this.publish();
  }

  get aborting(): boolean {
    return this.st.phase === 'aborted' || this.controls.abort !== undefined;
  }

  /** Holds (phase `paused`) until released by resume/promote, `seconds` pass, or an abort. Returns false when aborted. */
  async hold(hold: Hold, seconds?: number): Promise<boolean> {
    // An operator's pause is released by resume first; a pause step or failure hold comes after it.
    if (!(await this.whileOperatorPaused())) return false;
    this.st.hold = hold;
    this.event(`paused: ${hold.reason}`);
    const released = () => this.st.hold === undefined || this.aborting;
    if (seconds === undefined) await condition(released);
    else await condition(released, seconds * 1000);
    const timedOut = this.st.hold !== undefined && !this.aborting;
    this.st.hold = undefined;
    if (this.aborting) return false;
    this.event(timedOut ? 'pause ended' : 'resumed');
    return true;
  }

  /** Waits while an operator's pause holds new work back; false when aborted. */
  async whileOperatorPaused(): Promise<boolean> {
    await condition(() => this.st.hold?.kind !== 'operator' || this.aborting);
    return !this.aborting;
  }

  /** Runs `fn` over `items` with at most `limit()` at once (re-read as each slot frees: setMaxUnavailable applies at once). */
  async each<T>(items: T[], limit: () => number, fn: (item: T) => Promise<void>, canStart: () => Promise<boolean> = async () => true): Promise<void> {
    const running = new Set<Promise<void>>();
    for (const item of items) {
      await condition(() => running.size < Math.max(1, limit()));
      if (!(await canStart())) break;
      const p: Promise<void> = fn(item).finally(() => running.delete(p));
      running.add(p);
    }
    await Promise.all(running);
  }
}

/** What each step of a node's walk waits for (shown in the status beside the activity's heartbeat). */
const WAITING_FOR: Partial<Record<NodeRolloutState, string>> = {
  provisioning: 'the provider to start the node and its agent to answer',
  cordoning: 'the agent to stop taking new work',
  draining: 'in-flight requests to finish (up to drainTimeoutSeconds)',
  swapping: 'the agent to verify the sha256, load and test-load the model',
  'smoke-testing': 'one smoke generation on the model',
  readiness: 'the agent to be healthy and serve the model (stops at once on a hardware fault)',
  uncordoning: 'the agent to take traffic again',
  terminating: 'drain and terminate',
};

/** A step of a node's walk failed in a way the walk reports (not an activity crash). */
export class StepFailed extends Error {}

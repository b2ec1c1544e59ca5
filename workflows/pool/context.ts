import { resolveAmount, type FleetPoolConfig } from '../inputs/fleetPool.ts';
import type { PoolNode, PoolPhase } from './api.ts';
import type { Lease } from './budget.ts';
import type { Incident } from './incidents.ts';
import type { PoolState } from './state.ts';

/** What one run of the pool workflow tracks beside its carried state; never carried across continue-as-new. */
export interface PoolRun {
  /** Running side tasks (replacements, scale-ups, scale-downs, cordons) by key; continue-as-new waits for them. */
  tasks: Map<string, Promise<void>>;
  /** Scale-ups in flight (counted toward the size until they join or fail). */
  provisioning: number;
  /** Something changed: the main loop runs again before the next probe is due. */
  dirty: boolean;
  /** Continue-as-new is pending: no new leases, no resizing. */
  stopping: boolean;
  /** patched('health-events'): the watch, quarantine, the ladder and the outage rules are on. */
  health?: boolean;
  /** patched('quarantine-counts'): quarantined members count toward the disruption budget. */
  quarantineCounts?: boolean;
  /** patched('uncordon-strays'): a member cordoned with nothing of the pool holding it is uncordoned (strays.ts). */
  uncordonStrays?: boolean;
  /** Stray cordons seen by consecutive probes, by node. */
  strays?: Map<string, number>;
  /** patched('history-clock'): decisions read state.clock (clock.ts). */
  historyClock?: boolean;
  /** patched('serving-probed-model'): see serving.ts applyServingProbe. */
  servingProbed?: boolean;
  /** Deadlines (history clock) a timer is pending for (clock.ts wakeAt). */
  timers?: Set<number>;
}

/**
 * The side effects the pool's state transitions start (activities and replaceNode children, run
 * as side tasks). The workflow passes `poolWork()` (work.ts); unit tests pass a recorder.
 */
export interface PoolWork {
  replace(ctx: PoolContext, node: PoolNode, lease: Lease, reason: string): void;
  scaleDown(ctx: PoolContext, node: PoolNode, lease: Lease): void;
  cordon(ctx: PoolContext, node: PoolNode, lease: Lease): void;
  uncordon(ctx: PoolContext, nodeId: string): void;
  provision(ctx: PoolContext, key: string): void;
  /** Health events (incidents.ts): cordon at once without a lease; reboot through a lease; report a closed incident. */
  quarantine?(ctx: PoolContext, nodeId: string): void;
  reboot?(ctx: PoolContext, node: PoolNode, lease: Lease): void;
  recordIncident?(ctx: PoolContext, incident: Incident): void;
  /** Serving pools: brings a drifted member back to the pool's model under its lease. */
  converge(ctx: PoolContext, node: PoolNode, lease: Lease): void;
}

/** What the pool's handlers, validators and steps see: state, config, clock, event sink and work. */
export interface PoolContext {
  readonly pool: string;
  readonly state: PoolState;
  /** Replaced by applySpec and resize. */
  cfg: FleetPoolConfig;
  readonly run: PoolRun;
  readonly work: PoolWork;
  now(): number;
  event(message: string, nodeId?: string): void;
}

export function freshRun(): PoolRun {
  return { tasks: new Map(), provisioning: 0, dirty: true, stopping: false };
}

export function members(ctx: PoolContext): PoolNode[] {
  return Object.values(ctx.state.nodes);
}

/** Instance id → holder; created on first use (states from older runs have none). */
export function claims(ctx: PoolContext): Record<string, string> {
  return (ctx.state.claims ??= {});
}

export function maxUnavailable(ctx: PoolContext): number {
  return resolveAmount(ctx.cfg.disruption.maxUnavailable, Math.max(members(ctx).length, ctx.state.autoscaler.desired), 'down-min-1');
}

export function minHealthy(ctx: PoolContext): number {
  return resolveAmount(ctx.cfg.disruption.minHealthy, members(ctx).length, 'up');
}

export function healthyCount(ctx: PoolContext): number {
  return members(ctx).filter((n) => n.health === 'healthy' && n.phase === 'active').length;
}

export function poolPhase(ctx: PoolContext): PoolPhase {
  const s = ctx.state;
  return s.paused ? 'paused' : s.breaker.open ? 'breaker-open' : s.lastProbe ? 'running' : 'starting';
}

export function autoRemediation(ctx: PoolContext): boolean {
  return ctx.cfg.health.autoReplace && !ctx.state.paused && !ctx.state.breaker.open;
}

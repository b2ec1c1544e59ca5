import type { ProbeHealth } from './digest.ts';

/**
 * What the pool's health watch (activities/pool/watch.ts) hands the pool workflow, by signal:
 * only changes, batched. Pure and dependency-free: both sides use it.
 */
export const HEALTH_CHANGES_SIGNAL = 'healthChanges';

export interface HealthChange {
  id: string;
  health: ProbeHealth;
  /** The agent's reasons (first few, shortened) when not healthy. */
  reasons?: string[];
  /** The agent's cordon / drain state when it answered. */
  drain?: string;
  /** When the watch saw it (ms since the epoch, the worker's clock). */
  at: number;
}

export interface HealthChanges {
  changes: HealthChange[];
}

/**
 * Starts the reason for a node the provider holds dead (NodeInstance.dead): its health stays
 * 'unreachable', and this reason tells it from an agent that does not answer.
 */
export const DEAD_AT_PROVIDER = 'dead at the provider: ';

export function isDead(reasons: string[] | undefined): boolean {
  return !!reasons?.some((r) => r.startsWith(DEAD_AT_PROVIDER));
}

/** The health watch's settings (activities/pool/watch.ts), passed by the pool workflow. */
export const WATCH_DEFAULTS = { waitSeconds: 25, concurrency: 2000, batchMs: 250, relistSeconds: 10, maxSeconds: 3600 } as const;

/**
 * Circuit breaker on automatic remediation (pure). A systemic fault (bad driver push, rack power)
 * is not fixed by terminating the fleet, so:
 *
 *   closed ──(distinct nodes gone bad within the window / pool size > maxUnhealthyFraction, at least 2,
 *             or healthy nodes < minHealthy)──> open ──(operator: resumeRemediation)──> closed
 *
 * Only an operator closes it; nothing closes it by itself.
 */
export interface BreakerState {
  open: boolean;
  reason?: string;
  openedAt?: number;
  /** Nodes that turned unhealthy or unreachable, with when; pruned to the window. */
  recent: { nodeId: string; at: number }[];
  /**
   * Set by resumeRemediation (health events) while the pool is below its floor: the operator
   * accepted that condition, so the floor does not open the breaker again until more nodes go bad
   * than at the resume. Cleared once the pool is back above its floor.
   */
  latched?: { at: number; reason: string; bad: number; healthy: number };
}

export interface BreakerConfig {
  maxUnhealthyFraction: number;
  windowSeconds: number;
}

/** The fraction rule needs at least this many bad nodes in the window. */
export const MIN_BAD_NODES = 2;

export function closedBreaker(): BreakerState {
  return { open: false, recent: [] };
}

/** Records that a node went bad at `now` (once per node per window). */
export function recordBad(s: BreakerState, nodeId: string, now: number): BreakerState {
  if (s.recent.some((r) => r.nodeId === nodeId)) return s;
  return { ...s, recent: [...s.recent, { nodeId, at: now }] };
}

/**
 * Prunes the window and opens the breaker when the fraction of bad nodes passes the limit or
 * the healthy count is below the floor. An open breaker stays open.
 */
export function evaluate(
  s: BreakerState,
  cfg: BreakerConfig,
  pool: { size: number; healthy: number; minHealthy: number; bad?: number },
  now: number,
): BreakerState {
  const recent = s.recent.filter((r) => r.at > now - cfg.windowSeconds * 1000);
  const next: BreakerState = { ...s, recent };
  if (next.latched && pool.bad !== undefined) {
    // The accepted condition is over once no node is bad; until then it ratchets down as nodes recover or are replaced.
    if (pool.bad === 0) delete next.latched;
    else if (pool.bad < next.latched.bad) next.latched = { ...next.latched, bad: pool.bad };
  }
  if (s.open) return next;
  const fraction = pool.size > 0 ? recent.length / pool.size : 0;
  // One failure is never systemic: in a small pool it would otherwise stop all remediation.
  if (recent.length >= MIN_BAD_NODES && fraction > cfg.maxUnhealthyFraction) {
    return {
      ...next,
      open: true,
      openedAt: now,
      reason: `${recent.length} of ${pool.size} nodes (${Math.round(fraction * 100)} %) went bad within ${cfg.windowSeconds} s, above the ${Math.round(cfg.maxUnhealthyFraction * 100)} % limit`,
    };
  }
  const accepted = next.latched && (pool.bad ?? Infinity) <= next.latched.bad;
  if (pool.healthy < pool.minHealthy && !accepted) {
    return { ...next, open: true, openedAt: now, reason: `only ${pool.healthy} healthy nodes, below minHealthy ${pool.minHealthy}` };
  }
  return next;
}

/** Operator reset: closes the breaker and forgets the window, so the same failures do not re-open it at once. */
export function reset(): BreakerState {
  return closedBreaker();
}

/**
 * The pool's disruption budget: one lease per node that is cordoned, draining or terminating,
 * whoever asks (remediation, scale-down, operator cordon, other workflows). A pure state machine
 * (plain JSON, carried across continue-as-new):
 *
 *   request ──> queued ──(head of queue and leases < limit)──> leased ──release──> gone
 *
 * Requests are granted strictly in FIFO order: the head blocks the ones behind it, so a big
 * request cannot be starved by later small ones. Holder ids make every call idempotent.
 */
/** `converge`: a member that drifted from the pool's model is brought back to it (serving pools); `reboot`: the ladder's reboot rung. */
export type LeaseKind = 'replace' | 'scale-down' | 'cordon' | 'external' | 'converge' | 'reboot';

export interface LeaseRequest {
  holder: string;
  kind: LeaseKind;
  nodeId?: string;
  requestedAt: number;
  /** External leases expire unless released or renewed, so a dead holder cannot leak one. */
  ttlSeconds?: number;
  /** Who asked: automatic requests are dropped when the breaker opens or remediation is paused. */
  origin?: 'auto' | 'operator' | 'workflow';
  reason?: string;
  force?: boolean;
}

export interface Lease extends LeaseRequest {
  grantedAt: number;
  expiresAt?: number;
}

export interface BudgetState {
  leases: Lease[];
  queue: LeaseRequest[];
}

export function emptyBudget(): BudgetState {
  return { leases: [], queue: [] };
}

export function leaseOf(b: BudgetState, holder: string): Lease | undefined {
  return b.leases.find((l) => l.holder === holder);
}

export function leaseForNode(b: BudgetState, nodeId: string): Lease | undefined {
  return b.leases.find((l) => l.nodeId === nodeId);
}

/** 1-based queue position, or 0 when not queued. */
export function queuePosition(b: BudgetState, holder: string): number {
  return b.queue.findIndex((r) => r.holder === holder) + 1;
}

/** Adds a request at the back of the queue unless the holder already leases or waits. */
export function request(b: BudgetState, req: LeaseRequest): BudgetState {
  if (leaseOf(b, req.holder) || queuePosition(b, req.holder)) return b;
  return { ...b, queue: [...b.queue, req] };
}

/**
 * Grants from the head of the queue while fewer than `limit` leases are held. `outOfService`
 * names nodes already out of service without a lease (quarantined: cordoned the moment they
 * went sick): they count toward the limit like a lease, so a sick node and the disruptions
 * around it never together exceed it. A request for one of them adds nothing, so it is granted
 * even past a head that must wait: a sick node's own remediation is never stuck behind a
 * disruption its sickness holds back (that would wait forever).
 */
export function grant(b: BudgetState, limit: number, now: number, outOfService: ReadonlySet<string> = new Set()): { budget: BudgetState; granted: Lease[] } {
  const granted: Lease[] = [];
  const waiting: LeaseRequest[] = [];
  const leases = [...b.leases];
  const unleased = (): number => [...outOfService].filter((id) => !leases.some((l) => l.nodeId === id)).length;
  for (const r of b.queue) {
    const addsNothing = r.nodeId !== undefined && outOfService.has(r.nodeId);
    // FIFO among requests that take a node out: once one waits, the ones behind it wait too.
    const fits = leases.length < limit && (addsNothing || (waiting.every((w) => w.nodeId !== undefined && outOfService.has(w.nodeId)) && leases.length + unleased() < limit));
    if (!fits) {
      waiting.push(r);
      continue;
    }
    const lease: Lease = { ...r, grantedAt: now, ...(r.ttlSeconds ? { expiresAt: now + r.ttlSeconds * 1000 } : {}) };
    leases.push(lease);
    granted.push(lease);
  }
  return { budget: { leases, queue: waiting }, granted };
}

/** Drops the holder's lease or queued request; releasing something unknown is a no-op. */
export function release(b: BudgetState, holder: string): BudgetState {
  return { leases: b.leases.filter((l) => l.holder !== holder), queue: b.queue.filter((r) => r.holder !== holder) };
}

/** Hands a held lease to a new holder (an operator's cordon becomes a scale-down) without touching the budget. */
export function transfer(b: BudgetState, from: string, to: { holder: string; kind: LeaseKind }): BudgetState {
  return { ...b, leases: b.leases.map((l) => (l.holder === from ? { ...l, holder: to.holder, kind: to.kind } : l)) };
}

/** Extends an external lease's expiry (a holder re-acquiring renews it). */
export function renew(b: BudgetState, holder: string, now: number): BudgetState {
  return { ...b, leases: b.leases.map((l) => (l.holder === holder && l.ttlSeconds ? { ...l, expiresAt: now + l.ttlSeconds * 1000 } : l)) };
}

/** Removes expired leases; returns what expired so the caller can say so. */
export function expire(b: BudgetState, now: number): { budget: BudgetState; expired: Lease[] } {
  const expired = b.leases.filter((l) => l.expiresAt !== undefined && l.expiresAt <= now);
  if (expired.length === 0) return { budget: b, expired };
  return { budget: { ...b, leases: b.leases.filter((l) => !expired.includes(l)) }, expired };
}

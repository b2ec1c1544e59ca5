import { createHash } from 'node:crypto';

/** Names and tokens derived from an idempotency key: the same key always gives the same values. */

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** A node's id: readable (pool first) and fixed by the key, so a retried provision names the same node. */
export function nodeIdFor(pool: string, idempotencyKey: string): string {
  return `${pool}-${sha256(idempotencyKey).slice(0, 8)}`;
}

/** Short hash of a key, used as a tag / label value (GCE labels allow 63 lowercase characters). */
export function keyHash(idempotencyKey: string): string {
  return sha256(idempotencyKey).slice(0, 32);
}

/** EC2 ClientToken (at most 64 ASCII characters). `scope` keeps tokens of different zones / entries apart. */
export function ec2ClientToken(idempotencyKey: string, scope: string): string {
  return sha256(`${scope}\n${idempotencyKey}`).slice(0, 64);
}

/** GCE requestId: a UUID (version 5 layout) derived from the key, as GCE requires a valid non-zero UUID. */
export function gceRequestId(idempotencyKey: string, scope: string): string {
  const h = sha256(`${scope}\n${idempotencyKey}`).slice(0, 32).split('');
  h[12] = '5';
  h[16] = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  const s = h.join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20, 32)}`;
}

/** A non-negative integer from a key, for deterministic choices (e.g. where round-robin starts). */
export function keyNumber(idempotencyKey: string): number {
  return parseInt(sha256(idempotencyKey).slice(0, 8), 16);
}

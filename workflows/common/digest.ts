/**
 * What a probe saw, per node, and a digest of it. The probe activity and the pool workflow both
 * hold this view; the workflow sends only the digest, and when it matches the activity's copy
 * the activity answers with changes alone, so history does not grow with the pool's size.
 * Deterministic and dependency-free: it runs inside the workflow sandbox too.
 */
export type ProbeHealth = 'healthy' | 'degraded' | 'unhealthy' | 'unreachable';

export type ProbeView = Record<string, ProbeHealth>;

export interface ProbeChange {
  id: string;
  /** Absent: the instance is gone from the provider's list. */
  health?: ProbeHealth;
  /** The agent's reasons (first few, shortened) when not healthy. */
  reasons?: string[];
}

/** FNV-1a (32 bit) over the sorted `id=health` entries. */
export function viewDigest(view: ProbeView): string {
  let h = 0x811c9dc5;
  for (const id of Object.keys(view).sort()) {
    const s = `${id}=${view[id]};`;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  return `${Object.keys(view).length}:${h.toString(16)}`;
}

export function applyChanges(view: ProbeView, changes: ProbeChange[]): ProbeView {
  const next = { ...view };
  for (const c of changes) {
    if (c.health) next[c.id] = c.health;
    else delete next[c.id];
  }
  return next;
}

/** The changes that turn `before` into `after`. */
export function diffViews(before: ProbeView, after: ProbeView): ProbeChange[] {
  const out: ProbeChange[] = [];
  for (const [id, health] of Object.entries(after)) if (before[id] !== health) out.push({ id, health });
  for (const id of Object.keys(before)) if (!(id in after)) out.push({ id });
  return out;
}

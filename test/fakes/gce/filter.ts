/**
 * The subset of the Compute list `filter` syntax drydock uses: comparisons joined by AND (or by
 * spaces), each optionally in parentheses: `labels.drydock-pool = "gpu" AND status != TERMINATED`.
 * Anything else is not understood, and the fake rejects it as GCE rejects a bad filter.
 */
export type Filter = { field: string[]; op: '=' | '!='; value: string }[];

const TERM = /^\(?\s*([a-zA-Z][\w.-]*)\s*(=|!=)\s*("(?:[^"\\]|\\.)*"|[^\s()"]+)\s*\)?$/;

export function parseFilter(raw: string): Filter | undefined {
  const parts = raw
    .trim()
    .split(/\s+AND\s+|(?<=\))\s+(?=\()/)
    .map((p) => p.trim())
    .filter(Boolean);
  const out: Filter = [];
  for (const p of parts) {
    const m = p.match(TERM);
    if (!m) return undefined;
    const value = m[3].startsWith('"') ? (JSON.parse(m[3]) as string) : m[3];
    out.push({ field: m[1].split('.'), op: m[2] as '=' | '!=', value });
  }
  return out;
}

export function matchesFilter(resource: Record<string, unknown>, filter: Filter): boolean {
  return filter.every(({ field, op, value }) => {
    let v: unknown = resource;
    for (const f of field) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[f] : undefined;
    const eq = v !== undefined && String(v) === value;
    return op === '=' ? eq : !eq;
  });
}

import type { PoolLoad } from '../../workflows/pool/autoscale/policies.ts';
import { INFERENCE_ROUTES } from '../../gpu-agent/traffic.ts';
import type { AgentHealth } from '../agentClient.ts';

/**
 * Load measurements for the queue and latency autoscalers, gathered by the probe: every accepting
 * node's inference slots and queue (the values behind the agent's drydock_slots_busy,
 * drydock_slots_total and drydock_queue_depth gauges, which /health carries) and, when asked, the
 * p95 of inference requests since the previous probe, from each agent's
 * drydock_request_duration_seconds histogram on /metrics.
 */

export interface NodeLoad {
  accepting: boolean;
  inFlight: number;
  slots?: { busy: number; total: number; queued: number };
  /** Cumulative inference request counts per histogram bucket (upper bound in seconds → count), when scraped. */
  buckets?: Map<number, number>;
}

const HISTOGRAM = 'drydock_request_duration_seconds_bucket';
const MAX_LEAST_LOADED = 32;

export function nodeLoad(h: AgentHealth & { slots?: { busy?: unknown; total?: unknown; queued?: unknown } }): NodeLoad {
  const s = h.slots;
  const slots = s && typeof s.busy === 'number' && typeof s.total === 'number' && typeof s.queued === 'number' ? { busy: s.busy, total: s.total, queued: s.queued } : undefined;
  return { accepting: h.drain.state === 'active', inFlight: h.drain.inFlight, ...(slots ? { slots } : {}) };
}

/** Cumulative bucket counts of inference routes (every status) from an agent's Prometheus text. */
export function inferenceBuckets(text: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(HISTOGRAM)) continue;
    const m = /^\w+\{(.*)\}\s+([0-9.eE+-]+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (!INFERENCE_ROUTES.includes(labels.route)) continue;
    const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
    out.set(le, (out.get(le) ?? 0) + Number(m[2]));
  }
  return out;
}

/** Per-bucket increase since `before`; an agent whose counts went down restarted, so its counts start over. */
export function bucketDelta(now: Map<number, number>, before: Map<number, number> | undefined): Map<number, number> {
  const restarted = !before || [...now].some(([le, c]) => c < (before.get(le) ?? 0));
  if (restarted) return new Map(now);
  return new Map([...now].map(([le, c]) => [le, c - (before.get(le) ?? 0)]));
}

/** The q-quantile (ms) of cumulative bucket counts, interpolated inside its bucket as Prometheus does. */
export function quantileMs(buckets: Map<number, number>, q: number): number | undefined {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Infinity) ?? (bounds.length ? buckets.get(bounds.at(-1)!)! : 0);
  if (!total) return undefined;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const b of bounds) {
    const c = buckets.get(b)!;
    if (c >= rank) {
      if (b === Infinity) return prevBound * 1000; // beyond the last finite bucket: its bound is all we know
      return (prevBound + ((b - prevBound) * (rank - prevCount)) / Math.max(1, c - prevCount)) * 1000;
    }
    prevBound = b;
    prevCount = c;
  }
  return prevBound * 1000;
}

/**
 * Sums the nodes' loads into the pool's (accepting nodes only) and lists the least-loaded accepting
 * nodes (scale-down picks them after idle ones). `previous` holds each node's last bucket counts
 * and is updated; latency is absent when no node had counts from an earlier probe here.
 */
export function poolLoad(
  nodes: { id: string; load?: NodeLoad }[],
  previous: Map<string, Map<number, number>>,
  latency: boolean,
): { load: PoolLoad; leastLoaded: { id: string; inFlight: number }[] } {
  const load: PoolLoad = { nodes: 0, slotsBusy: 0, slotsTotal: 0, queued: 0 };
  const merged = new Map<number, number>();
  let measured = false;
  const accepting: { id: string; inFlight: number }[] = [];
  const seen = new Set<string>();
  for (const { id, load: l } of nodes) {
    if (!l) continue;
    seen.add(id);
    if (l.buckets) {
      const before = previous.get(id);
      previous.set(id, l.buckets);
      if (before && l.accepting) {
        measured = true;
        for (const [le, c] of bucketDelta(l.buckets, before)) merged.set(le, (merged.get(le) ?? 0) + c);
      }
    }
    if (!l.accepting) continue;
    accepting.push({ id, inFlight: l.inFlight });
    if (!l.slots || l.slots.total === 0) continue;
    load.nodes++;
    load.slotsBusy += l.slots.busy;
    load.slotsTotal += l.slots.total;
    load.queued += l.slots.queued;
  }
  for (const id of previous.keys()) if (!seen.has(id)) previous.delete(id);
  if (latency && measured) {
    load.requests = merged.get(Infinity) ?? 0;
    const p95 = quantileMs(merged, 0.95);
    if (p95 !== undefined) load.p95Ms = Math.round(p95);
  }
  accepting.sort((a, b) => a.inFlight - b.inFlight || (a.id < b.id ? -1 : 1));
  return { load, leastLoaded: accepting.slice(0, MAX_LEAST_LOADED) };
}

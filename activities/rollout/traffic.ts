import type { TrafficCounts } from '../../gpu-agent/traffic.ts';

export type { TrafficCounts };

/** Traffic over an interval: the counters' differences. */
export type Traffic = Omit<TrafficCounts, 'since'>;

/** Client traffic between two readings of one agent's `GET /traffic`; undefined when it restarted in between. */
export function trafficBetween(before: TrafficCounts, after: TrafficCounts): Traffic | undefined {
  if (before.since !== after.since) return undefined;
  const d = { requests: after.requests - before.requests, errors: after.errors - before.errors, seconds: after.seconds - before.seconds };
  return d.requests < 0 || d.errors < 0 ? undefined : d;
}

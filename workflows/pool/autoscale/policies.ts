import type { AutoscalingPolicy } from '../../inputs/autoscaling.ts';
import type { SizeBounds } from './schedule.ts';

/**
 * What each policy wants the pool's size to be, from one probe's measurements (pure). A policy
 * with nothing to go on (no serving node reported) has no opinion. Sizes are in serving nodes:
 * a node counts once it accepts work, so nodes still booting never make a policy ask twice.
 */

/** The pool's load at one probe, over nodes that accept work (serving, not cordoned or draining). */
export interface PoolLoad {
  /** Accepting nodes that reported their inference slots (with a model loaded). */
  nodes: number;
  slotsBusy: number;
  slotsTotal: number;
  /** Requests waiting for a slot, over those nodes. */
  queued: number;
  /** Inference requests answered since the previous probe and their p95 (ms, from the agents' histograms); absent when not measured. */
  requests?: number;
  p95Ms?: number;
  /** Mean GPU utilisation (%) of accepting nodes, and how many reported it. */
  utilization?: number;
  utilizationNodes?: number;
}

export interface Proposal {
  policy: AutoscalingPolicy['type'];
  /** The size it wants; undefined: no opinion this time. */
  wanted?: number;
  /** Its inputs in words, for the decision's event. */
  inputs: string;
}

const pct = (x: number) => `${Math.round(x * 100)} %`;

function queue(p: Extract<AutoscalingPolicy, { type: 'queue' }>, load: PoolLoad | undefined, desired: number): Proposal {
  if (!load || load.nodes === 0 || load.slotsTotal === 0) return { policy: 'queue', inputs: 'queue: no serving node reported its slots' };
  const n = load.nodes;
  const perNode = load.slotsTotal / n;
  const perNodeQueue = load.queued / n;
  const util = load.slotsBusy / load.slotsTotal;
  const demand = load.slotsBusy + load.queued;
  const queueHigh = perNodeQueue > p.targetQueuePerNode;
  const slotsHigh = util > p.targetSlotUtilization;
  const inputs =
    `queue ${load.queued} on ${n} node(s) (${perNodeQueue.toFixed(1)}/node ${queueHigh ? '>' : '<='} ${p.targetQueuePerNode}), ` +
    `slots ${load.slotsBusy}/${load.slotsTotal} busy (${pct(util)} ${slotsHigh ? '>' : '<='} ${pct(p.targetSlotUtilization)})`;
  if (queueHigh || slotsHigh) {
    // Enough nodes that the demand fits under both targets, and at least one more than serve now.
    return { policy: 'queue', wanted: Math.max(n + 1, Math.ceil(demand / (perNode * p.targetSlotUtilization + p.targetQueuePerNode))), inputs };
  }
  // Fewer nodes only if the demand would still fit under the slot target with no queue.
  const fits = Math.ceil(demand / (perNode * p.targetSlotUtilization));
  return { policy: 'queue', wanted: fits < n ? Math.min(desired, fits) : desired, inputs };
}

function latency(p: Extract<AutoscalingPolicy, { type: 'latency' }>, load: PoolLoad | undefined, desired: number): Proposal {
  if (!load || load.nodes === 0 || load.requests === undefined) return { policy: 'latency', inputs: 'latency: not measured this probe' };
  const n = load.nodes;
  if (load.requests === 0 || load.p95Ms === undefined) return { policy: 'latency', wanted: Math.min(desired, n - 1), inputs: `latency: no requests on ${n} node(s) since the last probe` };
  const inputs = `p95 ${Math.round(load.p95Ms)} ms over ${load.requests} request(s) on ${n} node(s) (target ${p.targetP95Ms} ms, down below ${p.scaleDownBelowP95Ms} ms)`;
  if (load.p95Ms > p.targetP95Ms) return { policy: 'latency', wanted: Math.max(n + 1, Math.ceil(n * Math.min(2, load.p95Ms / p.targetP95Ms))), inputs };
  if (load.p95Ms < p.scaleDownBelowP95Ms) return { policy: 'latency', wanted: Math.min(desired, n - 1), inputs };
  return { policy: 'latency', wanted: desired, inputs };
}

function reactive(p: Extract<AutoscalingPolicy, { type: 'reactive' }>, load: PoolLoad | undefined, desired: number): Proposal {
  const u = load?.utilization;
  const n = load?.utilizationNodes ?? 0;
  if (u === undefined || n === 0) return { policy: 'reactive', inputs: 'utilisation: no accepting node reported' };
  const inputs = `utilisation ${Math.round(u)} % on ${n} node(s) (up at ${p.scaleUpAt} %, down at ${p.scaleDownAt} %)`;
  if (u >= p.scaleUpAt) return { policy: 'reactive', wanted: n + 1, inputs };
  if (u <= p.scaleDownAt) return { policy: 'reactive', wanted: Math.min(desired, n - 1), inputs };
  return { policy: 'reactive', wanted: desired, inputs };
}

/** A schedule wants at least its open windows' min (the pool's min outside them). */
function scheduled(bounds: SizeBounds): Proposal {
  return { policy: 'scheduled', wanted: bounds.minNodes, inputs: bounds.window ? `window ${bounds.window} [${bounds.minNodes}, ${bounds.maxNodes}]` : `no window open [${bounds.minNodes}, ${bounds.maxNodes}]` };
}

export function propose(p: AutoscalingPolicy, load: PoolLoad | undefined, desired: number, bounds: SizeBounds): Proposal {
  switch (p.type) {
    case 'queue':
      return queue(p, load, desired);
    case 'latency':
      return latency(p, load, desired);
    case 'reactive':
      return reactive(p, load, desired);
    case 'scheduled':
      return scheduled(bounds);
  }
}

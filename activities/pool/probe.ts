import { Context } from '@temporalio/activity';
import { diffViews, viewDigest, type ProbeChange, type ProbeHealth, type ProbeView } from '../../workflows/common/digest.ts';
import { invalidArgument } from '../../workflows/common/errors.ts';
import { DEAD_AT_PROVIDER } from '../../workflows/common/health.ts';
import { AgentClient, type AgentHealth } from '../agentClient.ts';
import { UnknownPoolError, type PoolRegistry } from '../pools.ts';
import type { PoolLoad } from '../../workflows/pool/autoscale/policies.ts';
import { inferenceBuckets, nodeLoad, poolLoad, type NodeLoad } from './load.ts';
import type { NodeInstance } from '../providers/types.ts';

export interface ProbePoolInput {
  pool: string;
  /** Digest of the workflow's copy of the last probe view; a match lets the answer be changes only. */
  digest: string;
  timeoutMs: number;
  concurrency: number;
  /** Queue, latency and composite autoscaling: measure slots and queues (and, with latency, scrape request histograms). */
  load?: { latency: boolean };
  /** Serving pools: the desired model; the answer lists reachable nodes that serve another (or none). */
  desiredSha256?: string;
}

export interface ProbePoolResult {
  /** true: `changes` is the whole view (the workflow's copy was unknown here, e.g. after a worker restart). */
  full: boolean;
  changes: ProbeChange[];
  digest: string;
  /** Mean GPU utilisation (%) over reachable nodes whose agent accepts work, and how many that was. */
  utilization?: number;
  activeNodes: number;
  /** Up to 16 reachable, accepting nodes with no work in flight (scale-down candidates). */
  idle: string[];
  probed: number;
  tookMs: number;
  /** When the probe finished (ms since the epoch, the worker's clock): moves the pool's history clock (workflows/pool/clock.ts). */
  finishedAt?: number;
  /** When asked (input.load): the accepting nodes' slots, queue and request latency, and the least-loaded accepting nodes. */
  load?: PoolLoad;
  leastLoaded?: { id: string; inFlight: number }[];
  /** Reachable nodes whose agent is cordoned, draining or drained (at most 64); absent when none. */
  cordoned?: string[];
  /** With desiredSha256: reachable nodes whose agent serves another model than desired, and what (null: none). */
  drift?: { id: string; model: { uri: string; sha256: string } | null }[];
}

interface Observation {
  health: ProbeHealth;
  reasons?: string[];
  util?: number;
  accepting?: boolean;
  idle?: boolean;
  load?: NodeLoad;
  model?: { uri: string; sha256: string } | null;
}

export { DEAD_AT_PROVIDER };

const MAX_REASONS = 3;
const MAX_IDLE = 16;
const MAX_CORDONED = 64;

/** Runs `fn` over `items` with at most `limit` in flight. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>, onBatch: () => void): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let done = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
      if (++done % limit === 0) onBatch();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

function observe(h: AgentHealth): Observation {
  // The agent's GPU entries carry nvidia-smi fields; only utilisation matters here.
  const utils = (h.gpus as { utilizationPct?: unknown }[]).map((g) => g.utilizationPct).filter((u): u is number => typeof u === 'number');
  const accepting = h.drain.state === 'active';
  return {
    health: h.status,
    reasons: h.status === 'healthy' ? undefined : h.reasons.slice(0, MAX_REASONS).map((r) => r.slice(0, 160)),
    util: utils.length ? utils.reduce((a, b) => a + b, 0) / utils.length : undefined,
    accepting,
    idle: accepting && h.drain.inFlight === 0,
    model: h.model ? { uri: h.model.uri, sha256: h.model.sha256 } : null,
  };
}

/**
 * Probes every live instance of a pool (the provider's list, which is also the membership
 * reconcile) with bounded concurrency and a per-request timeout, and answers with what changed
 * since the view whose digest the workflow sent. The last view per workflow is kept in memory;
 * a worker that does not have it answers with the full view once.
 */
export function createProbeActivities({ pools }: { pools: PoolRegistry }) {
  const views = new Map<string, ProbeView>();
  /** Per workflow: each node's request-histogram counts at the last probe (latency autoscaling). */
  const histograms = new Map<string, Map<string, Map<number, number>>>();
  const poolOf = (name: string) => {
    try {
      return pools.get(name);
    } catch (err) {
      if (err instanceof UnknownPoolError) throw invalidArgument('name', err.message);
      throw err;
    }
  };

  return {
    async probePool(input: ProbePoolInput): Promise<ProbePoolResult> {
      const started = Date.now();
      const ctx = Context.current();
      const key = ctx.info.workflowExecution?.workflowId ?? input.pool;
      const { provider } = poolOf(input.pool);
      const nodes: NodeInstance[] = await provider.list(input.pool);
      const observed = await mapLimit(
        nodes,
        input.concurrency,
        async (n): Promise<Observation> => {
          const dead = n.dead ? [`${DEAD_AT_PROVIDER}${n.dead.reason}`.slice(0, 160)] : [];
          if (!n.agentUrl) return { health: 'unreachable', reasons: dead.length ? dead : [`instance is ${n.state}; no agent address`] };
          try {
            // An agent that answers is believed, even on an instance the provider holds failed.
            const agent = new AgentClient(n.agentUrl, pools.auth.tokensFor(input.pool, n.id), input.timeoutMs, { workflowId: key });
            const h = await agent.health();
            const o = observe(h);
            if (input.load) {
              o.load = nodeLoad(h);
              // A node whose metrics do not answer still counts its slots; its latency is missing this once.
              if (input.load.latency) o.load.buckets = await agent.metrics().then(inferenceBuckets, () => undefined);
            }
            return o;
          } catch (err) {
            return { health: 'unreachable', reasons: [...dead, `agent did not answer: ${(err as Error).message}`.slice(0, 160)] };
          }
        },
        () => ctx.heartbeat(),
      );

      const view: ProbeView = {};
      const reasons = new Map<string, string[]>();
      let utilSum = 0;
      let utilCount = 0;
      const idle: string[] = [];
      const cordoned: string[] = [];
      const drift: NonNullable<ProbePoolResult['drift']> = [];
      nodes.forEach((n, i) => {
        const o = observed[i];
        if (input.desiredSha256 && o.model !== undefined && o.model?.sha256 !== input.desiredSha256) drift.push({ id: n.id, model: o.model });
        view[n.id] = o.health;
        if (o.reasons) reasons.set(n.id, o.reasons);
        if (o.accepting && o.util !== undefined) {
          utilSum += o.util;
          utilCount++;
        }
        if (o.idle && idle.length < MAX_IDLE) idle.push(n.id);
        if (o.accepting === false && cordoned.length < MAX_CORDONED) cordoned.push(n.id);
      });
      const measured = input.load
        ? poolLoad(nodes.map((n, i) => ({ id: n.id, load: observed[i].load })), histograms.get(key) ?? histograms.set(key, new Map()).get(key)!, input.load.latency)
        : undefined;
      const previous = views.get(key);
      const full = !previous || viewDigest(previous) !== input.digest;
      const changes = (full ? diffViews({}, view) : diffViews(previous, view)).map((c) =>
        c.health && reasons.has(c.id) ? { ...c, reasons: reasons.get(c.id) } : c,
      );
      views.set(key, view);
      const finishedAt = Date.now();
      return {
        full,
        changes,
        digest: viewDigest(view),
        utilization: utilCount ? Math.round(utilSum / utilCount) : undefined,
        activeNodes: utilCount,
        idle,
        probed: nodes.length,
        tookMs: finishedAt - started,
        finishedAt,
        ...(measured ? { load: measured.load, leastLoaded: measured.leastLoaded } : {}),
        ...(input.desiredSha256 ? { drift } : {}),
        ...(cordoned.length ? { cordoned } : {}),
      };
    },

    /** The worker's view of the pool: which provider serves it, and its instance type (checked at start). */
    async describePoolConfig(input: { pool: string }): Promise<{ provider: string; instanceType: string }> {
      const { config, provider } = poolOf(input.pool);
      return { provider: provider.name, instanceType: config.instanceType };
    },
  };
}

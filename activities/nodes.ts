import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { invalidArgument } from '../workflows/common/errors.ts';
import { AgentClient, AgentHttpError, type CallerContext, type DrainState } from './agentClient.ts';
import { PoolRegistry, UnknownPoolError } from './pools.ts';
import type { NodeInstance } from './providers/types.ts';
import { onlyWaitsForModel } from '../gpu-agent/readiness.ts';

export interface NodeRef {
  pool: string;
  nodeId: string;
}

export interface DrainResult {
  outcome: 'drained' | 'timed-out' | 'forced' | 'unreachable';
  inFlight: number;
  cancelled: number;
}

export interface ProvisionResult {
  nodeId: string;
  agentUrl: string;
}

/** How long an agent may stay unreachable before cordon / drain treat the node as dead. */
const UNREACHABLE_AFTER_MS = 15_000;
export const POLL_MS = 500;
const AGENT_URL_TTL_MS = 5000;
/** Drain requests long-poll the agent this long, so a finished drain is seen at once; heartbeats go between. */
const DRAIN_WAIT_SECONDS = 5;

export interface NodeActivityDeps {
  /** The pools, with the agent auth (pools.auth) workers reach their nodes with. */
  pools: PoolRegistry;
}

/** The workflow an activity runs for, and a log line per control call naming it (the agent audits it too). */
export function callerContext(ref: NodeRef): CallerContext {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return {}; // not inside an activity (scripts, tests)
  }
  const workflowId = ctx.info.workflowExecution?.workflowId;
  if (!workflowId) return {};
  return {
    workflowId,
    onControl: (method, path) => ctx.log.info(`agent ${method} ${path} on ${ref.pool}/${ref.nodeId} for workflow ${workflowId}`, { pool: ref.pool, nodeId: ref.nodeId, agentCall: `${method} ${path}` }),
  };
}

/** How activities reach a pool's provider and a node's agent (shared by node, pool and rollout activities). */
export function nodeAccess({ pools }: NodeActivityDeps) {
  const client = (url: string, ref: NodeRef) => new AgentClient(url, pools.auth.tokensFor(ref.pool, ref.nodeId), undefined, callerContext(ref));
  function pool(name: string) {
    try {
      return pools.get(name);
    } catch (err) {
      if (err instanceof UnknownPoolError) throw invalidArgument('pool', err.message);
      throw err;
    }
  }

  async function liveNode(ref: NodeRef): Promise<NodeInstance> {
    const node = await pool(ref.pool).provider.describe(ref.nodeId);
    if (!node || node.pool !== ref.pool || node.state === 'terminated') {
      throw invalidArgument('nodeId', `no live node '${ref.nodeId}' in pool '${ref.pool}'`);
    }
    return node;
  }

  // Agent addresses, briefly: a drain polls many times a second and each look-up is a provider API call on a cloud.
  const urls = new Map<string, { url: string; until: number }>();
  async function agentFor(ref: NodeRef): Promise<AgentClient | undefined> {
    const key = `${ref.pool}/${ref.nodeId}`;
    const hit = urls.get(key);
    if (hit && hit.until > Date.now()) return client(hit.url, ref);
    const node = await liveNode(ref);
    if (!node.agentUrl) return undefined;
    urls.set(key, { url: node.agentUrl, until: Date.now() + AGENT_URL_TTL_MS });
    return client(node.agentUrl, ref);
  }

  /** Retries transport errors until the agent answers or has been unreachable too long. */
  async function withAgent<T>(ref: NodeRef, fn: (agent: AgentClient) => Promise<T>): Promise<T | 'unreachable'> {
    const ctx = Context.current();
    const until = Date.now() + UNREACHABLE_AFTER_MS;
    for (;;) {
      try {
        const agent = await agentFor(ref);
        if (agent) return await fn(agent);
      } catch (err) {
        if (err instanceof ApplicationFailure) throw err;
        if (err instanceof AgentHttpError) {
          if (err.status === 401 || err.status === 400) throw ApplicationFailure.nonRetryable(err.message, 'AgentRejected');
          throw err;
        }
        // Connection refused or timed out: the node may be dead (or moved: look it up again).
        urls.delete(`${ref.pool}/${ref.nodeId}`);
      }
      if (Date.now() >= until) return 'unreachable';
      ctx.heartbeat({ waiting: 'agent unreachable' });
      await ctx.sleep(POLL_MS);
    }
  }

  return { pool, liveNode, agentFor, withAgent };
}

export function createNodeActivities(deps: NodeActivityDeps) {
  const { pool, liveNode, agentFor, withAgent } = nodeAccess(deps);

  return {
    /** Checks that the node is a live member of the pool; bad names fail as InvalidArgument. */
    async resolveNode(ref: NodeRef): Promise<{ instanceType: string; provider: string }> {
      const node = await liveNode(ref);
      return { instanceType: node.instanceType, provider: node.provider };
    },

    async cordonNode(ref: NodeRef): Promise<'cordoned' | 'unreachable'> {
      const r = await withAgent(ref, (a) => a.cordon());
      return r === 'unreachable' ? r : 'cordoned';
    },

    async uncordonNode(ref: NodeRef): Promise<'uncordoned' | 'unreachable'> {
      const r = await withAgent(ref, (a) => a.uncordon());
      return r === 'unreachable' ? r : 'uncordoned';
    },

    /**
     * Drains the node, heartbeating the in-flight count. The agent fixes the deadline on the first
     * request, so a retry after a worker crash resumes the same drain instead of starting over.
     */
    async drainNode(ref: NodeRef & { timeoutSeconds: number; force: boolean }): Promise<DrainResult> {
      const ctx = Context.current();
      // Agents older than the long-poll reject waitSeconds (400): poll those every POLL_MS instead.
      let longPoll = true;
      const settle = async (a: AgentClient): Promise<DrainState> => {
        if (!longPoll) return a.drainStatus();
        try {
          return await a.drain(ref.timeoutSeconds, false, DRAIN_WAIT_SECONDS);
        } catch (err) {
          if (!(err instanceof AgentHttpError && err.status === 400 && /waitSeconds/.test(err.message))) throw err;
          longPoll = false;
          return a.drain(ref.timeoutSeconds);
        }
      };
      let last: DrainState | 'unreachable' = await withAgent(ref, settle);
      for (;;) {
        if (last === 'unreachable') return { outcome: 'unreachable', inFlight: 0, cancelled: 0 };
        ctx.heartbeat({ state: last.state, inFlight: last.inFlight, deadline: last.deadline });
        if (last.state === 'drained') return { outcome: 'drained', inFlight: 0, cancelled: last.cancelled };
        if (last.state === 'timed-out') {
          if (!ref.force) return { outcome: 'timed-out', inFlight: last.inFlight, cancelled: 0 };
          const forced: DrainState | 'unreachable' = await withAgent(ref, (a) => a.drain(ref.timeoutSeconds, true));
          const cancelled = forced === 'unreachable' ? last.inFlight : forced.cancelled;
          return { outcome: 'forced', inFlight: 0, cancelled };
        }
        if (!longPoll) await ctx.sleep(POLL_MS);
        last = await withAgent(ref, settle);
      }
    },

    async terminateNode(ref: NodeRef): Promise<void> {
      await pool(ref.pool).provider.terminate(ref.nodeId);
    },

    /** Creates the replacement (idempotent on the key) and waits until its agent answers. */
    async provisionNode(input: { pool: string; idempotencyKey: string; serving?: boolean }): Promise<ProvisionResult> {
      const ctx = Context.current();
      const { config, provider } = pool(input.pool);
      let node = await provider.provision({ pool: input.pool, instanceType: config.instanceType, ...(input.serving ? { serving: true } : {}) }, input.idempotencyKey);
      for (;;) {
        if (node.state === 'terminated') {
          throw ApplicationFailure.nonRetryable(`node ${node.id} for key ${input.idempotencyKey} was terminated while provisioning`, 'ProvisionFailed');
        }
        // A retry would find the same dead instance for this key: fail now, for the caller to decide.
        if (node.dead) throw ApplicationFailure.nonRetryable(`node ${node.id} for key ${input.idempotencyKey} is dead at the provider: ${node.dead.reason}`, 'ProvisionFailed');
        if (node.state === 'running' && node.agentUrl) return { nodeId: node.id, agentUrl: node.agentUrl };
        ctx.heartbeat({ nodeId: node.id, state: node.state });
        await ctx.sleep(POLL_MS);
        node = (await provider.describe(node.id)) ?? node;
      }
    },

    /**
     * Waits until the node's agent reports healthy and ready. `modelPending`: a node that joins a
     * serving pool is not ready until it serves the pool's model (the next step loads it), so
     * readiness that waits only for the model is enough here.
     */
    async waitNodeHealthy(ref: NodeRef & { modelPending?: boolean }): Promise<{ status: string; gpus: number }> {
      const ctx = Context.current();
      for (;;) {
        try {
          const agent = await agentFor(ref);
          if (agent) {
            const h = await agent.health();
            const ready = await agent.ready();
            const enough = ready.ready || (ref.modelPending === true && onlyWaitsForModel(ready.reasons ?? []));
            ctx.heartbeat({ waitingFor: 'agent healthy and ready', status: h.status, ready: ready.ready, reasons: ready.reasons?.slice(0, 3) });
            if (h.status === 'healthy' && enough) return { status: h.status, gpus: h.gpus.length };
          }
        } catch (err) {
          if (err instanceof ApplicationFailure) throw err;
          ctx.heartbeat({ error: (err as Error).message });
        }
        await ctx.sleep(POLL_MS);
      }
    },
  };
}

export type NodeActivities = ReturnType<typeof createNodeActivities>;

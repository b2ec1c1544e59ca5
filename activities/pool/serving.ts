import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { fleetPoolWorkflowId } from '../../workflows/common/ids.ts';
import type { ModelRef } from '../../workflows/inputs/rollingUpdate.ts';
import type { PoolStatus, SetServingAnswer, SetServingRequest } from '../../workflows/pool/api.ts';
import { nodeAccess, type NodeActivityDeps, type NodeRef } from '../nodes.ts';
import { createRolloutModelActivities } from '../rollout/model.ts';
import { noPool } from './lease.ts';

/** The smoke generation a joining node must pass before it is uncordoned (a model that loads but cannot generate does not serve). */
const JOIN_SMOKE = { prompt: 'Hello', maxTokens: 4, maxLatencyMs: 600_000 };
const READY_TIMEOUT_SECONDS = 300;
const SERVING_TIMEOUT_SECONDS = 120;

export interface RecordedModel {
  /** What the replacement must serve; null: nothing (the pool serves no model, and the old node served none). */
  model: ModelRef | null;
  /** Where it came from: the pool's desired state, the old node's agent, or (old node unreachable) what most live nodes serve. */
  source: 'pool' | 'node' | 'peers' | 'none';
}

/**
 * A pool's desired serving state, through its workflow: node joins, replacements and rollouts
 * ask it what a node must serve, and a node joining a serving pool is brought to that model
 * (cordoned, verified swap, smoke generation, readiness) before it is uncordoned.
 */
export function createPoolServingActivities(deps: NodeActivityDeps) {
  const { pool, agentFor } = nodeAccess(deps);
  const model = createRolloutModelActivities(deps);

  /** Whether a pool workflow runs, and its desired model (absent when it declares no `serving`). */
  async function poolServing(poolName: string): Promise<{ running: boolean; desired?: ModelRef }> {
    const handle = Context.current().client.workflow.getHandle(fleetPoolWorkflowId(poolName));
    try {
      if ((await handle.describe()).status.name !== 'RUNNING') return { running: false };
      const st = await handle.query<PoolStatus>('status');
      return { running: true, ...(st.serving ? { desired: st.serving.desired } : {}) };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError || noPool(err)) return { running: false };
      throw err;
    }
  }
  const poolDesired = async (poolName: string) => (await poolServing(poolName)).desired;

  /** What the node's agent serves: a model, null for none, undefined when it does not answer. */
  async function served(ref: NodeRef): Promise<ModelRef | null | undefined> {
    try {
      const agent = await agentFor(ref);
      if (!agent) return undefined;
      const { model: m } = await agent.model();
      return m ? { uri: m.uri, sha256: m.sha256 } : null;
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      return undefined;
    }
  }

  return {
    /** The health policy's verdict on the node now (a rollout asks after a failed step: hardware or model?). */
    async nodeHealth(ref: NodeRef): Promise<{ status: 'healthy' | 'degraded' | 'unhealthy' | 'unreachable'; reasons: string[] }> {
      try {
        const agent = await agentFor(ref);
        if (!agent) return { status: 'unreachable', reasons: ['no agent address'] };
        const h = await agent.health();
        return { status: h.status, reasons: h.reasons.slice(0, 5) };
      } catch (err) {
        if (err instanceof ApplicationFailure) throw err;
        return { status: 'unreachable', reasons: [(err as Error).message] };
      }
    },

    /**
     * Before a replacement terminates its node: what the replacement must serve. When a pool
     * workflow runs, its desired model (a pool without `serving` manages no model: none, as
     * before). With no pool workflow, like for like: the old node's model; and when its agent does
     * not answer (a dead node), what most other live nodes of the pool serve.
     */
    async recordServedModel(ref: NodeRef): Promise<RecordedModel> {
      const p = await poolServing(ref.pool);
      if (p.desired) return { model: p.desired, source: 'pool' };
      if (p.running) return { model: null, source: 'none' };
      const own = await served(ref);
      if (own !== undefined) return { model: own, source: own ? 'node' : 'none' };
      const peers = (await pool(ref.pool).provider.list(ref.pool)).filter((n) => n.id !== ref.nodeId && n.state === 'running' && !n.dead);
      const votes = new Map<string, { model: ModelRef; n: number }>();
      for (const p of peers) {
        const m = await served({ pool: ref.pool, nodeId: p.id });
        if (m) votes.set(m.sha256, { model: m, n: (votes.get(m.sha256)?.n ?? 0) + 1 });
      }
      const best = [...votes.values()].sort((a, b) => b.n - a.n || a.model.sha256.localeCompare(b.model.sha256))[0];
      return best ? { model: best.model, source: 'peers' } : { model: null, source: 'none' };
    },

    /**
     * Brings a node that joins a serving pool to its model: cordon (no traffic yet), verified swap,
     * one smoke generation, readiness, uncordon. `followPool`: the pool's desired model at this
     * moment wins over `model` (a rollout may have moved it since the caller read it). Fails
     * NodeUnhealthy at once on a hardware fault, SmokeFailed on a model that loads but cannot generate.
     */
    async joinServing(input: NodeRef & { model: ModelRef; followPool?: boolean }): Promise<{ model: ModelRef }> {
      const ctx = Context.current();
      const want = (input.followPool ? await poolDesired(input.pool) : undefined) ?? input.model;
      const ref = { pool: input.pool, nodeId: input.nodeId };
      ctx.heartbeat({ waitingFor: 'cordon before the model load' });
      const agent = await agentFor(ref);
      if (!agent) throw new Error(`node ${input.nodeId} has no agent address yet`); // retried
      await agent.cordon();
      ctx.heartbeat({ waitingFor: `verified swap to ${want.sha256.slice(0, 12)}` });
      await model.swapModel({ ...ref, model: want });
      ctx.heartbeat({ waitingFor: 'smoke generation' });
      const smoke = await model.smokeCheck({ ...ref, sha256: want.sha256, ...JOIN_SMOKE });
      if (!smoke.ok) throw ApplicationFailure.nonRetryable(`node ${input.nodeId} loaded ${want.sha256.slice(0, 12)}… but its smoke generation failed: ${smoke.reason}`, 'SmokeFailed');
      await model.waitModelReady({ ...ref, sha256: want.sha256, timeoutSeconds: READY_TIMEOUT_SECONDS });
      await model.returnToService({ ...ref, timeoutSeconds: SERVING_TIMEOUT_SECONDS });
      return { model: want };
    },

    /**
     * For rollouts: sets the pool's desired model (`hold`: a rollout is walking the pool, so drift is
     * reported, not converged, until it lets go). `no-pool` when no pool workflow runs.
     */
    async setPoolServing(input: SetServingRequest & { pool: string }): Promise<SetServingAnswer | 'no-pool'> {
      const { pool: name, ...req } = input;
      try {
        return await Context.current().client.workflow.getHandle(fleetPoolWorkflowId(name)).executeUpdate<SetServingAnswer, [SetServingRequest]>('setServingModel', { args: [req] });
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError) {
          throw ApplicationFailure.nonRetryable(`pool ${name} refused setServingModel: ${err.cause?.message ?? err.message}`, 'PoolRefused');
        }
        if (noPool(err)) return 'no-pool';
        throw err;
      }
    },
  };
}

import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { fleetPoolWorkflowId } from '../../workflows/common/ids.ts';
import type { ModelRef } from '../../workflows/inputs/rollingUpdate.ts';
import type { PoolStatus } from '../../workflows/pool/api.ts';
import { nodeIdFor } from '../providers/naming.ts';
import { nodeAccess, type NodeActivityDeps } from '../nodes.ts';
import { noPool } from '../pool/lease.ts';

export interface RolloutMember {
  id: string;
  /** What the node serves now; null when no model, undefined when its agent did not answer. */
  model?: ModelRef | null;
}

export interface RolloutMembers {
  nodes: RolloutMember[];
  /** true: the pool workflow runs and its members (active or cordoned) were used. */
  poolWorkflow: boolean;
  /**
   * Nodes on their way into the pool (replacements running or queued, scale-ups provisioning):
   * members soon, which a rollout ending now would leave on their old model. Only with a pool workflow.
   */
  joining?: number;
}

/** Which nodes a rollout works on, and what they serve now. */
export function createRolloutNodeActivities(deps: NodeActivityDeps) {
  const { pool, agentFor } = nodeAccess(deps);

  async function servedModel(poolName: string, nodeId: string): Promise<ModelRef | null | undefined> {
    // The provider look-up stays outside: a throttled or failing provider API is retried (the
    // activity's retry policy), never taken for an agent that did not answer.
    const agent = await agentFor({ pool: poolName, nodeId });
    if (!agent) return undefined;
    try {
      const { model } = await agent.model();
      return model ? { uri: model.uri, sha256: model.sha256 } : null;
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      return undefined;
    }
  }

  return {
    /**
     * The pool's members from its workflow (active or cordoned; nodes being replaced or leaving are
     * the pool's business), or, when no pool workflow runs, the provider's running instances.
     */
    async listRolloutMembers(input: { pool: string }): Promise<RolloutMembers> {
      const ctx = Context.current();
      const provider = pool(input.pool).provider; // unknown pool names fail here, naming `pool`
      let ids: string[];
      let poolWorkflow = true;
      let joining: number | undefined;
      const handle = ctx.client.workflow.getHandle(fleetPoolWorkflowId(input.pool));
      try {
        // A closed pool workflow still answers queries (from replay) with stale members: only a running one counts.
        if ((await handle.describe()).status.name !== 'RUNNING') throw new WorkflowNotFoundError('pool workflow is closed', handle.workflowId, undefined);
        const st = await handle.query<PoolStatus>('status');
        ids = st.nodes.filter((n) => n.phase === 'active' || n.phase === 'cordoned').map((n) => n.id);
        // A queued replacement waits for the budget, which an open breaker holds shut: not joining.
        const replacing = st.leases.filter((l) => l.kind === 'replace').length + (st.breaker.open ? 0 : st.queue.filter((r) => r.kind === 'replace').length);
        joining = replacing + st.counts.provisioning;
      } catch (err) {
        if (!noPool(err)) throw err;
        poolWorkflow = false;
        ids = (await provider.list(input.pool)).filter((n) => n.state === 'running' && !n.dead).map((n) => n.id);
      }
      ids.sort();
      const nodes = await Promise.all(ids.map(async (id) => ({ id, model: await servedModel(input.pool, id) })));
      return { nodes, poolWorkflow, ...(joining ? { joining } : {}) };
    },

    /** Blue-green: the ids green nodes will get (providers name nodes from the provisioning key). */
    async greenNodeIds(input: { pool: string; keys: string[] }): Promise<string[]> {
      return input.keys.map((k) => nodeIdFor(input.pool, k));
    },
  };
}

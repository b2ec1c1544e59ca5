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
}

/** Which nodes a rollout works on, and what they serve now. */
export function createRolloutNodeActivities(deps: NodeActivityDeps) {
  const { pool, agentFor } = nodeAccess(deps);

  async function servedModel(poolName: string, nodeId: string): Promise<ModelRef | null | undefined> {
    try {
      const agent = await agentFor({ pool: poolName, nodeId });
      if (!agent) return undefined;
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
      const handle = ctx.client.workflow.getHandle(fleetPoolWorkflowId(input.pool));
      try {
        // A closed pool workflow still answers queries (from replay) with stale members: only a running one counts.
        if ((await handle.describe()).status.name !== 'RUNNING') throw new WorkflowNotFoundError('pool workflow is closed', handle.workflowId, undefined);
        const st = await handle.query<PoolStatus>('status');
        ids = st.nodes.filter((n) => n.phase === 'active' || n.phase === 'cordoned').map((n) => n.id);
      } catch (err) {
        if (!noPool(err)) throw err;
        poolWorkflow = false;
        ids = (await provider.list(input.pool)).filter((n) => n.state === 'running' && !n.dead).map((n) => n.id);
      }
      ids.sort();
      const nodes = await Promise.all(ids.map(async (id) => ({ id, model: await servedModel(input.pool, id) })));
      return { nodes, poolWorkflow };
    },

    /** Blue-green: the ids green nodes will get (providers name nodes from the provisioning key). */
    async greenNodeIds(input: { pool: string; keys: string[] }): Promise<string[]> {
      return input.keys.map((k) => nodeIdFor(input.pool, k));
    },
  };
}

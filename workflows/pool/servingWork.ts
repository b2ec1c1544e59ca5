import { patched, proxyActivities } from '@temporalio/workflow';
import type { NodeActivities } from '../../activities/nodes.ts';
import type { PoolActivities } from '../../activities/pool/index.ts';
import { failureMessage, failureType } from '../common/failure.ts';
import type { ModelRef } from '../inputs/rollingUpdate.ts';
import type { PoolNode } from './api.ts';
import * as budget from './budget.ts';
import type { PoolContext } from './context.ts';

/** The patch that guards every command serving pools add to a running pool's history. */
export const SERVING_PATCH = 'serving-state';

/** Failure type of a node the health policy calls unhealthy mid-step (activities/rollout/model.ts). */
const NODE_UNHEALTHY = 'NodeUnhealthy';

const joinActs = () =>
  proxyActivities<PoolActivities>({ startToCloseTimeout: '40 minutes', heartbeatTimeout: '1 minute', retry: { maximumInterval: '10 seconds', maximumAttempts: 5 } });
const nodeActs = () => proxyActivities<NodeActivities>({ startToCloseTimeout: '1 minute', heartbeatTimeout: '20 seconds', retry: { maximumInterval: '10 seconds', maximumAttempts: 5 } });

/** The model a node joining the pool must serve before it counts, or undefined (no `serving`, or a history from before serving pools). */
export function joinModel(ctx: PoolContext): ModelRef | undefined {
  const m = ctx.cfg.serving?.model;
  return m && patched(SERVING_PATCH) ? m : undefined;
}

/** A scale-up node: cordoned, brought to `model` (verified swap, smoke), then uncordoned; returns what it serves. */
export async function joinNode(ctx: PoolContext, nodeId: string, model: ModelRef): Promise<ModelRef> {
  const r = await joinActs().joinServing.executeWithOptions({ summary: `join ${nodeId}: cordon, load ${model.sha256.slice(0, 12)}…, smoke, uncordon` }, [
    { pool: ctx.pool, nodeId, model },
  ]);
  return r.model;
}

/**
 * Under a converge lease: brings a drifted member back to the pool's model. On failure the node is
 * uncordoned (it keeps serving what it had) and waits before the next try, unless the health
 * policy now calls it unhealthy: then it stays cordoned for remediation.
 */
export async function convergeNode(ctx: PoolContext, node: PoolNode, l: budget.Lease): Promise<void> {
  const s = ctx.state;
  const model = ctx.cfg.serving?.model;
  try {
    if (!model) return;
    node.model = await joinNode(ctx, node.id, model);
    node.phase = 'active';
    delete node.failures;
    ctx.event(`converged: serves ${node.model.uri} (${node.model.sha256.slice(0, 12)}…)`, node.id);
  } catch (err) {
    const n = s.nodes[node.id];
    if (n) {
      n.failures = (n.failures ?? 0) + 1;
      n.retryAfter = ctx.now() + Math.min(600, 30 * 2 ** (n.failures - 1)) * 1000;
      if (failureType(err) === NODE_UNHEALTHY) {
        n.phase = 'cordoned';
        ctx.event(`converge stopped: ${failureMessage(err)}; left cordoned for remediation`, node.id);
      } else {
        n.phase = 'active';
        ctx.event(`converge failed: ${failureMessage(err)}; uncordoned, next try later`, node.id);
        await nodeActs().uncordonNode.executeWithOptions({ summary: `uncordon ${node.id}: converge failed` }, [{ pool: ctx.pool, nodeId: node.id }]);
      }
    }
  } finally {
    s.budget = budget.release(s.budget, l.holder);
  }
}

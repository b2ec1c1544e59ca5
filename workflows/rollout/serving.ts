import { patched } from '@temporalio/workflow';
import { failureMessage, failureType } from '../common/failure.ts';
import type { ModelRef } from '../inputs/rollingUpdate.ts';
import { SERVING_PATCH } from '../pool/servingWork.ts';
import type { RolloutNode } from './api.ts';
import type { Rollout } from './runtime.ts';

/**
 * A rollout and its pool's desired serving state: the target becomes the pool's model when the
 * rollout starts (blue-green: at the switch), so nodes that join meanwhile get the target; on
 * rollback or abort the previous model is restored. And a node the health policy calls
 * unhealthy mid-walk is a hardware fault for the pool's remediation, never a verdict on the model.
 */

/** Failure type of activities/rollout/model.ts's nodeUnhealthy. */
const NODE_UNHEALTHY = 'NodeUnhealthy';

/** Why the failed step is a hardware fault (the node is unhealthy now), or undefined when it may be the model's. */
export async function hardwareFault(rt: Rollout, node: RolloutNode, err: unknown): Promise<string | undefined> {
  if (failureType(err) === NODE_UNHEALTHY) return failureMessage(err);
  if (!patched(SERVING_PATCH)) return undefined;
  try {
    const h = await rt.acts.serving.nodeHealth.executeWithOptions({ summary: `is ${node.id} unhealthy (hardware) after: ${failureMessage(err).slice(0, 80)}` }, [{ pool: rt.cfg.pool, nodeId: node.id }]);
    return h.status === 'unhealthy' ? `unhealthy: ${h.reasons.join('; ')}` : undefined;
  } catch {
    return undefined;
  }
}

/** Makes `model` the pool's desired model (`hold`: while the rollout walks the pool); records the previous one the first time. */
export async function setPoolModel(rt: Rollout, model: ModelRef, hold: boolean): Promise<void> {
  if (!rt.st.poolBudget || !patched(SERVING_PATCH)) return;
  const a = await rt.acts.serving.setPoolServing.executeWithOptions({ summary: `pool ${rt.cfg.pool}: desired model ${model.sha256.slice(0, 12)}…${hold ? ' (held while the rollout walks)' : ''}` }, [
    { pool: rt.cfg.pool, holder: rt.workflowId, model, hold },
  ]);
  if (a === 'no-pool' || !a.serving) return;
  if (!rt.st.poolServing && a.previous) {
    rt.st.poolServing = { previous: a.previous };
    rt.event(`the pool's desired model is now the target (was ${a.previous.sha256.slice(0, 12)}…); nodes that join get the target`);
  }
}

/** At the end: success keeps the target as the pool's model; rollback or abort restores the previous one. Never fails the rollout. */
export async function settlePoolModel(rt: Rollout, keepTarget: boolean): Promise<void> {
  const prev = rt.st.poolServing?.previous;
  if (!prev) return;
  const model = keepTarget ? rt.cfg.target.model : prev;
  try {
    await setPoolModel(rt, model, false);
    if (!keepTarget) rt.event(`the pool's desired model is restored to ${prev.sha256.slice(0, 12)}…`);
  } catch (err) {
    rt.event(`could not set the pool's desired model back: ${failureMessage(err)}`);
  }
}

import { INVALID_ARGUMENT } from '../common/errors.ts';
import { failureMessage, failureType } from '../common/failure.ts';
import type { ModelRef } from '../inputs/rollingUpdate.ts';
import type { RolloutNode } from './api.ts';
import { StepFailed, type Rollout } from './runtime.ts';
import { hardwareFault } from './serving.ts';

/** How long a node may take to report ready after its swap, and to take traffic after uncordon. */
const READY_TIMEOUT_SECONDS = 300;
const SERVING_TIMEOUT_SECONDS = 120;

/**
 * The per-node state machine (after the GPU Operator's upgrade controller):
 *   cordoning → draining → swapping → smoke-testing → readiness → uncordoning
 * towards `want`. Every step is idempotent, so a retried activity after a worker crash resumes it.
 * Going `forward` the smoke test applies the analysis' latency and expected text; rolling back it does not.
 */
async function machine(rt: Rollout, node: RolloutNode, want: ModelRef | null, forward: boolean): Promise<void> {
  const { cfg, acts } = rt;
  const ref = { pool: cfg.pool, nodeId: node.id };
  rt.set(node, 'cordoning');
  if ((await acts.nodes.cordonNode.executeWithOptions({ summary: `cordon ${node.id}` }, [ref])) === 'unreachable') throw new StepFailed('agent unreachable while cordoning');
  rt.set(node, 'draining');
  const drained = await acts.drain.drainNode.executeWithOptions({ summary: `drain ${node.id}` }, [{ ...ref, timeoutSeconds: cfg.drainTimeoutSeconds, force: cfg.forceDrain }]);
  if (drained.outcome === 'unreachable') throw new StepFailed('agent unreachable while draining');
  if (drained.outcome === 'timed-out') {
    throw new StepFailed(`drain timed out after ${cfg.drainTimeoutSeconds} s with ${drained.inFlight} request(s) in flight; raise drainTimeoutSeconds or set forceDrain`);
  }
  rt.set(node, 'swapping');
  await acts.swap.swapModel.executeWithOptions({ summary: `swap ${node.id} to ${want ? want.sha256.slice(0, 12) : 'no model'}` }, [{ ...ref, model: want }]);
  if (want) {
    rt.set(node, 'smoke-testing');
    const a = cfg.analysis;
    const smoke = await acts.rollout.smokeCheck.executeWithOptions({ summary: `smoke-test ${node.id}` }, [
      // Rolling back to a known-good model only checks that it serves and generates: a slow node back on it beats a cordoned one.
      { ...ref, sha256: want.sha256, prompt: a.prompt, maxTokens: a.maxTokens, maxLatencyMs: forward ? a.maxLatencyMs : 600_000, ...(forward && a.expect ? { expect: a.expect } : {}) },
    ]);
    if (!smoke.ok) throw new StepFailed(`smoke test failed: ${smoke.reason}`);
  }
  rt.set(node, 'readiness');
  await acts.rollout.waitModelReady.executeWithOptions({ summary: `readiness of ${node.id}` }, [{ ...ref, sha256: want?.sha256 ?? null, timeoutSeconds: READY_TIMEOUT_SECONDS }]);
  rt.set(node, 'uncordoning');
  await acts.rollout.returnToService.executeWithOptions({ summary: `uncordon ${node.id}; wait until it takes traffic` }, [{ ...ref, timeoutSeconds: SERVING_TIMEOUT_SECONDS }]);
}

/** Takes a slot of the pool's disruption budget for the node (none needed when no pool workflow runs). */
async function withLease<T>(rt: Rollout, node: RolloutNode, fn: () => Promise<T>): Promise<T> {
  const input = { pool: rt.cfg.pool, holder: `${rt.workflowId}/${node.id}`, nodeId: node.id };
  let leased = false;
  if (rt.st.poolBudget) {
    const got = await rt.acts.lease.acquirePoolLease.executeWithOptions({ summary: `lease for ${node.id} from pool ${rt.cfg.pool}` }, [input]);
    if (got === 'no-pool') {
      rt.st.poolBudget = false;
      rt.event(`no pool workflow runs for ${rt.cfg.pool}: only the rollout's maxUnavailable limits disruption`);
    } else leased = true;
  }
  rt.st.disrupted++;
  rt.st.maxDisrupted = Math.max(rt.st.maxDisrupted, rt.st.disrupted);
  try {
    return await fn();
  } finally {
    rt.st.disrupted--;
    if (leased) await rt.acts.lease.releasePoolLease.executeWithOptions({ summary: `release lease of ${node.id}` }, [input]);
  }
}

/**
 * The node left the pool (remediation replaced it): its lease was refused before its turn, or it
 * was terminated while it walked. That is no failure, and nothing is left to restore.
 */
function leftPool(err: unknown): boolean {
  const type = failureType(err);
  const why = failureMessage(err);
  return (type === 'LeaseRefused' && /is not a member/.test(why)) || (type === INVALID_ARGUMENT && /no live node/.test(why));
}

/** A hardware fault mid-walk: the lease goes back (withLease's finally) and the pool's remediation takes the node. */
function markHanded(rt: Rollout, node: RolloutNode, why: string): true {
  node.error = why;
  rt.event(`the health policy calls it unhealthy (${why}): a hardware fault, not the model; handed to the pool's remediation, the rollout goes on`, node.id);
  rt.set(node, 'handedToRemediation');
  return true;
}

function markLeft(rt: Rollout, node: RolloutNode, when: string): true {
  rt.event(`left the pool ${when}; a replacement is picked up when the rollout lists the pool again`, node.id);
  rt.set(node, 'left');
  return true;
}

/**
 * Walks one node to the target model. On failure the node is put back on its previous model at
 * once (still under its lease), so nothing is left cordoned or half-updated while the rollout
 * decides what to do; returns false then.
 */
export async function updateNode(rt: Rollout, node: RolloutNode): Promise<boolean> {
  node.direction = 'forward';
  node.startedAt = new Date().toISOString();
  delete node.error;
  delete node.onPrevious;
  try {
    return await withLease(rt, node, async () => {
      try {
        await machine(rt, node, rt.cfg.target.model, true);
        rt.set(node, 'done');
        return true;
      } catch (err) {
        if (leftPool(err)) return markLeft(rt, node, 'during its walk (replaced by remediation)');
        const fault = await hardwareFault(rt, node, err);
        if (fault) return markHanded(rt, node, fault);
        const why = failureMessage(err);
        rt.event(`update failed: ${why}; restoring its previous model`, node.id);
        try {
          node.direction = 'rollback';
          await machine(rt, node, node.previous ?? null, false);
          node.error = `${why} (restored to its previous model)`;
          node.onPrevious = true;
        } catch (again) {
          node.error = `${why}; restoring the previous model failed too: ${failureMessage(again)} — the node may be left cordoned`;
          rt.event(`restore failed: ${failureMessage(again)}`, node.id);
        }
        node.direction = 'forward';
        rt.set(node, 'failed');
        return false;
      }
    });
  } catch (err) {
    // No lease: nothing was touched.
    if (leftPool(err)) return markLeft(rt, node, 'before its turn');
    node.error = failureMessage(err);
    node.onPrevious = true;
    rt.set(node, 'failed');
    return false;
  }
}

/** Rolls an updated node back to the model it served before the rollout. */
export async function rollbackNode(rt: Rollout, node: RolloutNode): Promise<boolean> {
  node.direction = 'rollback';
  delete node.error;
  try {
    await withLease(rt, node, () => machine(rt, node, node.previous ?? null, false));
    rt.set(node, 'rolled-back');
    return true;
  } catch (err) {
    if (leftPool(err)) return markLeft(rt, node, 'during its rollback (replaced by remediation)');
    const fault = await hardwareFault(rt, node, err);
    if (fault) return markHanded(rt, node, fault);
    node.error = `rollback failed: ${failureMessage(err)}`;
    rt.event(node.error, node.id);
    rt.set(node, 'failed');
    return false;
  }
}

import { condition } from '@temporalio/workflow';
import { failureMessage } from '../common/failure.ts';
import type { RolloutNode } from './api.ts';
import { analyze } from './analysis.ts';
import type { Outcome } from './rolling.ts';
import { StepFailed, type Rollout } from './runtime.ts';
import { setPoolModel } from './serving.ts';

const READY_TIMEOUT_SECONDS = 300;

/**
 * Blue-green: provision a green set beside the pool (claimed, so the pool neither adopts nor counts
 * it), load and smoke-test the target on it while it takes no traffic, analyse it, then switch in
 * one step (green in, blue out) and keep blue cordoned for scaleDownDelaySeconds, when abort
 * re-admits it at once. Then blue is drained and terminated.
 */
export async function runBlueGreen(rt: Rollout): Promise<Outcome> {
  const { cfg, st, acts } = rt;
  const holder = rt.workflowId;
  const blue = st.nodes;
  const keys = blue.map((_, i) => `${holder}/green/${i}`);
  const ids = await acts.rollout.greenNodeIds.executeWithOptions({ summary: 'name the green nodes' }, [{ pool: cfg.pool, keys }]);
  const green: RolloutNode[] = ids.map((id) => ({ id, state: 'pending', direction: 'forward', role: 'green', previous: null, batch: 0 }));
  st.nodes = [...blue, ...green];
  st.batches = [ids];
  st.steps = 3; // provision + analyse, switch, scale down
  // Claimed before they exist, so the pool never adopts a green node as its own.
  if ((await acts.rollout.claimPoolNodes.executeWithOptions({ summary: `claim green nodes in pool ${cfg.pool}` }, [{ pool: cfg.pool, holder, nodeIds: ids }])) === 'no-pool') {
    st.poolBudget = false;
    rt.event(`no pool workflow runs for ${cfg.pool}: green and blue are not handed over to a pool`);
  }

  st.phase = 'provisioning';
  rt.event(`provisioning ${green.length} green node(s), at most ${st.maxUnavailable} at once`);
  let failure: string | undefined;
  await rt.each(
    green,
    () => st.maxUnavailable,
    async (n) => {
      try {
        await prepareGreen(rt, n, keys[green.indexOf(n)]);
        rt.set(n, 'standby');
      } catch (err) {
        n.error = failureMessage(err);
        rt.set(n, 'failed');
        failure ??= `green node ${n.id} failed: ${n.error}`;
      }
    },
    async () => !failure && (await rt.whileOperatorPaused()),
  );
  if (rt.aborting) return removeGreen(rt, green, 'aborted', rt.controls.abort ?? 'aborted');
  if (failure) return removeGreen(rt, green, 'rolled-back', failure);

  st.phase = 'analyzing';
  rt.publish();
  const analysis = await analyze(rt, 0, green.map((n) => n.id), 'analysis of the green set');
  if (!analysis.ok) return removeGreen(rt, green, 'rolled-back', `analysis of the green set failed: ${analysis.reason}`);

  st.step = 1;
  if (cfg.pauseBeforeSwitch && !rt.controls.promoteAll) {
    if (!(await rt.hold({ kind: 'switch', reason: 'green is ready: waiting for promote to switch traffic' }))) return removeGreen(rt, green, 'aborted', rt.controls.abort ?? 'aborted');
  }
  await rt.whileOperatorPaused();
  if (rt.aborting) return removeGreen(rt, green, 'aborted', rt.controls.abort ?? 'aborted');

  // The switch: green takes traffic first, then the pool swaps membership, then blue stops taking new work;
  // from here the target is the pool's desired model (an abort restores the previous one).
  // Held until the rollout ends, so blue (still members for a moment) is never taken for drift.
  await setPoolModel(rt, cfg.target.model, true);
  await switchTraffic(rt, green, blue, 'green in, blue out');
  st.phase = 'switched';
  rt.event(`switched: green serves, blue kept for ${cfg.scaleDownDelaySeconds} s (abort re-admits it at once)`);
  await condition(() => rt.aborting || rt.controls.skipDelay, cfg.scaleDownDelaySeconds * 1000);
  if (rt.aborting) {
    const reason = rt.controls.abort ?? 'aborted';
    await switchTraffic(rt, blue, green, 'instant rollback: blue in, green out');
    return removeGreen(rt, green, 'aborted', `${reason} after the switch: blue re-admitted`);
  }

  st.step = 2;
  st.phase = 'scaling-down';
  rt.event(`scaling down ${blue.length} blue node(s)`);
  await rt.each(blue, () => st.maxUnavailable, (n) => retire(rt, n));
  await acts.rollout.releasePoolClaims.executeWithOptions({ summary: 'release claims' }, [{ pool: cfg.pool, holder }]);
  for (const n of green) rt.set(n, 'done');
  return { outcome: 'succeeded' };
}

async function prepareGreen(rt: Rollout, n: RolloutNode, key: string): Promise<void> {
  const { cfg, acts } = rt;
  const ref = { pool: cfg.pool, nodeId: n.id };
  n.startedAt = new Date().toISOString();
  rt.set(n, 'provisioning');
  // A serving node: its agent is not ready (takes no traffic) until it serves the target, loaded below.
  const p = await acts.provision.provisionNode.executeWithOptions({ summary: `provision green ${n.id}` }, [{ pool: cfg.pool, idempotencyKey: key, serving: true }]);
  if (p.nodeId !== n.id) throw new StepFailed(`provider named the node ${p.nodeId}, expected ${n.id}`);
  await acts.provision.waitNodeHealthy.executeWithOptions({ summary: `wait for ${n.id} to be healthy` }, [{ ...ref, modelPending: true }]);
  // No client traffic before the switch.
  await acts.nodes.cordonNode.executeWithOptions({ summary: `hold ${n.id} out of traffic` }, [ref]);
  rt.set(n, 'swapping');
  await acts.swap.swapModel.executeWithOptions({ summary: `load ${cfg.target.model.sha256.slice(0, 12)} on ${n.id}` }, [{ ...ref, model: cfg.target.model }]);
  rt.set(n, 'smoke-testing');
  const a = cfg.analysis;
  const smoke = await acts.rollout.smokeCheck.executeWithOptions({ summary: `smoke-test ${n.id}` }, [
    { ...ref, sha256: cfg.target.model.sha256, prompt: a.prompt, maxTokens: a.maxTokens, maxLatencyMs: a.maxLatencyMs, ...(a.expect ? { expect: a.expect } : {}) },
  ]);
  if (!smoke.ok) throw new StepFailed(`smoke test failed: ${smoke.reason}`);
  rt.set(n, 'readiness');
  await acts.rollout.waitModelReady.executeWithOptions({ summary: `readiness of ${n.id}` }, [{ ...ref, sha256: cfg.target.model.sha256, timeoutSeconds: READY_TIMEOUT_SECONDS }]);
}

/** `into` takes traffic and joins the pool; `out` leaves it and stops taking new work (kept running). */
async function switchTraffic(rt: Rollout, into: RolloutNode[], out: RolloutNode[], what: string): Promise<void> {
  const { cfg, acts } = rt;
  await Promise.all(
    into.map(async (n) => {
      const ref = { pool: cfg.pool, nodeId: n.id };
      await acts.rollout.returnToService.executeWithOptions({ summary: `uncordon ${n.id}; wait until it takes traffic` }, [{ ...ref, timeoutSeconds: 120 }]);
      rt.set(n, n.role === 'green' ? 'done' : 'rolled-back');
    }),
  );
  await acts.rollout.swapPoolMembers.executeWithOptions({ summary: what }, [{ pool: cfg.pool, holder: rt.workflowId, admit: into.map((n) => n.id), remove: out.map((n) => n.id) }]);
  await Promise.all(
    out.map(async (n) => {
      await acts.nodes.cordonNode.executeWithOptions({ summary: `take ${n.id} out of traffic` }, [{ pool: cfg.pool, nodeId: n.id }]);
      rt.set(n, 'standby');
    }),
  );
  rt.event(what);
}

/** Drains and terminates a node the rollout holds (blue after the switch, or green on rollback). */
async function retire(rt: Rollout, n: RolloutNode): Promise<void> {
  const { cfg, acts } = rt;
  const ref = { pool: cfg.pool, nodeId: n.id };
  rt.set(n, 'terminating');
  try {
    const d = await acts.drain.drainNode.executeWithOptions({ summary: `drain ${n.id}` }, [{ ...ref, timeoutSeconds: cfg.drainTimeoutSeconds, force: true }]);
    if (d.cancelled) rt.event(`drain cancelled ${d.cancelled} request(s) after ${cfg.drainTimeoutSeconds} s`, n.id);
  } catch (err) {
    rt.event(`drain failed (${failureMessage(err)}); terminating anyway`, n.id);
  }
  await acts.nodes.terminateNode.executeWithOptions({ summary: `terminate ${n.id}` }, [ref]);
  rt.set(n, 'terminated');
}

/** Tears the green set down (abort or failure before the switch, or after an instant rollback). */
async function removeGreen(rt: Rollout, green: RolloutNode[], outcome: 'rolled-back' | 'aborted', reason: string): Promise<Outcome> {
  const { st } = rt;
  st.phase = 'rolling-back';
  st.reason = reason;
  rt.event(`removing the green set: ${reason}`);
  for (const n of st.nodes) if (n.role === 'blue' && n.state === 'pending') rt.set(n, 'done');
  // A green node that never got to provisioning may still exist if a worker crashed mid-call; terminate is idempotent.
  await rt.each(green, () => Math.max(rt.st.maxUnavailable, 1), async (n) => {
    try {
      await retire(rt, n);
    } catch (err) {
      if (!/no live node/.test(failureMessage(err))) throw err;
      rt.set(n, 'terminated');
    }
  });
  await rt.acts.rollout.releasePoolClaims.executeWithOptions({ summary: 'release claims' }, [{ pool: rt.cfg.pool, holder: rt.workflowId }]);
  return { outcome, reason };
}

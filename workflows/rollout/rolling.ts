import { sleep } from '@temporalio/workflow';
import type { RolloutNode } from './api.ts';
import { Prefetcher } from './prefetch.ts';
import { batchSize, estimateSteps, unavailableLimit } from './plan.ts';
import { analyze } from './analysis.ts';
import type { Rollout } from './runtime.ts';
import { rollbackNode, updateNode } from './walk.ts';

export type Outcome = { outcome: 'succeeded' } | { outcome: 'rolled-back' | 'aborted' | 'failed'; reason: string };

/** Membership refreshes at the end catch nodes that joined (e.g. replacements) while the rollout ran. */
const MAX_REFRESHES = 3;
/** How often, and how long at most, the end of a rollout waits for nodes still joining the pool. */
const JOIN_POLL_SECONDS = 5;
const MAX_JOIN_WAIT_SECONDS = 15 * 60;

/**
 * Rolling strategy: explicit steps (batches and pauses), then batches of maxUnavailable until every
 * node serves the target. After each batch an analysis watches the updated nodes; on any failure
 * the updated nodes are rolled back (or the rollout pauses, per onFailure).
 */
export async function runRolling(rt: Rollout): Promise<Outcome> {
  rt.prefetcher = Prefetcher.forRollout(rt);
  if (!rt.prefetcher) return rollingSteps(rt);
  const prefetching = rt.prefetcher.run();
  try {
    return await rollingSteps(rt);
  } finally {
    rt.prefetcher.stop();
    await prefetching;
  }
}

async function rollingSteps(rt: Rollout): Promise<Outcome> {
  const { cfg, st } = rt;
  const total = () => st.nodes.length;
  const pending = () => st.nodes.filter((n) => n.state === 'pending');
  let stepIndex = 0;
  let refreshes = 0;
  let joinWaited = 0;
  st.steps = estimateSteps(cfg.steps, total(), st.maxUnavailable);
  st.phase = 'progressing';
  rt.publish();

  for (;;) {
    if (rt.aborting) return rollBack(rt, 'aborted', rt.controls.abort ?? 'aborted');
    const step = cfg.steps[stepIndex];
    if (!step && pending().length === 0) {
      if (refreshes >= MAX_REFRESHES) break;
      const refreshed = await refreshMembers(rt, joinWaited === 0);
      if (refreshed === 'added') refreshes++;
      else if (refreshed === 'joining' && joinWaited < MAX_JOIN_WAIT_SECONDS) {
        await sleep(JOIN_POLL_SECONDS * 1000);
        joinWaited += JOIN_POLL_SECONDS;
      } else break;
      continue;
    }
    st.step = stepIndex;
    st.steps = Math.max(st.steps, stepIndex + 1);
    if (step && 'pause' in step) {
      stepIndex++;
      if (rt.controls.promoteAll) continue;
      const ok = await rt.hold({ kind: 'step', reason: step.pause.seconds !== undefined ? `pause step for ${step.pause.seconds} s (promote to skip)` : 'pause step: waiting for promote' }, step.pause.seconds);
      if (!ok) return rollBack(rt, 'aborted', rt.controls.abort ?? 'aborted');
      continue;
    }
    const size = step ? batchSize(step.batch, total()) : st.maxUnavailable;
    stepIndex++;
    const batch = pending().slice(0, size);
    if (batch.length === 0) continue;
    const b = st.batches.length;
    st.batches.push(batch.map((n) => n.id));
    for (const n of batch) n.batch = b;
    rt.event(`batch ${b + 1}: ${batch.length} node(s)`);

    let failed: RolloutNode | undefined;
    await rt.each(
      batch,
      () => st.maxUnavailable,
      async (n) => {
        if (!(await updateNode(rt, n))) failed ??= n;
      },
      async () => !failed && (await rt.whileOperatorPaused()),
    );
    // Nodes of the batch that never started (a failure or an abort stopped it) go back to the queue.
    for (const n of batch) if (n.state === 'pending') delete n.batch;
    if (rt.aborting) return rollBack(rt, 'aborted', rt.controls.abort ?? 'aborted');
    if (failed) {
      const next = await onFailure(rt, `node ${failed.id} failed: ${failed.error}`);
      if (next) return next;
      continue;
    }

    st.phase = 'analyzing';
    rt.publish();
    const updated = st.nodes.filter((n) => n.state === 'done').map((n) => n.id);
    const analysis = await analyze(rt, b, updated, `analysis after batch ${b + 1}`);
    st.phase = 'progressing';
    rt.publish();
    if (!analysis.ok) {
      const next = await onFailure(rt, `analysis after batch ${b + 1} failed: ${analysis.reason}`);
      if (next) return next;
    }
  }
  const failedNodes = st.nodes.filter((n) => n.state === 'failed');
  if (failedNodes.length) return { outcome: 'failed', reason: `${failedNodes.length} node(s) failed and were accepted: ${failedNodes.map((n) => n.id).join(', ')}` };
  return { outcome: 'succeeded' };
}

/** onFailure `rollback` rolls back at once; `pause` waits: resume accepts the failure (failed nodes are retried), abort rolls back. */
async function onFailure(rt: Rollout, reason: string): Promise<Outcome | undefined> {
  rt.event(reason);
  if (rt.cfg.onFailure === 'rollback') return rollBack(rt, 'rolled-back', reason);
  const resumed = await rt.hold({ kind: 'failure', reason: `${reason} — resume to accept and go on (failed nodes are retried), abort to roll back` });
  if (!resumed) return rollBack(rt, 'aborted', `${rt.controls.abort ?? 'aborted'} after: ${reason}`);
  for (const n of rt.st.nodes) {
    if (n.state === 'failed' && n.onPrevious) {
      n.state = 'pending';
      delete n.batch;
    }
  }
  return undefined;
}

/** Walks every node the rollout changed back to its previous model. */
async function rollBack(rt: Rollout, outcome: 'rolled-back' | 'aborted', reason: string): Promise<Outcome> {
  const { st } = rt;
  st.phase = 'rolling-back';
  st.reason = reason;
  // Nodes handed to remediation have nothing to restore (the pool replaces them).
  const changed = st.nodes.filter((n) => n.state !== 'pending' && !n.onPrevious && n.state !== 'rolled-back' && n.state !== 'handedToRemediation');
  rt.event(`rolling back ${changed.length} node(s): ${reason}`);
  let stuck = 0;
  await rt.each(changed, () => st.maxUnavailable, async (n) => {
    if (!(await rollbackNode(rt, n))) stuck++;
  });
  if (stuck) return { outcome: 'failed', reason: `${reason}; ${stuck} node(s) could not be rolled back (see their errors)` };
  return { outcome, reason };
}

/**
 * Adds members that joined since the plan and do not serve the target (`added`). Otherwise
 * `joining` when nodes are still on their way in (a replacement, a scale-up) and the pool does not
 * hold a desired model that would give them the target by itself: the rollout waits for them.
 */
async function refreshMembers(rt: Rollout, firstWait: boolean): Promise<'added' | 'joining' | 'none'> {
  const { cfg, st } = rt;
  const m = await rt.acts.rollout.listRolloutMembers.executeWithOptions({ summary: `list pool ${cfg.pool} again` }, [{ pool: cfg.pool }]);
  const known = new Set(st.nodes.map((n) => n.id));
  const fresh = m.nodes.filter((n) => !known.has(n.id) && n.model?.sha256 !== cfg.target.model.sha256);
  for (const n of fresh) st.nodes.push({ id: n.id, state: 'pending', direction: 'forward', previous: n.model ?? null });
  if (fresh.length) {
    st.maxUnavailable = unavailableLimit(rt.maxUnavailable, st.nodes.length);
    rt.event(`${fresh.length} node(s) joined the pool during the rollout and will be updated too: ${fresh.map((n) => n.id).join(', ')}`);
    return 'added';
  }
  if (!m.joining || st.poolServing) return 'none';
  if (firstWait) rt.event(`waiting for ${m.joining} node(s) joining the pool (replacements, scale-ups) to update them too (at most ${MAX_JOIN_WAIT_SECONDS / 60} minutes)`);
  return 'joining';
}

import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { NodeActivities } from '../activities/nodes.ts';
import type { PoolActivities } from '../activities/pool/index.ts';
import type { ModelRef } from './inputs/rollingUpdate.ts';
import { SERVING_PATCH } from './pool/servingWork.ts';
import { INVALID_ARGUMENT, invalidArgument } from './common/errors.ts';
import { fleetPoolWorkflowId, replaceNodeWorkflowId } from './common/ids.ts';
import { parseReplaceNodeInput, type ReplaceNodeConfig } from './inputs/replaceNode.ts';
import { DRYDOCK_NODE, DRYDOCK_PHASE, DRYDOCK_POOL } from './searchAttributes.ts';

/**
 * cordon → drain → terminate → provision → wait healthy. Failing before terminate
 * uncordons the node, so a failed replacement never leaves capacity cordoned.
 */
export type ReplacePhase =
  | 'validating'
  | 'cordoning'
  | 'draining'
  | 'uncordoning'
  | 'terminating'
  | 'provisioning'
  | 'waiting-healthy'
  | 'converging'
  | 'done'
  | 'failed';

export interface PhaseRecord {
  phase: ReplacePhase;
  startedAt: string;
  endedAt?: string;
  durationMs?: number;
  note?: string;
}

export interface ReplaceNodeStatus {
  pool?: string;
  nodeId?: string;
  reason?: string;
  phase: ReplacePhase;
  phases: PhaseRecord[];
  replacementNodeId?: string;
  /** What the replacement is brought to before it counts: the pool's desired model, or like for like the old node's. */
  model?: ModelRef | null;
  error?: string;
}

export interface ReplaceNodeResult {
  pool: string;
  nodeId: string;
  replacementNodeId: string;
  phases: PhaseRecord[];
  totalMs: number;
}

export const replaceNodeStatusQuery = defineQuery<ReplaceNodeStatus>('status');

const short = { startToCloseTimeout: '1 minute', heartbeatTimeout: '10 seconds', retry: { maximumInterval: '10 seconds' } } as const;

export async function replaceNode(rawInput: ReplaceNodeConfig): Promise<ReplaceNodeResult> {
  const status: ReplaceNodeStatus = { phase: 'validating', phases: [] };
  setHandler(replaceNodeStatusQuery, () => status);
  const started = Date.now();

  function enter(phase: ReplacePhase, note?: string): void {
    const now = new Date();
    const prev = status.phases[status.phases.length - 1];
    if (prev && !prev.endedAt) {
      prev.endedAt = now.toISOString();
      prev.durationMs = now.getTime() - new Date(prev.startedAt).getTime();
    }
    status.phase = phase;
    if (phase !== 'done' && phase !== 'failed') status.phases.push({ phase, startedAt: now.toISOString(), note });
    upsertSearchAttributes([{ key: DRYDOCK_PHASE, value: phase }]);
    // One screen: the Web UI's current-details box is short, so phases go on one line.
    const took = (p: PhaseRecord) => (p.durationMs === undefined ? 'running' : `${(p.durationMs / 1000).toFixed(1)}s`);
    setCurrentDetails(
      [
        `**replaceNode** ${status.pool ?? ''}/${status.nodeId ?? ''}: **${phase}**${status.replacementNodeId ? ` → replacement \`${status.replacementNodeId}\`` : ''}`,
        status.phases.map((p) => `${p.phase} ${took(p)}${p.note ? ` (${p.note})` : ''}`).join(' · '),
        ...(status.error ? [`**error:** ${status.error}`] : []),
      ].join('\n\n'),
    );
  }

  let input: ReplaceNodeConfig;
  try {
    input = parseReplaceNodeInput(rawInput);
  } catch (err) {
    status.error = (err as Error).message;
    enter('failed');
    throw err;
  }
  Object.assign(status, { pool: input.pool, nodeId: input.nodeId, reason: input.reason });
  upsertSearchAttributes([
    { key: DRYDOCK_POOL, value: input.pool },
    { key: DRYDOCK_NODE, value: input.nodeId },
  ]);
  const expectedId = replaceNodeWorkflowId(input.pool, input.nodeId);
  if (workflowInfo().workflowId !== expectedId) {
    status.error = `workflow id must be ${expectedId}`;
    enter('failed');
    throw invalidArgument('workflowId', `must be '${expectedId}' so that one node is never replaced twice at once`);
  }

  const ref = { pool: input.pool, nodeId: input.nodeId };
  const acts = proxyActivities<NodeActivities>(short);
  const drainActs = proxyActivities<NodeActivities>({
    ...short,
    startToCloseTimeout: `${input.drainTimeoutSeconds + 120} seconds`,
  });
  const slowActs = proxyActivities<NodeActivities>({ ...short, startToCloseTimeout: '15 minutes' });
  // Waiting in the pool's budget queue can take long; the activity heartbeats while it waits.
  const leaseActs = proxyActivities<PoolActivities>({ ...short, startToCloseTimeout: '2 hours', heartbeatTimeout: '30 seconds' });
  // Loads, smoke and readiness of the replacement's model, under one activity that heartbeats what it waits for.
  const joinActs = proxyActivities<PoolActivities>({ ...short, startToCloseTimeout: '40 minutes', heartbeatTimeout: '1 minute' });
  const lease = { pool: input.pool, holder: expectedId, nodeId: input.nodeId };
  let model: ModelRef | null = null;
  let leased = false;
  let terminated = false;

  try {
    enter('validating');
    await acts.resolveNode.executeWithOptions({ summary: `check ${input.nodeId} is a live node of pool ${input.pool}` }, [ref]);
    // Started outside its pool's workflow (CLI, Web UI): take a slot of the pool's disruption budget, if a pool workflow runs.
    if (patched('pool-budget-lease') && workflowInfo().parent?.workflowId !== fleetPoolWorkflowId(input.pool)) {
      const got = await leaseActs.acquirePoolLease.executeWithOptions({ summary: `wait for a slot in pool ${input.pool}'s disruption budget` }, [lease]);
      leased = got === 'granted';
      status.phases[status.phases.length - 1].note = leased ? `lease from pool/${input.pool}` : 'no pool workflow: no budget to wait for';
    }

    // Like for like: what the replacement must serve, recorded while the old node still runs.
    if (patched(SERVING_PATCH)) {
      const rec = await joinActs.recordServedModel.executeWithOptions({ summary: `record what ${input.nodeId} serves (the replacement gets the same)` }, [ref]);
      model = rec.model;
      status.model = model;
      const last = status.phases[status.phases.length - 1];
      const what = model ? `${model.uri.split('/').pop()} (${model.sha256.slice(0, 12)}…) from ${rec.source === 'pool' ? "the pool's desired state" : rec.source === 'node' ? 'the old node' : 'the pool\'s other nodes'}` : 'serves no model';
      last.note = last.note ? `${last.note}; ${what}` : what;
    }

    enter('cordoning', input.reason);
    const cordon = await acts.cordonNode.executeWithOptions({ summary: `cordon ${input.nodeId}: stop new work` }, [ref]);
    if (cordon === 'unreachable') status.phases[status.phases.length - 1].note = 'agent unreachable; node treated as dead';

    enter('draining', `timeout ${input.drainTimeoutSeconds}s, force ${input.force}`);
    const drain = await drainActs.drainNode.executeWithOptions(
      { summary: `drain ${input.nodeId}: wait up to ${input.drainTimeoutSeconds}s for in-flight work` },
      [{ ...ref, timeoutSeconds: input.drainTimeoutSeconds, force: input.force }],
    );
    status.phases[status.phases.length - 1].note = `${drain.outcome}${drain.cancelled ? `, ${drain.cancelled} cancelled` : ''}`;
    if (drain.outcome === 'timed-out') {
      throw ApplicationFailure.nonRetryable(
        `drain of ${input.nodeId} timed out after ${input.drainTimeoutSeconds}s with ${drain.inFlight} jobs still running; ` +
          'the node was uncordoned and keeps serving. Re-run with force: true to cancel the remaining work, or raise drainTimeoutSeconds.',
        'DrainTimeout',
      );
    }

    enter('terminating');
    await slowActs.terminateNode.executeWithOptions({ summary: `terminate ${input.nodeId}` }, [ref]);
    terminated = true;

    enter('provisioning');
    const replacement = await slowActs.provisionNode.executeWithOptions(
      { summary: `provision the replacement for ${input.nodeId}` },
      [{ pool: input.pool, idempotencyKey: `${workflowInfo().workflowId}/provision`, ...(model ? { serving: true } : {}) }],
    );
    status.replacementNodeId = replacement.nodeId;

    enter('waiting-healthy', replacement.nodeId);
    await slowActs.waitNodeHealthy.executeWithOptions(
      { summary: `wait until ${replacement.nodeId} is healthy and ready` },
      [{ pool: input.pool, nodeId: replacement.nodeId, ...(model ? { modelPending: true } : {}) }],
    );

    if (model) {
      // Cordoned until it serves the model (verified swap, smoke generation), then uncordoned; the pool's desired model at this moment wins.
      enter('converging', `${model.sha256.slice(0, 12)}…`);
      const joined = await joinActs.joinServing.executeWithOptions({ summary: `bring ${replacement.nodeId} to ${model.sha256.slice(0, 12)}…, then uncordon` }, [
        { pool: input.pool, nodeId: replacement.nodeId, model, followPool: true },
      ]);
      status.model = joined.model;
    }

    if (leased) await leaseActs.releasePoolLease.executeWithOptions({ summary: `give the budget slot back to pool ${input.pool}` }, [lease]);
    enter('done');
    return { pool: input.pool, nodeId: input.nodeId, replacementNodeId: replacement.nodeId, phases: status.phases, totalMs: Date.now() - started };
  } catch (err) {
    const cause = err instanceof ActivityFailure ? err.cause : err;
    status.error = (cause as Error).message;
    if (!terminated && status.phases.some((p) => p.phase === 'cordoning')) {
      // Give the node back to service; this must run even when the workflow is being cancelled.
      enter('uncordoning');
      await CancellationScope.nonCancellable(() =>
        acts.uncordonNode.executeWithOptions({ summary: `uncordon ${input.nodeId}: replacement did not go ahead` }, [ref]),
      );
    }
    if (leased) {
      await CancellationScope.nonCancellable(() =>
        leaseActs.releasePoolLease.executeWithOptions({ summary: `give the budget slot back to pool ${input.pool}` }, [lease]),
      );
    }
    enter('failed');
    if (cause instanceof ApplicationFailure && cause.type === INVALID_ARGUMENT) throw cause;
    if (isCancellation(err)) throw err;
    throw err;
  }
}

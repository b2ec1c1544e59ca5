import { WorkflowFailedError, WorkflowUpdateFailedError, type Client, type WorkflowExecutionDescription, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { decodeArrayFromPayloads } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { rolloutStatusQuery, type RolloutResult, type RolloutStatus } from '../../../workflows/rollout/api.ts';
import { existingWorkflow } from '../handles.ts';
import { badInput, CliError, EXIT, serverGone, workflowFailure } from '../runtime.ts';
import type { WatchView } from '../watch.ts';
import type { RolloutRef } from './input.ts';
import { rolloutChanges, type DownloadProgress } from './render.ts';

/** Talking to one rollingUpdate workflow: find it, read its status, send it updates, follow it. */

/** The failure types a finished-but-unsuccessful rollout ends with; details[0] is its RolloutResult. */
const ROLLOUT_FAILURES: Record<string, string> = { RolloutRolledBack: 'rolled back', RolloutAborted: 'was aborted', RolloutFailed: 'failed' };

/** A handle on a rollout that exists, with its description, or exit 2 saying so. */
export function existingRollout(client: Client, ref: RolloutRef): Promise<{ handle: WorkflowHandle; desc: WorkflowExecutionDescription }> {
  return existingWorkflow(client, ref.workflowId, `no rollout '${ref.id}' in pool ${ref.pool} (workflow ${ref.workflowId}); 'drydock rollout list --pool ${ref.pool}' shows them`);
}

/** The RolloutResult a finished rollout failed with (details[0] of its RolloutRolledBack/Aborted/Failed). */
function failedResult(err: unknown): { cause: ApplicationFailure; result?: RolloutResult } | undefined {
  const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
  if (!(cause instanceof ApplicationFailure) || !cause.type || !(cause.type in ROLLOUT_FAILURES)) return undefined;
  const result = cause.details?.[0] as RolloutResult | undefined;
  return { cause, result: result?.status ? result : undefined };
}

/** Exit 1 for a rollout that rolled back, was aborted or failed, with its reason, and its RolloutResult in the details. */
export function rolloutFailure(err: unknown, workflowId: string): { error: CliError; result?: RolloutResult } {
  const base = workflowFailure(err, workflowId);
  const f = failedResult(err);
  if (!f) return { error: base };
  const reason = f.result?.status.reason ?? f.cause.message;
  const error = new CliError(EXIT.workflowFailed, `${workflowId} ${ROLLOUT_FAILURES[f.cause.type as string]}: ${reason}`, { ...(base.details as object), result: f.result });
  return { error, result: f.result };
}

/**
 * A rollout's status: a closed one from its result (no worker needed), a running one from its
 * query. Null when no worker answers and no result holds one.
 */
export async function rolloutStatusOf(handle: WorkflowHandle, desc: WorkflowExecutionDescription): Promise<RolloutStatus | null> {
  if (desc.status.name === 'COMPLETED') return ((await handle.result()) as RolloutResult).status;
  if (desc.status.name === 'FAILED') {
    const f = await handle.result().then(
      () => undefined,
      (err: unknown) => failedResult(err),
    );
    if (f?.result) return f.result.status;
  }
  try {
    return await handle.query(rolloutStatusQuery);
  } catch (err) {
    if (serverGone(err)) throw err;
    return null;
  }
}

/** Sends an update to a running rollout; a rejection (by its validator or handler) is bad input. */
export async function rolloutUpdate<R>(client: Client, ref: RolloutRef, name: string, send: (h: WorkflowHandle) => Promise<R>): Promise<R> {
  const { handle, desc } = await existingRollout(client, ref);
  if (desc.status.name !== 'RUNNING') throw badInput(`${name}: rollout '${ref.id}' in pool ${ref.pool} is ${desc.status.name.toLowerCase()}, not running`);
  try {
    return await send(handle);
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const message = (err.cause as Error | undefined)?.message ?? err.message;
      throw badInput(message.startsWith(`${name}:`) ? message : `${name}: ${message}`);
    }
    throw err;
  }
}

/**
 * How `start --wait` follows a rollout: a bar of nodes done on a terminal, a line per change
 * otherwise; a failed rollout shows the state it failed in (its RolloutResult rides on the failure).
 */
export function rolloutView(handle: WorkflowHandle): WatchView<RolloutStatus, RolloutResult> {
  const frames = (s: RolloutStatus, prev: RolloutStatus | undefined) => rolloutChanges(prev, s).map((label) => ({ done: s.counts.done, total: s.counts.total, label }));
  return {
    unit: 'nodes',
    poll: () => handle.query(rolloutStatusQuery),
    frames,
    done: (r, last) => frames(r.status, last),
    failed: (err, workflowId) => {
      const f = rolloutFailure(err, workflowId);
      return { error: f.error, state: f.result?.status };
    },
  };
}

/**
 * Live download progress per node, from the heartbeats of the rollout's pending awaitPrefetches
 * ({downloads: {nodeId: …}}), prefetchModel and swapModel ({nodeId, download}) activities; empty
 * when nothing downloads or the details cannot be read.
 */
export async function downloadProgressOf(client: Client, desc: WorkflowExecutionDescription): Promise<Map<string, DownloadProgress>> {
  const out = new Map<string, DownloadProgress>();
  for (const a of desc.raw.pendingActivities ?? []) {
    const type = a.activityType?.name;
    if ((type !== 'prefetchModel' && type !== 'swapModel' && type !== 'awaitPrefetches') || !a.heartbeatDetails?.payloads?.length) continue;
    try {
      type Live = DownloadProgress & { state: string };
      const [d] = (await decodeArrayFromPayloads(client.options.loadedDataConverter, a.heartbeatDetails.payloads)) as [{ nodeId?: string; download?: Live; downloads?: Record<string, Live> }];
      if (d?.nodeId && d.download && d.download.state !== 'done') out.set(d.nodeId, d.download);
      for (const [nodeId, x] of Object.entries(d?.downloads ?? {})) if (x.state !== 'done') out.set(nodeId, x);
    } catch {
      /* details from another version, or not decodable here: no progress shown */
    }
  }
  return out;
}

import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { createProgress } from './progress.ts';
import { workflowFailure } from './runtime.ts';

export interface Snapshot {
  done: number;
  total: number;
  label: string;
}

const POLL_MS = 1_000;

/**
 * Draws a running workflow's progress from `snapshot` (usually a query) until it closes; returns
 * its result, or throws the CLI error for its failure (exit 1, or 2 for rejected input).
 * `final` draws the closed state from the result, since a closed workflow may not answer queries.
 */
export async function watchWorkflow<R>(
  handle: WorkflowHandle,
  unit: string,
  snapshot: () => Promise<Snapshot>,
  final: (result: R) => Snapshot,
): Promise<R> {
  const progress = createProgress(handle.workflowId, unit);
  const outcome = handle.result().then(
    (value: R) => ({ ok: true as const, value }),
    (err: unknown) => ({ ok: false as const, err }),
  );
  let closed = false;
  void outcome.then(() => (closed = true));
  let last: Snapshot | undefined;
  try {
    while (!closed) {
      try {
        last = await snapshot();
        progress.update(last.done, last.total, last.label);
      } catch {
        // No worker answers queries right now (none running, or it is restarting).
        if (!closed) progress.update(last?.done ?? 0, last?.total ?? 1, 'waiting for a drydock worker');
      }
      await Promise.race([sleep(POLL_MS), outcome]);
    }
    const r = await outcome;
    if (!r.ok) throw workflowFailure(r.err, handle.workflowId);
    const end = final(r.value);
    progress.update(end.done, end.total, end.label);
    return r.value;
  } finally {
    progress.stop();
  }
}

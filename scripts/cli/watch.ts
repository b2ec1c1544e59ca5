import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { createProgress, type ProgressStream } from './progress.ts';
import { CliError, isUnreachable, serverGone, workflowFailure } from './runtime.ts';

/**
 * The one watch loop of the CLI: poll a state (usually a workflow's query), draw it (a bar on a
 * terminal, a line per change otherwise), stop when the thing watched closes, and map how it
 * closed to the CLI's exit codes. Every command that follows something uses it.
 *
 * To follow something new: one workflow → watchWorkflow(handle, view), with frameView when its
 * state draws as one line, or your own `frames` for several lines per poll (a loss curve, nodes
 * finishing); something that is not one workflow (the workers of a task queue) → follow() with
 * your own `closed` promise (Ctrl-C, a deadline).
 */

/** One drawn state: a bar position on a terminal, one plain line otherwise. */
export interface Frame {
  done: number;
  total: number;
  label: string;
}

/** What to poll and how to draw it. S is what a poll returns. */
export interface PollView<S> {
  /** What the bar counts: 'nodes', 'rounds'. */
  unit: string;
  /** Reads the current state (usually a query). Throwing means "nobody answers right now". */
  poll(): Promise<S>;
  /** What is worth drawing for a state, given the one polled before (undefined at first): a frame per line. */
  frames(s: S, prev: S | undefined): Frame[];
}

export interface FollowOptions {
  /** The bar's and every line's title, usually the workflow id. */
  title: string;
  intervalMs?: number;
  stream?: ProgressStream;
}

const POLL_MS = 1_000;
export const WAITING_FOR_WORKER = 'waiting for a drydock worker';

/**
 * Polls and draws `view` until `closed` settles, then draws `closing` of what it settled with and
 * returns that. A poll that fails draws a waiting line; one that fails because the Temporal server
 * is gone ends the watch with that error (exit 3 through withClient).
 */
export async function follow<S, T>(view: PollView<S>, closed: Promise<T>, closing: (value: T, last: S | undefined) => Frame[], options: FollowOptions): Promise<T> {
  const progress = createProgress(options.title, view.unit, options.stream);
  let isClosed = false;
  void closed.then(() => (isClosed = true));
  let last: S | undefined;
  let drawn: Frame = { done: 0, total: 0, label: '' };
  const draw = (frames: Frame[]) => {
    for (const f of frames) progress.update(f.done, f.total, f.label);
    drawn = frames.at(-1) ?? drawn;
  };
  try {
    while (!isClosed) {
      try {
        const s = await view.poll();
        draw(view.frames(s, last));
        last = s;
      } catch (err) {
        if (serverGone(err)) throw err;
        // No worker answers right now (none running, or it is restarting).
        if (!isClosed) draw([{ ...drawn, label: WAITING_FOR_WORKER }]);
      }
      await Promise.race([sleep(options.intervalMs ?? POLL_MS), closed]);
    }
    const value = await closed;
    draw(closing(value, last));
    return value;
  } finally {
    progress.stop();
  }
}

/** How to follow one workflow type to its end. S: what its query returns; R: its result. */
export interface WatchView<S, R> extends PollView<S> {
  /** The frames of the closed workflow, from its result (a closed workflow may not answer queries). */
  done?(result: R, last: S | undefined): Frame[];
  /** The CLI error for the way the run failed, and frames of the state it failed in when the failure carries one. */
  failed?(err: unknown, workflowId: string): { error: CliError; state?: S };
}

type Outcome<R> = { ok: true; value: R } | { ok: false; err: unknown };

/**
 * Follows a running workflow until it closes; returns its result, or throws the CLI error for its
 * failure (exit 1, or 2 for input the workflow rejected; losing Temporal stays exit 3).
 */
export async function watchWorkflow<S, R>(handle: WorkflowHandle, view: WatchView<S, R>, options: Omit<FollowOptions, 'title'> = {}): Promise<R> {
  const outcome: Promise<Outcome<R>> = handle.result().then(
    (value: R) => ({ ok: true, value }),
    (err: unknown) => ({ ok: false, err }),
  );
  let failure: CliError | undefined;
  const r = await follow(
    view,
    outcome,
    (o, last) => {
      if (o.ok) return view.done?.(o.value, last) ?? [];
      if (isUnreachable(o.err)) return [];
      const f = view.failed?.(o.err, handle.workflowId) ?? { error: workflowFailure(o.err, handle.workflowId) };
      failure = f.error;
      return f.state === undefined ? [] : view.frames(f.state, last);
    },
    { ...options, title: handle.workflowId },
  );
  if (r.ok) return r.value;
  throw failure ?? r.err;
}

/** A workflow's result with no progress to draw (it has no query), its failure mapped as watchWorkflow does. */
export async function workflowResult<R>(handle: WorkflowHandle): Promise<R> {
  try {
    return (await handle.result()) as R;
  } catch (err) {
    if (isUnreachable(err)) throw err;
    throw workflowFailure(err, handle.workflowId);
  }
}

/** A view of workflows whose state draws as one frame (a bar of phases, rounds, sources). */
export function frameView<S, R>(unit: string, poll: () => Promise<S>, frame: (s: S) => Frame, done?: (result: R) => Frame): WatchView<S, R> {
  return { unit, poll, frames: (s) => [frame(s)], done: done && ((r) => [done(r)]) };
}

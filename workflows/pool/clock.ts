import { isCancellation, sleep, workflowInfo } from '@temporalio/workflow';
import type { PoolContext } from './context.ts';

/**
 * The pool's decision clock, made only of facts in the history.
 *
 * Why: when a query reaches a run no worker has cached while a workflow task is pending (a timer
 * fired or an activity finished while no worker ran: after every worker restart or deploy), the
 * TS SDK 1.24 applies the pending events on the previous task's time, and the commands it records
 * then are sent with the real task. A replay applies the same events on the real task's time,
 * decides otherwise, and fails with a nondeterminism error: the pool stops.
 * (Reproduced without drydock code by scripts/sdk-repro/query-during-restart.ts; test/pool/queryRestart.test.ts
 * checks the pool.)
 *
 * So with patched('history-clock') every decision reads `state.clock`, which moves only forward
 * and only to times the history holds: the run's start, the deadline of a timer that fired, the
 * time a probe finished (in its result) and the times the watch saw changes (in its signal). It
 * lags the wall clock by at most a probe interval between those, never leads it.
 */

/** patched() id: decisions read the history clock; the probe's timer, when it fires, moves it to the deadline. */
export const HISTORY_CLOCK_PATCH = 'history-clock';

/** Moves the clock forward to `at` (never back). */
export function advanceClock(ctx: PoolContext, at: number | undefined): void {
  const s = ctx.state;
  if (!ctx.run.historyClock || at === undefined || !Number.isFinite(at)) return;
  if (s.clock === undefined || at > s.clock) s.clock = at;
}

/**
 * Switches the run to the history clock (once): it starts at the later of the run's start and
 * the last probe (a pool upgraded mid-run carries an older clock-less state).
 */
export function startClock(ctx: PoolContext): void {
  const s = ctx.state;
  if (!ctx.run.historyClock || s.clock !== undefined) return;
  s.clock = Math.max(workflowInfo().runStartTime.getTime(), s.lastProbe?.at ?? 0);
}

/**
 * Wakes the loop at `deadline` on the history clock: one timer per distinct deadline, never
 * cancelled or restarted by earlier wake-ups (so a busy pool does not push its probe back). When it
 * fires, the clock reaches the deadline.
 */
export function wakeAt(ctx: PoolContext, deadline: number): void {
  const timers = (ctx.run.timers ??= new Set());
  const now = ctx.now();
  if (deadline <= now || timers.has(deadline)) return;
  timers.add(deadline);
  sleep(deadline - now).then(
    () => {
      timers.delete(deadline);
      advanceClock(ctx, deadline);
      ctx.run.dirty = true;
    },
    (err: unknown) => {
      if (!isCancellation(err)) throw err;
    },
  );
}

import { Context } from '@temporalio/activity';

/** Heartbeats when called inside an activity; a no-op elsewhere (CLI, tests calling providers directly). */
export function beat(details: unknown): void {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return; // not in an activity
  }
  ctx.heartbeat(details);
}

/** Heartbeats every few seconds while a long provider call (a waiter, an operation) runs. */
export async function beating<T>(work: Promise<T>, details: unknown, everyMs = 2000): Promise<T> {
  beat(details);
  const timer = setInterval(() => beat(details), everyMs);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

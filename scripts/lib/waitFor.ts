import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';

/** Polls `check` every `intervalMs` until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string, intervalMs = 100): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * Polls the workflow's query `name` until `check` holds and returns that answer; `every` sees each
 * answer (e.g. to track a maximum). A query no worker answers right now counts as not yet. On time
 * out the error carries the last answer, its `events` cut to the newest `keepEvents`.
 */
export async function waitQuery<T extends { events: unknown[] }>(
  handle: WorkflowHandle,
  name: string,
  check: (s: T) => boolean,
  what: string,
  timeoutMs: number,
  every: (s: T) => void = () => {},
  keepEvents = 12,
): Promise<T> {
  let last: T | undefined;
  try {
    await waitFor(
      async () => {
        try {
          last = await handle.query<T>(name);
        } catch {
          return false; // no worker to answer right now
        }
        every(last);
        return check(last);
      },
      timeoutMs,
      what,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last ${name}: ${JSON.stringify(last && { ...last, events: last.events.slice(-keepEvents) }, null, 1)}`);
  }
  return last!;
}

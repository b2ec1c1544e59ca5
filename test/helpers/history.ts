import type { WorkflowHandle } from '@temporalio/client';
import { waitFor } from '../../scripts/lib/waitFor.ts';

/** How many times each activity type was started, from the workflow's real history. */
export async function activityAttempts(handle: WorkflowHandle): Promise<Record<string, number>> {
  const history = await handle.fetchHistory();
  const scheduled = new Map<string, string>();
  const attempts: Record<string, number> = {};
  for (const e of history.events ?? []) {
    const id = String(e.eventId);
    if (e.activityTaskScheduledEventAttributes) scheduled.set(id, e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const type = scheduled.get(String(started.scheduledEventId)) ?? '?';
      attempts[type] = Math.max(attempts[type] ?? 0, started.attempt ?? 1);
    }
  }
  return attempts;
}

const PENDING_ACTIVITY_STATE_STARTED = 2;

/**
 * Waits until the server reports `activityType` as started and still running. Asked of the
 * server, not the worker, so it stays accurate on a loaded machine: a worker killed now dies
 * inside that activity.
 */
export async function waitForRunningActivity(handle: WorkflowHandle, activityType: string, timeoutMs = 120_000): Promise<void> {
  await waitFor(
    async () =>
      ((await handle.describe()).raw.pendingActivities ?? []).some((a) => a.activityType?.name === activityType && Number(a.state) === PENDING_ACTIVITY_STATE_STARTED),
    timeoutMs,
    `activity ${activityType} to run`,
  );
}

/**
 * Waits until the workflow waits on nothing but a signal or an update: no workflow task, activity
 * or child pending, every timer fired or cancelled. From then on it cannot act on its own, so a
 * status read afterwards is what it holds until someone sends it something.
 */
export async function waitIdle(handle: WorkflowHandle, what: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    async () => {
      const { raw } = await handle.describe();
      if (raw.pendingWorkflowTask || (raw.pendingActivities?.length ?? 0) > 0 || (raw.pendingChildren?.length ?? 0) > 0) return false;
      const events = (await handle.fetchHistory()).events ?? [];
      const timers = new Set<string>();
      for (const e of events) {
        if (e.timerStartedEventAttributes) timers.add(e.timerStartedEventAttributes.timerId ?? '');
        const closed = e.timerFiredEventAttributes ?? e.timerCanceledEventAttributes;
        if (closed) timers.delete(closed.timerId ?? '');
      }
      return timers.size === 0 && !!events.at(-1)?.workflowTaskCompletedEventAttributes;
    },
    timeoutMs,
    `${what} (the workflow idle, waiting only for a signal or an update)`,
    200,
  );
}

/** A history in proto JSON (historyToJSON, the replay corpus), as far as these helpers read it. */
export interface HistoryJSON {
  events: { eventTime?: string; workflowTaskStartedEventAttributes?: unknown; markerRecordedEventAttributes?: { details?: Record<string, { payloads?: { data?: string }[] }> } }[];
}

/** The patch ids a history's markers record (history in proto JSON, as the replay corpus holds it). */
export function patchIds(history: HistoryJSON): string[] {
  const ids = new Set<string>();
  for (const e of history.events) {
    for (const d of Object.values(e.markerRecordedEventAttributes?.details ?? {})) {
      for (const p of d.payloads ?? []) {
        const v = JSON.parse(Buffer.from(p.data ?? '', 'base64').toString()) as { id?: string };
        if (v.id) ids.add(v.id);
      }
    }
  }
  return [...ids];
}

/**
 * A copy of `history` (proto JSON) with every workflow task started at the run's start: the TS SDK
 * 1.24 applies a pending task on the previous task's time when a query replays a run first, so a
 * workflow whose commands depend on its task times fails to replay this. Returns it and how many
 * tasks moved.
 */
export function withTaskTimesAtStart<H extends HistoryJSON>(history: H): { history: H; moved: number } {
  const copy = structuredClone(history);
  const start = copy.events[0]?.eventTime;
  let moved = 0;
  for (const e of copy.events) {
    if (e.workflowTaskStartedEventAttributes && e.eventTime !== start) {
      e.eventTime = start;
      moved++;
    }
  }
  return { history: copy, moved };
}

import type { WorkflowHandle } from '@temporalio/client';

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
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const { raw } = await handle.describe();
    const running = (raw.pendingActivities ?? []).some(
      (a) => a.activityType?.name === activityType && Number(a.state) === PENDING_ACTIVITY_STATE_STARTED,
    );
    if (running) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for activity ${activityType} to run`);
}

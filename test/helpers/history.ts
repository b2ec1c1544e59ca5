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

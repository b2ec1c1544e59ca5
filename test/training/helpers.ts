import type { WorkflowHandle } from '@temporalio/client';

export interface PendingActivity {
  type: string;
  attempt: number;
  worker: string;
  summary?: string;
  /** Decoded heartbeat details of a shard: { step, of, loss }. */
  heartbeat?: { step: number; of: number };
}

/** The workflow's in-flight activities, from DescribeWorkflowExecution. */
export async function pendingActivities(handle: WorkflowHandle): Promise<PendingActivity[]> {
  const desc = await handle.describe();
  return (desc.raw.pendingActivities ?? []).map((p) => {
    const payload = p.heartbeatDetails?.payloads?.[0]?.data;
    return {
      type: p.activityType?.name ?? '?',
      attempt: p.attempt ?? 1,
      worker: p.lastWorkerIdentity ?? '',
      heartbeat: payload ? (JSON.parse(Buffer.from(payload).toString('utf8')) as { step: number; of: number }) : undefined,
    };
  });
}

/** Every activity execution in the history: type, its input's round/shard, and the attempt that completed. */
export async function activityRuns(handle: WorkflowHandle): Promise<{ type: string; round?: number; shard?: number; attempt: number; worker?: string }[]> {
  const history = await handle.fetchHistory();
  const scheduled = new Map<string, { type: string; round?: number; shard?: number }>();
  const started = new Map<string, { attempt: number; worker?: string }>();
  const runs: { type: string; round?: number; shard?: number; attempt: number; worker?: string }[] = [];
  for (const e of history.events ?? []) {
    const id = String(e.eventId);
    const s = e.activityTaskScheduledEventAttributes;
    if (s) {
      const data = s.input?.payloads?.[0]?.data;
      const arg = data ? (JSON.parse(Buffer.from(data).toString('utf8')) as { round?: number; shard?: number }) : {};
      scheduled.set(id, { type: s.activityType?.name ?? '?', round: arg.round, shard: arg.shard });
    }
    const st = e.activityTaskStartedEventAttributes;
    if (st) started.set(id, { attempt: st.attempt ?? 1, worker: st.identity ?? undefined });
    const c = e.activityTaskCompletedEventAttributes;
    if (c) {
      const st2 = started.get(String(c.startedEventId));
      runs.push({ ...scheduled.get(String(c.scheduledEventId))!, attempt: st2?.attempt ?? 1, worker: st2?.worker });
    }
  }
  return runs;
}

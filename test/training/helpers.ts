import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { REPO_ROOT } from '../../activities/providers/local.ts';
import { waitFor } from '../helpers/fleet.ts';

export interface TrainerProcess {
  child: ChildProcess;
  /** The worker identity it reports (lastWorkerIdentity of its activities). */
  identity: string;
  output: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** The real trainer worker (workers/trainer.ts) as a child process, so tests can SIGKILL it. */
export async function spawnTrainer(address: string, taskQueue: string, env: NodeJS.ProcessEnv = {}): Promise<TrainerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'workers/trainer.ts')], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: address,
      TEMPORAL_NAMESPACE: 'default',
      DRYDOCK_TRAINER_TASK_QUEUE: taskQueue,
      DRYDOCK_METRICS_ADDRESS: '127.0.0.1:0',
      ...env,
    },
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  await waitFor(() => out.includes('trainer worker:') || child.exitCode !== null, 90_000, 'the trainer worker to start');
  if (child.exitCode !== null) throw new Error(`trainer worker exited: ${out}`);
  return {
    child,
    identity: /trainer worker: (\S+),/.exec(out)![1],
    output: () => out,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await done;
    },
  };
}

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

import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client, type ScheduleDescription, type ScheduleSummary } from '@temporalio/client';
import { parseBackupInput, type BackupInput } from '../../workflows/inputs/backup.ts';
import { parseVerifyInput, type VerifyBackupInput } from '../../workflows/inputs/verify.ts';

/** `backup` runs backups; `verify` restore-tests the newest backup of the name. */
export type ScheduleKind = 'backup' | 'verify';

/** Schedules are named `backup/<name>` (or `verify/<name>`); each run is that id plus `-<action time>` (Temporal adds it). */
export const backupScheduleId = (name: string, kind: ScheduleKind = 'backup') => `${kind}/${name}`;

export interface BackupScheduleOptions {
  /** The backup workflow's input; validated here with the workflow's own parser. */
  input: BackupInput;
  /** An interval such as '6h' or '30m' (give this or cron). */
  every?: string;
  /** A cron expression such as '0 3 * * *' (UTC). */
  cron?: string;
  taskQueue: string;
  /** Missed runs within this window (server down) are run late; older ones are skipped. */
  catchupWindow?: string;
  paused?: boolean;
  note?: string;
}

export const BACKUP_SCHEDULE_DEFAULTS = { catchupWindow: '1 hour' } as const;

/** Creates the schedule: overlap SKIP (a run is skipped while the previous one still runs). */
export async function createBackupSchedule(client: Client, opts: BackupScheduleOptions): Promise<string> {
  const input = parseBackupInput(opts.input);
  if (!opts.every === !opts.cron) throw new Error('give exactly one of every (e.g. 6h) or cron');
  const scheduleId = backupScheduleId(input.name);
  await client.schedule.create({
    scheduleId,
    spec: opts.every ? { intervals: [{ every: opts.every as `${number}h` }] } : { cronExpressions: [opts.cron!] },
    action: {
      type: 'startWorkflow',
      workflowType: 'backup',
      workflowId: scheduleId,
      taskQueue: opts.taskQueue,
      args: [opts.input],
      staticSummary: `scheduled backup ${input.name} → ${input.destination}`,
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: opts.catchupWindow ?? BACKUP_SCHEDULE_DEFAULTS.catchupWindow },
    state: { paused: opts.paused ?? false, note: opts.note ?? 'created by drydock backup schedule create' },
  });
  return scheduleId;
}

/** Creates the schedule that restore-tests the newest backup of a name (overlap SKIP). */
export async function createVerifySchedule(
  client: Client,
  opts: { input: VerifyBackupInput; every?: string; cron?: string; taskQueue: string; catchupWindow?: string; paused?: boolean },
): Promise<string> {
  const input = parseVerifyInput(opts.input);
  if (!opts.every === !opts.cron) throw new Error('give exactly one of every (e.g. 1d) or cron');
  const scheduleId = backupScheduleId(input.name, 'verify');
  await client.schedule.create({
    scheduleId,
    spec: opts.every ? { intervals: [{ every: opts.every as `${number}h` }] } : { cronExpressions: [opts.cron!] },
    action: { type: 'startWorkflow', workflowType: 'verifyBackup', workflowId: scheduleId, taskQueue: opts.taskQueue, args: [opts.input], staticSummary: `verify the newest ${input.name} backup by restore` },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: opts.catchupWindow ?? BACKUP_SCHEDULE_DEFAULTS.catchupWindow },
    state: { paused: opts.paused ?? false, note: 'created by drydock backup schedule create --verify-only' },
  });
  return scheduleId;
}

/** Backup and verification schedules, as `temporal schedule list` shows them (ids backup/… and verify/…). */
export async function listBackupSchedules(client: Client): Promise<ScheduleSummary[]> {
  const out: ScheduleSummary[] = [];
  for await (const s of client.schedule.list()) if (s.scheduleId.startsWith('backup/') || s.scheduleId.startsWith('verify/')) out.push(s);
  return out.sort((a, b) => (a.scheduleId < b.scheduleId ? -1 : 1));
}

export function describeBackupSchedule(client: Client, name: string, kind?: ScheduleKind): Promise<ScheduleDescription> {
  return client.schedule.getHandle(backupScheduleId(name, kind)).describe();
}

export function pauseBackupSchedule(client: Client, name: string, kind?: ScheduleKind, note = 'paused by drydock'): Promise<void> {
  return client.schedule.getHandle(backupScheduleId(name, kind)).pause(note);
}

export function unpauseBackupSchedule(client: Client, name: string, kind?: ScheduleKind, note = 'unpaused by drydock'): Promise<void> {
  return client.schedule.getHandle(backupScheduleId(name, kind)).unpause(note);
}

/** Runs the scheduled action now (overlap SKIP still applies). */
export function triggerBackupSchedule(client: Client, name: string, kind?: ScheduleKind): Promise<void> {
  return client.schedule.getHandle(backupScheduleId(name, kind)).trigger();
}

/** Runs what the schedule would have run between start and end (e.g. after an outage). */
export function backfillBackupSchedule(client: Client, name: string, start: Date, end: Date, kind?: ScheduleKind): Promise<void> {
  return client.schedule.getHandle(backupScheduleId(name, kind)).backfill({ start, end, overlap: ScheduleOverlapPolicy.BUFFER_ALL });
}

export function deleteBackupSchedule(client: Client, name: string, kind?: ScheduleKind): Promise<void> {
  return client.schedule.getHandle(backupScheduleId(name, kind)).delete();
}

/**
 * The dev stack's demo schedule: backs up the given directories to a file:// store every 6 hours.
 * Leaves an existing schedule as it is, so restarts keep the operator's pause or changes.
 */
export async function ensureDemoBackupSchedule(
  client: Client,
  opts: { taskQueue: string; destination: string; sources: { name: string; path: string }[]; every?: string; name?: string },
): Promise<{ scheduleId: string; created: boolean }> {
  const name = opts.name ?? 'demo';
  try {
    const scheduleId = await createBackupSchedule(client, {
      input: {
        name,
        sources: opts.sources.map((s) => ({ type: 'files', name: s.name, path: s.path })),
        destination: opts.destination,
        retention: { keepLast: 7 },
      },
      every: opts.every ?? '6h',
      taskQueue: opts.taskQueue,
      note: 'demo schedule registered by npm run dev',
    });
    return { scheduleId, created: true };
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) return { scheduleId: backupScheduleId(name), created: false };
    throw err;
  }
}

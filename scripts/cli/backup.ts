import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ScheduleAlreadyRunning, ScheduleNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { InvalidArgumentError, type Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { listBackups } from '../../activities/backup/catalog.ts';
import { openStore, StoreUrlError } from '../../activities/stores/index.ts';
import type { BackupResult, BackupStatus } from '../../workflows/backup.ts';
import { INVALID_ARGUMENT } from '../../workflows/common/errors.ts';
import { backupWorkflowId, restoreWorkflowId, verifyWorkflowId } from '../../workflows/common/ids.ts';
import { parseBackupInput, type BackupInput, type BackupSourceInput } from '../../workflows/inputs/backup.ts';
import { parseRestoreInput, type RestoreInput } from '../../workflows/inputs/restore.ts';
import type { RestoreResult } from '../../workflows/restore.ts';
import { parseVerifyInput, type VerifyBackupInput } from '../../workflows/inputs/verify.ts';
import type { VerifyBackupResult } from '../../workflows/verifyBackup.ts';
import {
  backfillBackupSchedule,
  backupScheduleId,
  createBackupSchedule,
  createVerifySchedule,
  deleteBackupSchedule,
  listBackupSchedules,
  pauseBackupSchedule,
  triggerBackupSchedule,
  unpauseBackupSchedule,
} from '../schedules/backup.ts';
import { createProgress } from './progress.ts';
import { badInput, globals, output, withClient, workflowFailure, type GlobalOptions } from './runtime.ts';

const POLL_MS = 1_000;

/** Runs the workflow's own input parser, so the CLI refuses exactly what the workflow would (exit 2). */
function checked<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof ApplicationFailure && err.type === INVALID_ARGUMENT) throw badInput(err.message);
    throw err;
  }
}

function readSpec(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw badInput(`--spec: cannot read ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw badInput(`--spec: ${file} is not valid YAML or JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw badInput(`--spec: ${file} must hold one object (the backup input)`);
  return doc as Record<string, unknown>;
}

interface SpecFlags {
  spec?: string;
  name?: string;
  source?: string[];
  dest?: string;
  keepLast?: number;
  maxAgeDays?: number;
  verify?: boolean;
}

/** The backup input from --spec, with flags overriding its fields. */
function backupInput(flags: SpecFlags): BackupInput {
  const input: Record<string, unknown> = flags.spec ? readSpec(flags.spec) : {};
  if (flags.name) input.name = flags.name;
  if (flags.dest) input.destination = flags.dest;
  if (flags.source?.length) {
    input.sources = flags.source.map((s): BackupSourceInput => {
      const eq = s.indexOf('=');
      if (eq <= 0) throw badInput(`--source: '${s}' must be name=/absolute/path`);
      return { type: 'files', name: s.slice(0, eq), path: s.slice(eq + 1) };
    });
  }
  if (flags.keepLast !== undefined || flags.maxAgeDays !== undefined) {
    input.retention = { ...(input.retention as object), ...(flags.keepLast !== undefined ? { keepLast: flags.keepLast } : {}), ...(flags.maxAgeDays !== undefined ? { maxAgeDays: flags.maxAgeDays } : {}) };
  }
  if (flags.verify === false) input.verify = false;
  checked(() => parseBackupInput(input));
  return input as unknown as BackupInput;
}

function positive(v: string): number {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError('expected a number above 0');
  return n;
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

function date(v: string): Date {
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new InvalidArgumentError(`'${v}' is not a date (use ISO 8601, e.g. 2026-11-23T00:00:00Z)`);
  return d;
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function age(iso: string): string {
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  return s < 3600 ? `${Math.round(s / 60)}m` : s < 86400 ? `${(s / 3600).toFixed(1)}h` : `${(s / 86400).toFixed(1)}d`;
}

/** Polls the status query while the workflow runs; returns its result or throws the CLI's failure. */
async function watch<T>(handle: WorkflowHandle, label: (s: BackupStatus) => string): Promise<T> {
  const progress = createProgress(handle.workflowId, 'sources');
  const result = handle.result().then(
    (value: T) => ({ ok: true as const, value }),
    (err: unknown) => ({ ok: false as const, err }),
  );
  let settled = false;
  void result.then(() => (settled = true));
  try {
    while (!settled) {
      try {
        const s = await handle.query<BackupStatus>('status');
        const sources = s.sources ?? [];
        progress.update(sources.filter((x) => x.state === 'done' || x.state === 'failed').length, sources.length || 1, label(s));
      } catch {
        if (!settled) progress.update(0, 1, 'waiting for a drydock worker to pick it up');
      }
      await Promise.race([sleep(POLL_MS), result]);
    }
    const r = await result;
    if (!r.ok) throw workflowFailure(r.err, handle.workflowId);
    return r.value;
  } finally {
    progress.stop();
  }
}

async function runBackup(client: Client, o: GlobalOptions, input: BackupInput, wait: boolean): Promise<void> {
  const workflowId = backupWorkflowId(input.name, new Date());
  const handle = await client.workflow.start('backup', {
    taskQueue: o.taskQueue,
    workflowId,
    args: [input],
    staticSummary: `backup ${input.name} → ${input.destination}`,
  });
  if (!wait) {
    output(o, { workflowId, runId: handle.firstExecutionRunId, status: 'RUNNING' }, () => `started ${workflowId}`);
    return;
  }
  const r = await watch<BackupResult>(handle, (s) => `${s.phase} (${s.step})`);
  output(o, { workflowId, status: 'COMPLETED', result: r }, () =>
    [
      `${r.backupId}: ${r.phase}, ${r.files} files, ${bytes(r.bytes)} (${bytes(r.copiedBytes)} copied), ${r.snapshots} snapshot(s)`,
      r.verification ? `  verified by restore: ${r.verification.ok ? 'ok' : 'FAILED'} (${r.verification.files} files)` : '  not verified',
      ...(r.prune?.removed.length ? [`  pruned: ${r.prune.removed.map((x) => `${x.backupId} (${x.reason})`).join(', ')}`] : []),
    ].join('\n'),
  );
}

export function registerBackupCommands(program: Command): void {
  const backup = program.command('backup').description('backups, restores and restore tests (workflows backup, restore, verifyBackup) and their Temporal Schedules');
  const specOptions = (c: Command) =>
    c
      .option('--spec <file>', 'the backup input as YAML or JSON (name, sources, destination, retention, hooks)')
      .option('--name <name>', 'backup name (overrides the spec)')
      .option('--source <name=path>', 'a directory to back up; repeat for more (overrides the spec sources)', collect)
      .option('--dest <url>', 'file:///dir, /dir or s3://bucket/prefix (overrides the spec)')
      .option('--keep-last <n>', 'retention: keep this many newest backups', (v) => Math.round(positive(v)))
      .option('--max-age-days <days>', 'retention: delete backups older than this', positive)
      .option('--no-verify', 'skip the restore test after the copy (retention then does not run)');

  specOptions(backup.command('run').description('run a backup now (id backup/<name>/<time>)'))
    .option('--wait', 'wait for the end and show progress; exit 1 if the backup fails')
    .action(async (opts: SpecFlags & { wait?: boolean }, cmd: Command) => {
      const o = globals(cmd);
      const input = backupInput(opts);
      await withClient(o, (client) => runBackup(client, o, input, Boolean(opts.wait)));
    });

  backup
    .command('list')
    .description('with --store: the backups in a store with phase, verification, size and age; without: backup workflows known to Temporal')
    .option('--store <url>', 'file:///dir, /dir or s3://bucket/prefix (S3 credentials from the AWS environment)')
    .option('--name <name>', 'only backups of this name')
    .option('--limit <n>', 'at most this many rows', (v) => Math.round(positive(v)), 50)
    .action(async (opts: { store?: string; name?: string; limit: number }, cmd: Command) => {
      const o = globals(cmd);
      if (opts.store) {
        let store;
        try {
          store = openStore(opts.store);
        } catch (err) {
          if (err instanceof StoreUrlError) throw badInput(`--store: ${err.message}`);
          throw err;
        }
        const rows = (await listBackups(store, opts.name)).slice(0, opts.limit);
        output(o, { store: store.uri, backups: rows }, () =>
          rows.length === 0
            ? `no backups in ${store.uri}`
            : [
                `${'BACKUP'.padEnd(40)} ${'PHASE'.padEnd(16)} ${'VERIFIED'.padEnd(9)} ${'FILES'.padStart(7)} ${'SIZE'.padStart(10)} ${'SNAPS'.padStart(5)}  AGE`,
                ...rows.map(
                  (b) =>
                    `${b.backupId.padEnd(40)} ${b.phase.padEnd(16)} ${(b.verified === undefined ? '-' : b.verified ? 'yes' : 'NO').padEnd(9)} ${String(b.files).padStart(7)} ${bytes(b.bytes).padStart(10)} ${String(b.snapshots).padStart(5)}  ${age(b.createdAt)}`,
                ),
              ].join('\n'),
        );
        return;
      }
      const rows = await withClient(o, async (client) => {
        const out = [];
        for await (const wf of client.workflow.list({ query: `WorkflowType = 'backup'` })) {
          if (opts.name && !wf.workflowId.startsWith(`backup/${opts.name}/`) && !wf.workflowId.startsWith(`backup/${opts.name}-`)) continue;
          out.push({ workflowId: wf.workflowId, status: wf.status.name, phase: wf.searchAttributes.DrydockBackupPhase?.[0] as string | undefined, startTime: wf.startTime.toISOString() });
          if (out.length >= opts.limit) break;
        }
        return out;
      });
      output(o, { backups: rows }, () =>
        rows.length === 0
          ? 'no backup workflows recorded'
          : rows.map((r) => `${r.workflowId.padEnd(48)} ${r.status.padEnd(11)} ${(r.phase ?? '').padEnd(16)} ${age(r.startTime)}`).join('\n'),
      );
    });

  backup
    .command('restore')
    .description('restore a backup into an empty directory (id restore/<backupId>); every file is checked against its sha256')
    .requiredOption('--store <url>', 'the store the backup was written to')
    .requiredOption('--backup <id>', '<name>/<time>, as backup list prints it')
    .requiredOption('--to <dir>', 'absolute path of the destination directory')
    .option('--source <name>', 'only this source, directly into --to')
    .option('--overwrite', 'allow a non-empty destination (files of the backup are replaced)')
    .option('--wait', 'wait for the end; exit 1 if the restore fails')
    .action(async (opts: { store: string; backup: string; to: string; source?: string; overwrite?: boolean; wait?: boolean }, cmd: Command) => {
      const o = globals(cmd);
      const input: RestoreInput = { backupId: opts.backup, store: opts.store, destination: opts.to, ...(opts.source ? { source: opts.source } : {}), ...(opts.overwrite ? { overwrite: true } : {}) };
      checked(() => parseRestoreInput(input));
      await withClient(o, async (client) => {
        const workflowId = restoreWorkflowId(input.backupId);
        const handle = await client.workflow.start('restore', { taskQueue: o.taskQueue, workflowId, args: [input], staticSummary: `restore ${input.backupId} → ${input.destination}` });
        if (!opts.wait) return output(o, { workflowId, status: 'RUNNING' }, () => `started ${workflowId}`);
        const r = await watch<RestoreResult>(handle, (s) => `${s.phase} (${s.step})`);
        output(o, { workflowId, status: 'COMPLETED', result: r }, () => `${workflowId}: ${r.files} files, ${bytes(r.bytes)} restored into ${r.destination}, all checksums match`);
      });
    });

  backup
    .command('verify')
    .description('restore-test a backup into scratch and compare every checksum (workflow verifyBackup); exit 1 if any file is bad')
    .requiredOption('--store <url>', 'the store the backups were written to')
    .requiredOption('--name <name>', 'verify the newest complete backup of this name')
    .option('--backup <id>', 'verify exactly this backup (<name>/<time>) instead')
    .option('--wait', 'wait for the end; exit 1 if verification fails')
    .action(async (opts: { store: string; name: string; backup?: string; wait?: boolean }, cmd: Command) => {
      const o = globals(cmd);
      const input: VerifyBackupInput = { store: opts.store, name: opts.name, ...(opts.backup ? { backupId: opts.backup } : {}) };
      checked(() => parseVerifyInput(input));
      await withClient(o, async (client) => {
        const workflowId = verifyWorkflowId(input.name, new Date());
        const handle = await client.workflow.start('verifyBackup', { taskQueue: o.taskQueue, workflowId, args: [input], staticSummary: `verify ${input.backupId ?? `newest ${input.name}`} by restore` });
        if (!opts.wait) return output(o, { workflowId, status: 'RUNNING' }, () => `started ${workflowId}`);
        let r: VerifyBackupResult;
        try {
          r = await handle.result();
        } catch (err) {
          throw workflowFailure(err, workflowId);
        }
        output(o, { workflowId, status: 'COMPLETED', result: r }, () => `${r.backupId}: all ${r.files} files (${bytes(r.bytes)}) restored and match their sha256`);
      });
    });

  const schedule = backup.command('schedule').description('the Temporal Schedules that run backups (id backup/<name>; overlap SKIP)');
  specOptions(schedule.command('create').description('create a schedule: --every 6h or --cron "0 3 * * *", with the backup from --spec and flags'))
    .option('--every <interval>', 'e.g. 6h, 30m, 1d')
    .option('--cron <expr>', 'cron expression (UTC)')
    .option('--catchup-window <duration>', 'run missed backups up to this late (default 1 hour)')
    .option('--paused', 'create it paused')
    .option('--verify-only', 'instead: a schedule (verify/<name>) that restore-tests the newest backup of --name in the store --dest')
    .action(async (opts: SpecFlags & { every?: string; cron?: string; catchupWindow?: string; paused?: boolean; verifyOnly?: boolean }, cmd: Command) => {
      const o = globals(cmd);
      if (!opts.every === !opts.cron) throw badInput('give exactly one of --every (e.g. 6h) or --cron');
      if (opts.every && !/^\d+(\.\d+)?\s*(s|m|h|d)$/.test(opts.every)) throw badInput(`--every: '${opts.every}' is not an interval like 30m, 6h or 1d`);
      if (opts.verifyOnly) {
        const v: VerifyBackupInput = { store: opts.dest ?? '', name: opts.name ?? '' };
        checked(() => parseVerifyInput(v));
        await withClient(o, async (client) => {
          try {
            const id = await createVerifySchedule(client, { input: v, every: opts.every, cron: opts.cron, taskQueue: o.taskQueue, catchupWindow: opts.catchupWindow, paused: opts.paused });
            output(o, { scheduleId: id, status: 'CREATED' }, () => `created schedule ${id}`);
          } catch (err) {
            if (err instanceof ScheduleAlreadyRunning) throw badInput(`schedule ${backupScheduleId(v.name, 'verify')} exists already`);
            throw err;
          }
        });
        return;
      }
      const input = backupInput(opts);
      await withClient(o, async (client) => {
        try {
          const id = await createBackupSchedule(client, { input, every: opts.every, cron: opts.cron, taskQueue: o.taskQueue, catchupWindow: opts.catchupWindow, paused: opts.paused });
          output(o, { scheduleId: id, status: 'CREATED' }, () => `created schedule ${id} (${opts.every ? `every ${opts.every}` : `cron ${opts.cron}`}); see it with 'temporal schedule list'`);
        } catch (err) {
          if (err instanceof ScheduleAlreadyRunning) throw badInput(`schedule ${backupScheduleId(input.name)} exists already; delete it first or pick another --name`);
          throw err;
        }
      });
    });

  schedule
    .command('list')
    .description('backup schedules with their next run')
    .action(async (_opts: unknown, cmd: Command) => {
      const o = globals(cmd);
      const rows = await withClient(o, async (client) =>
        (await listBackupSchedules(client)).map((s) => ({
          scheduleId: s.scheduleId,
          paused: s.state.paused,
          nextRun: s.info.nextActionTimes[0]?.toISOString(),
          lastRun: s.info.recentActions.at(-1)?.takenAt.toISOString(),
        })),
      );
      output(o, { schedules: rows }, () =>
        rows.length === 0 ? 'no backup schedules' : rows.map((r) => `${r.scheduleId.padEnd(32)} ${r.paused ? 'PAUSED ' : 'active '} next ${r.nextRun ?? '-'}  last ${r.lastRun ?? '-'}`).join('\n'),
      );
    });

  const onSchedule = (verb: string, description: string) =>
    schedule
      .command(verb)
      .description(description)
      .argument('<name>', 'backup name (the schedule is backup/<name>)')
      .option('--verify', 'the verification schedule verify/<name> instead');
  type Kind = 'backup' | 'verify';
  const act = (c: Command, verb: string, fn: (client: Client, name: string, kind: Kind, opts: Record<string, unknown>) => Promise<void>) =>
    c.action(async (name: string, opts: Record<string, unknown>, cmd: Command) => {
      const o = globals(cmd);
      const kind: Kind = opts.verify ? 'verify' : 'backup';
      const id = backupScheduleId(name, kind);
      await withClient(o, async (client) => {
        try {
          await fn(client, name, kind, opts);
        } catch (err) {
          if (err instanceof ScheduleNotFoundError) throw badInput(`no schedule ${id}; 'drydock backup schedule list' shows them`);
          throw err;
        }
      });
      output(o, { scheduleId: id, status: verb.toUpperCase() }, () => `${verb}: ${id}`);
    });
  act(onSchedule('pause', 'pause a schedule'), 'pause', (c, n, k) => pauseBackupSchedule(c, n, k));
  act(onSchedule('unpause', 'unpause a schedule'), 'unpause', (c, n, k) => unpauseBackupSchedule(c, n, k));
  act(onSchedule('trigger', 'run the scheduled action now'), 'trigger', (c, n, k) => triggerBackupSchedule(c, n, k));
  act(onSchedule('delete', 'delete a schedule (backups already taken stay)'), 'delete', (c, n, k) => deleteBackupSchedule(c, n, k));
  act(
    onSchedule('backfill', 'run what the schedule would have run in a past window')
      .requiredOption('--from <time>', 'window start (ISO 8601)', date)
      .requiredOption('--to <time>', 'window end (ISO 8601)', date),
    'backfill',
    (c, n, k, opts) => backfillBackupSchedule(c, n, opts.from as Date, opts.to as Date, k),
  );
}

import { ScheduleAlreadyRunning, ScheduleNotFoundError, type Client } from '@temporalio/client';
import type { Command } from 'commander';
import { parseVerifyInput, type VerifyBackupInput } from '../../../workflows/inputs/verify.ts';
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
} from '../../schedules/backup.ts';
import { isoDate } from '../flags.ts';
import { badInput, checkedInput, globals, output, withClient } from '../runtime.ts';
import { backupInput, specOptions, type SpecFlags } from './input.ts';

/** `drydock backup schedule …`: the Temporal Schedules that run backups and restore tests. */
export function registerBackupScheduleCommands(backup: Command): void {
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
        checkedInput(() => parseVerifyInput(v));
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
      .requiredOption('--from <time>', 'window start (ISO 8601)', isoDate)
      .requiredOption('--to <time>', 'window end (ISO 8601)', isoDate),
    'backfill',
    (c, n, k, opts) => backfillBackupSchedule(c, n, opts.from as Date, opts.to as Date, k),
  );
}

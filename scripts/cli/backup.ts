import type { WorkflowHandle } from '@temporalio/client';
import type { Command } from 'commander';
import { listBackups } from '../../activities/backup/catalog.ts';
import { openStore, StoreUrlError } from '../../activities/stores/index.ts';
import type { BackupResult, BackupStatus } from '../../workflows/backup.ts';
import { parseRestoreInput, type RestoreInput } from '../../workflows/inputs/restore.ts';
import { parseVerifyInput, type VerifyBackupInput } from '../../workflows/inputs/verify.ts';
import { backupWorkflowId, restoreWorkflowId, verifyWorkflowId } from '../../workflows/common/ids.ts';
import type { RestoreResult } from '../../workflows/restore.ts';
import type { VerifyBackupResult } from '../../workflows/verifyBackup.ts';
import { backupInput, specOptions, type SpecFlags } from './backup/input.ts';
import { backupText, bytes, storeTable, workflowTable, type BackupWorkflowRow } from './backup/render.ts';
import { registerBackupScheduleCommands } from './backup/schedule.ts';
import { positiveNumber } from './flags.ts';
import { badInput, checkedInput, globals, output, withClient } from './runtime.ts';
import { runWorkflow } from './start.ts';
import { frameView, watchWorkflow, workflowResult } from './watch.ts';

/** `drydock backup …`: backups, restores and restore tests (workflows backup, restore, verifyBackup); schedules in backup/schedule.ts. */

/** Follows a backup or restore: a bar of its sources, labelled with its phase and step. */
function watchBackup<R>(handle: WorkflowHandle): Promise<R> {
  const view = frameView<BackupStatus, R>(
    'sources',
    () => handle.query<BackupStatus>('status'),
    (s) => {
      const sources = s.sources ?? [];
      return { done: sources.filter((x) => x.state === 'done' || x.state === 'failed').length, total: sources.length || 1, label: `${s.phase} (${s.step})` };
    },
  );
  return watchWorkflow(handle, view);
}

export function registerBackupCommands(program: Command): void {
  const backup = program.command('backup').description('backups, restores and restore tests (workflows backup, restore, verifyBackup) and their Temporal Schedules');
  specOptions(backup.command('run').description('run a backup now (id backup/<name>/<time>)'))
    .option('--wait', 'wait for the end and show progress; exit 1 if the backup fails')
    .action(async (opts: SpecFlags & { wait?: boolean }, cmd: Command) => {
      const o = globals(cmd);
      const input = backupInput(opts);
      const workflowId = backupWorkflowId(input.name, new Date());
      await runWorkflow(
        o,
        { type: 'backup', workflowId, input, summary: `backup ${input.name} → ${input.destination}` },
        { startedText: () => `started ${workflowId}`, wait: opts.wait ? watchBackup<BackupResult> : undefined, resultText: backupText },
      );
    });

  backup
    .command('list')
    .description('with --store: the backups in a store with phase, verification, size and age; without: backup workflows known to Temporal')
    .option('--store <url>', 'file:///dir, /dir or s3://bucket/prefix (S3 credentials from the AWS environment)')
    .option('--name <name>', 'only backups of this name')
    .option('--limit <n>', 'at most this many rows', (v) => Math.round(positiveNumber(v)), 50)
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
        output(o, { store: store.uri, backups: rows }, () => storeTable(store.uri, rows));
        return;
      }
      const rows = await withClient(o, async (client) => {
        const out: BackupWorkflowRow[] = [];
        for await (const wf of client.workflow.list({ query: `WorkflowType = 'backup'` })) {
          if (opts.name && !wf.workflowId.startsWith(`backup/${opts.name}/`) && !wf.workflowId.startsWith(`backup/${opts.name}-`)) continue;
          out.push({ workflowId: wf.workflowId, status: wf.status.name, phase: wf.searchAttributes.DrydockBackupPhase?.[0] as string | undefined, startTime: wf.startTime.toISOString() });
          if (out.length >= opts.limit) break;
        }
        return out;
      });
      output(o, { backups: rows }, () => workflowTable(rows));
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
      checkedInput(() => parseRestoreInput(input));
      const workflowId = restoreWorkflowId(input.backupId);
      await runWorkflow(
        o,
        {
          type: 'restore',
          workflowId,
          input,
          summary: `restore ${input.backupId} → ${input.destination}`,
          alreadyStarted: `${input.backupId} is being restored already (${workflowId}); wait for that restore to end`,
        },
        {
          startedText: () => `started ${workflowId}`,
          wait: opts.wait ? watchBackup<RestoreResult> : undefined,
          resultText: (r) => `${workflowId}: ${r.files} files, ${bytes(r.bytes)} restored into ${r.destination}, all checksums match`,
        },
      );
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
      checkedInput(() => parseVerifyInput(input));
      const workflowId = verifyWorkflowId(input.name, new Date());
      await runWorkflow(
        o,
        { type: 'verifyBackup', workflowId, input, summary: `verify ${input.backupId ?? `newest ${input.name}`} by restore` },
        {
          startedText: () => `started ${workflowId}`,
          // verifyBackup has no status query: nothing to draw while it runs.
          wait: opts.wait ? workflowResult<VerifyBackupResult> : undefined,
          resultText: (r) => `${r.backupId}: all ${r.files} files (${bytes(r.bytes)}) restored and match their sha256`,
        },
      );
    });
  registerBackupScheduleCommands(backup);
}

import { ActivityFailure, ApplicationFailure, defineQuery, proxyActivities, setCurrentDetails, setHandler, setWorkflowOptions, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { BackupActivities, SnapshotRestore } from '../activities/backup/index.ts';
import { long, short } from './backup.ts';
import { invalidArgument } from './common/errors.ts';
import { restoreWorkflowId } from './common/ids.ts';
import { DRYDOCK_BACKUP_PHASE, type BackupPhase } from './inputs/backup.ts';
import { parseRestoreInput, type RestoreConfig, type RestoreInput } from './inputs/restore.ts';

export interface RestoreStatus {
  phase: BackupPhase;
  step: 'validating' | 'checking' | 'restoring' | 'done';
  files?: number;
  bytes?: number;
  error?: string;
}

export interface RestoreResult {
  backupId: string;
  destination: string;
  files: number;
  bytes: number;
  sources: string[];
  /** Snapshot sources: the disk made from each (`snapshots: "disk"`), where a local one was copied, or how to make a disk from a cloud one. */
  snapshots: SnapshotRestore[];
  /** Ids of the disks made from snapshot sources (`snapshots: "disk"`), one per snapshot. */
  disks: string[];
}

export const restoreStatusQuery = defineQuery<RestoreStatus>('status');

// restore finishes: pinned, so a run finishes on the code that started it.
setWorkflowOptions({ versioningBehavior: 'PINNED' }, restore);

/** Checks the manifest and the destination once, then writes every file, each verified against its sha256. */
export async function restore(rawInput: RestoreInput): Promise<RestoreResult> {
  const status: RestoreStatus = { phase: 'InProgress', step: 'validating' };
  setHandler(restoreStatusQuery, () => status);
  const setPhase = (phase: BackupPhase) => {
    status.phase = phase;
    upsertSearchAttributes([{ key: DRYDOCK_BACKUP_PHASE, value: phase }]);
    setCurrentDetails(`**restore** — **${phase}** (${status.step})${status.error ? `\nerror: ${status.error}` : ''}`);
  };
  setPhase('InProgress');
  try {
    const input: RestoreConfig = parseRestoreInput(rawInput);
    const expected = restoreWorkflowId(input.backupId);
    if (workflowInfo().workflowId !== expected) {
      throw invalidArgument('workflowId', `must be '${expected}' so that one backup is not restored twice at once`);
    }
    const acts = proxyActivities<BackupActivities>(short);
    const slow = proxyActivities<BackupActivities>(long);
    const req = { store: input.store, backupId: input.backupId, destination: input.destination, source: input.source, overwrite: input.overwrite, snapshots: input.snapshots };
    status.step = 'checking';
    const plan = await acts.prepareRestore.executeWithOptions({ summary: `check ${input.backupId} and ${input.destination}` }, [req]);
    Object.assign(status, { files: plan.files, bytes: plan.bytes, step: 'restoring' });
    setPhase('InProgress');
    const out = await slow.restoreFiles.executeWithOptions({ summary: `restore ${plan.files} files into ${input.destination}` }, [req]);
    const snapshots = plan.snapshots
      ? await slow.restoreSnapshots.executeWithOptions({ summary: `restore ${plan.snapshots} snapshot(s) of ${input.backupId}${input.snapshots === 'disk' ? ' to new disks' : ''}` }, [req])
      : [];
    status.step = 'done';
    setPhase('Completed');
    return { backupId: input.backupId, destination: input.destination, files: out.files, bytes: out.bytes, sources: plan.sources, snapshots, disks: snapshots.flatMap((s) => (s.diskId ? [s.diskId] : [])) };
  } catch (err) {
    const cause = err instanceof ActivityFailure ? err.cause : err;
    status.error = (cause as Error).message;
    setPhase('Failed');
    throw cause instanceof ApplicationFailure ? cause : err;
  }
}

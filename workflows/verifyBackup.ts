import { ActivityFailure, ApplicationFailure, proxyActivities, setCurrentDetails, setWorkflowOptions, upsertSearchAttributes } from '@temporalio/workflow';
import type { BackupActivities, VerifyResult } from '../activities/backup/index.ts';
import { long, short } from './backup.ts';
import { DRYDOCK_BACKUP_PHASE, type BackupPhase } from './inputs/backup.ts';
import { parseVerifyInput, type VerifyBackupInput } from './inputs/verify.ts';

export interface VerifyBackupResult extends VerifyResult {
  backupId: string;
  store: string;
}

// verifyBackup finishes: pinned, so a run finishes on the code that started it.
setWorkflowOptions({ versioningBehavior: 'PINNED' }, verifyBackup);

/**
 * Restores a backup (the newest of a name, or a given one) into scratch and compares every
 * checksum; fails with VerificationFailed naming the bad files. Run it on a schedule so that
 * corruption in the store is found before a restore needs the backup.
 */
export async function verifyBackup(rawInput: VerifyBackupInput): Promise<VerifyBackupResult> {
  const setPhase = (phase: BackupPhase, note: string) => {
    upsertSearchAttributes([{ key: DRYDOCK_BACKUP_PHASE, value: phase }]);
    setCurrentDetails(`**verifyBackup** — **${phase}**: ${note}`);
  };
  setPhase('InProgress', 'validating');
  try {
    const input = parseVerifyInput(rawInput);
    const acts = proxyActivities<BackupActivities>(short);
    const slow = proxyActivities<BackupActivities>(long);
    const backupId = input.backupId ?? (await acts.latestBackup.executeWithOptions({ summary: `find the newest backup of ${input.name}` }, [{ store: input.store, name: input.name }]));
    setPhase('InProgress', `restoring ${backupId} into scratch`);
    const result = await slow.verifyBackup.executeWithOptions({ summary: `restore ${backupId} into scratch and compare checksums` }, [{ store: input.store, backupId }]);
    if (!result.ok) {
      throw ApplicationFailure.nonRetryable(
        `verification of ${backupId} found ${result.problems.length} bad object(s) in ${input.store}: ` +
          result.problems.slice(0, 10).map((x) => `${x.source}/${x.path} (${x.problem})`).join(', '),
        'VerificationFailed',
      );
    }
    setPhase('Completed', `${backupId}: ${result.files} files match`);
    return { ...result, backupId, store: input.store };
  } catch (err) {
    const cause = err instanceof ActivityFailure ? err.cause : err;
    setPhase('Failed', (cause as Error).message);
    throw cause instanceof ApplicationFailure ? cause : err;
  }
}

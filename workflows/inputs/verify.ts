import { invalidArgument } from '../common/errors.ts';
import { BACKUP_STAMP } from '../common/ids.ts';
import { parseStore } from './backup.ts';
import { POOL_NAME, POOL_NAME_HELP, rejectUnknown, requireObject, requireString } from './validate.ts';

/** Input of the `verifyBackup` workflow (public API): restore-test a backup on its own schedule. */
export interface VerifyBackupInput {
  /** The store the backups were written to. */
  store: string;
  /** Verify the newest complete backup of this name… */
  name: string;
  /** …or exactly this one (`<name>/<time>`). */
  backupId?: string;
}

export function parseVerifyInput(raw: unknown): Required<Omit<VerifyBackupInput, 'backupId'>> & { backupId?: string } {
  const obj = requireObject(raw, 'input');
  rejectUnknown(obj, ['store', 'name', 'backupId']);
  const name = requireString(obj, 'name', POOL_NAME, POOL_NAME_HELP);
  const store = parseStore(obj, 'store');
  if (obj.backupId === undefined) return { store, name };
  const backupId = requireString(obj, 'backupId');
  const [n, stamp, ...rest] = backupId.split('/');
  if (n !== name || !BACKUP_STAMP.test(stamp ?? '') || rest.length) {
    throw invalidArgument('backupId', `'${backupId}' is not a backup of '${name}': expected ${name}/<YYYYMMDDTHHMMSSZ>`);
  }
  return { store, name, backupId };
}

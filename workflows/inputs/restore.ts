import { invalidArgument } from '../common/errors.ts';
import { BACKUP_STAMP } from '../common/ids.ts';
import { parseAbsolutePath, parseStore } from './backup.ts';
import { optionalBoolean, POOL_NAME, rejectUnknown, requireObject, requireString } from './validate.ts';

/** Input of the `restore` workflow (public API). */
export interface RestoreInput {
  /** `<name>/<time>`, as `drydock backup list` shows it. */
  backupId: string;
  /** The store the backup was written to (the backup's destination). */
  store: string;
  /** Directory to restore into; must be empty unless overwrite. */
  destination: string;
  /** Restore only this source, directly into destination (default: every source into destination/<source>). */
  source?: string;
  overwrite?: boolean;
  /**
   * What to do with snapshot sources: `directory` (default) copies local snapshots into destination
   * and names cloud ones; `disk` makes a new disk (EBS volume, GCE disk, local data directory) from each.
   */
  snapshots?: SnapshotRestoreMode;
}

export type SnapshotRestoreMode = 'directory' | 'disk';
export const SNAPSHOT_RESTORE_MODES: readonly SnapshotRestoreMode[] = ['directory', 'disk'];

export type RestoreConfig = Required<Omit<RestoreInput, 'source'>> & { source?: string };

export const RESTORE_DEFAULTS = { overwrite: false, snapshots: 'directory' } as const;

export function parseRestoreInput(raw: unknown): RestoreConfig {
  const obj = requireObject(raw, 'input');
  rejectUnknown(obj, ['backupId', 'store', 'destination', 'source', 'overwrite', 'snapshots']);
  const backupId = requireString(obj, 'backupId');
  const [name, stamp, ...rest] = backupId.split('/');
  if (rest.length || !POOL_NAME.test(name ?? '') || !BACKUP_STAMP.test(stamp ?? '')) {
    throw invalidArgument('backupId', `'${backupId}' is not a backup id: expected <name>/<YYYYMMDDTHHMMSSZ> as 'drydock backup list' prints it`);
  }
  const source = obj.source === undefined ? undefined : requireString(obj, 'source');
  const snapshots = obj.snapshots ?? RESTORE_DEFAULTS.snapshots;
  if (typeof snapshots !== 'string' || !(SNAPSHOT_RESTORE_MODES as readonly string[]).includes(snapshots)) {
    throw invalidArgument('snapshots', `expected one of ${SNAPSHOT_RESTORE_MODES.map((m) => `'${m}'`).join(', ')}, got ${JSON.stringify(snapshots)}`);
  }
  return {
    backupId,
    store: parseStore(obj, 'store'),
    destination: parseAbsolutePath(obj, 'destination'),
    ...(source ? { source } : {}),
    overwrite: optionalBoolean(obj, 'overwrite', RESTORE_DEFAULTS.overwrite),
    snapshots: snapshots as SnapshotRestoreMode,
  };
}

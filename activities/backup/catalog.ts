import type { ObjectStore } from '../stores/types.ts';
import { manifestKey, readJson, verificationKey, type Manifest, type Verification } from './layout.ts';

/** One backup as the store shows it. `Incomplete`: started, no manifest (running, or died). */
export interface BackupSummary {
  backupId: string;
  name: string;
  createdAt: string;
  phase: 'Completed' | 'PartiallyFailed' | 'Incomplete';
  /** undefined: never verified. */
  verified?: boolean;
  files: number;
  bytes: number;
  snapshots: number;
}

/** `20261123T063000Z` → Date. */
export function stampToDate(stamp: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(stamp);
  if (!m) return new Date(NaN);
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

/** Every backup in the store (of one name, if given), newest first. */
export async function listBackups(store: ObjectStore, name?: string): Promise<BackupSummary[]> {
  const keys = await store.list(name ? `backups/${name}/` : 'backups/');
  const ids = new Set<string>();
  for (const k of keys) {
    const [, n, stamp] = k.split('/');
    if (n && stamp) ids.add(`${n}/${stamp}`);
  }
  const out: BackupSummary[] = [];
  for (const backupId of ids) {
    const [n, stamp] = backupId.split('/');
    const createdAt = stampToDate(stamp).toISOString();
    const m = keys.includes(manifestKey(backupId)) ? await readJson<Manifest>(store, manifestKey(backupId)) : undefined;
    if (!m) {
      out.push({ backupId, name: n, createdAt, phase: 'Incomplete', files: 0, bytes: 0, snapshots: 0 });
      continue;
    }
    const v = keys.includes(verificationKey(backupId)) ? await readJson<Verification>(store, verificationKey(backupId)) : undefined;
    out.push({ backupId, name: n, createdAt, phase: m.phase, verified: v?.ok, files: m.totals.files, bytes: m.totals.bytes, snapshots: m.totals.snapshots });
  }
  return out.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
}

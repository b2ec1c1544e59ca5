import type { BackupSummary } from '../../../activities/backup/catalog.ts';
import type { BackupResult } from '../../../workflows/backup.ts';

/** Backups for people: sizes, ages and results. Pure. */

/** A size in binary units, e.g. "1.5 MiB". */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** How long ago `iso` was, e.g. "5m", "2.5h", "3.0d". */
export function age(iso: string, now = Date.now()): string {
  const s = Math.max(0, (now - new Date(iso).getTime()) / 1000);
  return s < 3600 ? `${Math.round(s / 60)}m` : s < 86400 ? `${(s / 3600).toFixed(1)}h` : `${(s / 86400).toFixed(1)}d`;
}

/** The result of `backup run --wait`. */
export function backupText(r: BackupResult): string {
  return [
    `${r.backupId}: ${r.phase}, ${r.files} files, ${bytes(r.bytes)} (${bytes(r.copiedBytes)} copied), ${r.snapshots} snapshot(s)`,
    r.verification ? `  verified by restore: ${r.verification.ok ? 'ok' : 'FAILED'} (${r.verification.files} files)` : '  not verified',
    ...(r.prune?.removed.length ? [`  pruned: ${r.prune.removed.map((x) => `${x.backupId} (${x.reason})`).join(', ')}`] : []),
  ].join('\n');
}

/** `backup list --store`: the backups in a store. */
export function storeTable(store: string, rows: BackupSummary[], now = Date.now()): string {
  if (rows.length === 0) return `no backups in ${store}`;
  return [
    `${'BACKUP'.padEnd(40)} ${'PHASE'.padEnd(16)} ${'VERIFIED'.padEnd(9)} ${'FILES'.padStart(7)} ${'SIZE'.padStart(10)} ${'SNAPS'.padStart(5)}  AGE`,
    ...rows.map(
      (b) =>
        `${b.backupId.padEnd(40)} ${b.phase.padEnd(16)} ${(b.verified === undefined ? '-' : b.verified ? 'yes' : 'NO').padEnd(9)} ${String(b.files).padStart(7)} ${bytes(b.bytes).padStart(10)} ${String(b.snapshots).padStart(5)}  ${age(b.createdAt, now)}`,
    ),
  ].join('\n');
}

export interface BackupWorkflowRow {
  workflowId: string;
  status: string;
  phase?: string;
  startTime: string;
}

/** `backup list` without --store: the backup workflows Temporal knows. */
export function workflowTable(rows: BackupWorkflowRow[], now = Date.now()): string {
  if (rows.length === 0) return 'no backup workflows recorded';
  return rows.map((r) => `${r.workflowId.padEnd(48)} ${r.status.padEnd(11)} ${(r.phase ?? '').padEnd(16)} ${age(r.startTime, now)}`).join('\n');
}

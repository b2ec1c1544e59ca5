import type { RetentionInput } from '../../workflows/inputs/backup.ts';
import type { BackupSummary } from './catalog.ts';

/** A good backup is complete, without failures, and passed its restore test. */
export const isGood = (b: BackupSummary) => b.phase === 'Completed' && b.verified === true;

export interface RetentionPlan {
  keep: string[];
  remove: { backupId: string; reason: string }[];
  /** The newest good backup, which is never removed. */
  lastGood?: string;
}

/**
 * Which backups of one name to delete: those beyond keepLast (counting complete backups, newest
 * first) or older than maxAgeDays. Incomplete backups are left alone (one may be running), and the
 * newest good backup is always kept, whatever the policy says.
 */
export function planRetention(backups: BackupSummary[], policy: RetentionInput, now: Date): RetentionPlan {
  const complete = backups.filter((b) => b.phase !== 'Incomplete').sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
  const lastGood = complete.find(isGood)?.backupId;
  const plan: RetentionPlan = { keep: [], remove: [], lastGood };
  complete.forEach((b, i) => {
    const ageDays = (now.getTime() - new Date(b.createdAt).getTime()) / 86_400_000;
    let reason: string | undefined;
    if (policy.keepLast !== undefined && i >= policy.keepLast) reason = `beyond keepLast ${policy.keepLast}`;
    else if (policy.maxAgeDays !== undefined && ageDays > policy.maxAgeDays) reason = `older than ${policy.maxAgeDays} days`;
    if (reason && b.backupId !== lastGood) plan.remove.push({ backupId: b.backupId, reason });
    else plan.keep.push(b.backupId);
  });
  return plan;
}

/**
 * Workflow ids: the conventions that make one pool have one manager, one node one replacement,
 * and the Web UI's list readable. Public API (CLI, CI jobs and schedules build them too).
 */

export function fleetPoolWorkflowId(name: string): string {
  return `pool/${name}`;
}

export function replaceNodeWorkflowId(pool: string, nodeId: string): string {
  return `replace/${pool}/${nodeId}`;
}

export function rollingUpdateWorkflowId(pool: string, id: string): string {
  return `rollout/${pool}/${id}`;
}

export function trainingJobWorkflowId(name: string): string {
  return `train/${name}`;
}

/** Backup times in ids: `20261123T063000Z`. */
export const BACKUP_STAMP = /^\d{8}T\d{6}Z$/;

export function backupStamp(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

/** `backup/<name>/<time>` for a backup started by hand; a schedule starts `backup/<name>` plus Temporal's `-<time>` suffix. */
export function backupWorkflowId(name: string, at: Date): string {
  return `backup/${name}/${backupStamp(at)}`;
}

export function verifyWorkflowId(name: string, at: Date): string {
  return `verify/${name}/${backupStamp(at)}`;
}

export function restoreWorkflowId(backupId: string): string {
  return `restore/${backupId}`;
}

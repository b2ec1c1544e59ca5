import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { backupWorkflowId, restoreWorkflowId } from '../../workflows/common/ids.ts';
import type { BackupInput } from '../../workflows/inputs/backup.ts';
import type { RestoreInput } from '../../workflows/inputs/restore.ts';

/** A tree with nested dirs, an empty file, an executable, text and random binary files. */
export function makeTree(root: string, opts: { files?: number; size?: number; seed?: string } = {}): void {
  mkdirSync(join(root, 'models/llama'), { recursive: true });
  mkdirSync(join(root, 'config'), { recursive: true });
  mkdirSync(join(root, 'empty-dir'), { recursive: true });
  writeFileSync(join(root, 'config/pool.yaml'), `name: demo\nseed: ${opts.seed ?? 'a'}\n`);
  writeFileSync(join(root, 'config/empty'), '');
  writeFileSync(join(root, 'run.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(root, 'run.sh'), 0o755);
  for (let i = 0; i < (opts.files ?? 5); i++) writeFileSync(join(root, `models/llama/part-${i}.bin`), randomBytes(opts.size ?? 50_000 + i * 1000));
}

/** path → sha256 and mode of every regular file under root. */
export function treeDigest(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const abs = join(e.parentPath, e.name);
    const rel = relative(root, abs).split(sep).join('/');
    out[rel] = `${createHash('sha256').update(readFileSync(abs)).digest('hex')} ${(statSync(abs).mode & 0o777).toString(8)}`;
  }
  return out;
}

let clock = Math.floor(Date.now() / 1000) * 1000 - 3600_000;
/** Distinct backup times (one second apart, in the last hour) so backups in one test get distinct ids. */
export function nextBackupTime(): Date {
  return new Date((clock += 1000));
}

export function startBackup(client: Client, taskQueue: string, input: BackupInput, at = nextBackupTime()): Promise<WorkflowHandle> {
  return client.workflow.start('backup', { taskQueue, workflowId: backupWorkflowId(input.name, at), args: [input] });
}

export function startRestore(client: Client, taskQueue: string, input: RestoreInput): Promise<WorkflowHandle> {
  return client.workflow.start('restore', { taskQueue, workflowId: restoreWorkflowId(input.backupId), args: [input] });
}

/** A pack index as stored under index/ (read here directly, not through the code under test). */
export interface StoredPackIndex {
  pack: string;
  size: number;
  blobs: { sha256: string; offset: number; size: number }[];
}

/** Every pack index of a file:// store directory. */
export function packIndexes(storeDir: string): StoredPackIndex[] {
  const dir = join(storeDir, 'index');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => n.endsWith('.json') && !n.includes('.partial-'))
    .map((n) => JSON.parse(readFileSync(join(dir, n), 'utf8')) as StoredPackIndex);
}

/** The pack file holding a blob, and where in it. */
export function packedBlob(storeDir: string, sha256: string): { path: string; offset: number; size: number } {
  for (const idx of packIndexes(storeDir)) {
    const b = idx.blobs.find((x) => x.sha256 === sha256);
    if (b) return { path: join(storeDir, 'packs', idx.pack.slice(0, 2), idx.pack), offset: b.offset, size: b.size };
  }
  throw new Error(`blob ${sha256} is in no pack of ${storeDir}`);
}

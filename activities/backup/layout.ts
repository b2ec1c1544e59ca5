import type { ObjectStore } from '../stores/types.ts';

/**
 * Where a backup lives in its store:
 *   objects/sha256/<ab>/<hash>                   contents of big files, by sha256 (shared by every backup)
 *   packs/<ab>/<id>                              contents of small files, concatenated (blobs; see packs.ts)
 *   index/<id>.json                              what pack <id> holds: sha256, offset and size of each blob
 *   backups/<name>/<time>/started.json          written first
 *   backups/<name>/<time>/staging/<source>/…    entries copied so far (lets a retried copy resume)
 *   backups/<name>/<time>/manifest.json         written last: without it the backup is incomplete
 *   backups/<name>/<time>/verification.json     the last restore test
 */
export const MANIFEST_FORMAT = 'drydock-backup/v1';

export const objectKey = (sha256: string) => `objects/sha256/${sha256.slice(0, 2)}/${sha256}`;
export const packKey = (id: string) => `packs/${id.slice(0, 2)}/${id}`;
export const packIndexKey = (id: string) => `index/${id}.json`;
export const backupPrefix = (backupId: string) => `backups/${backupId}/`;
export const startedKey = (backupId: string) => `backups/${backupId}/started.json`;
export const manifestKey = (backupId: string) => `backups/${backupId}/manifest.json`;
export const verificationKey = (backupId: string) => `backups/${backupId}/verification.json`;
export const stagingPrefix = (backupId: string, source: string) => `backups/${backupId}/staging/${source}/`;

export interface FileEntry {
  /** '/'-separated, relative to the source root. */
  path: string;
  size: number;
  sha256: string;
  mode: number;
  mtimeMs: number;
}

export interface SnapshotRecord {
  pool: string;
  provider: string;
  nodeId: string;
  snapshotId: string;
  volumeId: string;
  state: string;
}

export interface ManifestSource {
  name: string;
  type: 'files' | 'snapshot';
  /** files: the directory backed up; snapshot: the pool. */
  origin: string;
  /** The source's version: sha256 over its sorted (path, size, sha256) list, or over its snapshot ids. */
  version: string;
  files: FileEntry[];
  snapshots: SnapshotRecord[];
  bytes: number;
  error?: string;
}

export interface HookRecord {
  name: string;
  when: 'pre' | 'post';
  ok: boolean;
  error?: string;
  onError: 'fail' | 'continue';
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  backupId: string;
  name: string;
  workflowId: string;
  runId: string;
  startedAt: string;
  completedAt: string;
  phase: 'Completed' | 'PartiallyFailed';
  tool: { name: 'drydock'; version: string };
  sources: ManifestSource[];
  hooks: HookRecord[];
  totals: { files: number; bytes: number; snapshots: number };
}

export interface Verification {
  backupId: string;
  verifiedAt: string;
  ok: boolean;
  files: number;
  bytes: number;
  problems: VerifyProblem[];
}

export interface VerifyProblem {
  source: string;
  path: string;
  problem: 'missing' | 'checksum mismatch' | 'size mismatch';
}

export async function readJson<T>(store: ObjectStore, key: string): Promise<T | undefined> {
  const bytes = await store.get(key);
  return bytes ? (JSON.parse(Buffer.from(bytes).toString('utf8')) as T) : undefined;
}

export function writeJson(store: ObjectStore, key: string, value: unknown): Promise<void> {
  return store.put(key, Buffer.from(JSON.stringify(value, null, 1) + '\n'));
}

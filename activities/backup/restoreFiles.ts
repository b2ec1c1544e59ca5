import { createHash } from 'node:crypto';
import { chmodSync, createWriteStream, renameSync, rmSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, readdir, realpath, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApplicationFailure } from '@temporalio/common';
import { SYNC_IO_MAX } from '../stores/file.ts';
import type { ObjectStore } from '../stores/types.ts';
import { BlobReader, PACKED_BELOW } from './packs.ts';
import { manifestKey, objectKey, readJson, type FileEntry, type Manifest, type VerifyProblem } from './layout.ts';

export interface RestoreItem {
  source: string;
  entry: FileEntry;
  target: string;
}

/** The backup's manifest; a backup without one is incomplete and cannot be restored. */
export async function loadManifest(store: ObjectStore, backupId: string): Promise<Manifest> {
  const m = await readJson<Manifest>(store, manifestKey(backupId));
  if (!m) {
    throw ApplicationFailure.nonRetryable(
      `backup ${backupId} has no manifest in ${store.uri}: it does not exist or never completed (run 'drydock backup list --store ${store.uri}')`,
      'BackupNotFound',
    );
  }
  return m;
}

/**
 * Where every file of the chosen sources lands under destination. A manifest path that is
 * absolute, has '..' or empty segments, or otherwise resolves outside destination is refused
 * before anything is written.
 */
export function planRestore(manifest: Manifest, destination: string, only?: string): RestoreItem[] {
  const sources = only ? manifest.sources.filter((s) => s.name === only) : manifest.sources;
  if (only && sources.length === 0) {
    throw ApplicationFailure.nonRetryable(
      `source: backup ${manifest.backupId} has no source '${only}' (it has: ${manifest.sources.map((s) => s.name).join(', ')})`,
      'InvalidArgument',
    );
  }
  const root = resolve(destination);
  const items: RestoreItem[] = [];
  for (const s of sources) {
    const base = only ? root : join(root, s.name);
    for (const entry of s.files) {
      const segs = entry.path.split('/');
      const target = resolve(base, entry.path);
      if (
        typeof entry.path !== 'string' ||
        entry.path.startsWith('/') ||
        entry.path.includes('\\') ||
        entry.path.includes('\0') ||
        segs.some((p) => p === '' || p === '.' || p === '..') ||
        !target.startsWith(root + sep)
      ) {
        throw ApplicationFailure.nonRetryable(
          `manifest of ${manifest.backupId}: path '${entry.path}' in source '${s.name}' escapes the destination ${root}; nothing was restored`,
          'UnsafeManifest',
        );
      }
      if (!/^[0-9a-f]{64}$/.test(entry.sha256)) {
        throw ApplicationFailure.nonRetryable(`manifest of ${manifest.backupId}: '${entry.path}' has no valid sha256`, 'UnsafeManifest');
      }
      items.push({ source: s.name, entry, target });
    }
  }
  return items;
}

export async function isEmptyDir(path: string): Promise<boolean> {
  try {
    return (await readdir(path)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}

/**
 * Writes one file from the store (its blob in a pack, or its own object): to a partial file, hashing as it goes, then renamed into place
 * only when size and sha256 match the manifest. Returns the problem instead of writing bad bytes.
 */
export async function restoreOne(store: ObjectStore, blobs: BlobReader, item: RestoreItem, root: string, checkedDirs: Set<string>): Promise<VerifyProblem | undefined> {
  const { entry, target } = item;
  const dir = dirname(target);
  if (!checkedDirs.has(dir)) {
    await mkdir(dir, { recursive: true });
    // A symlink inside the destination must not carry writes outside it.
    const real = await realpath(dir);
    const realRoot = await realpath(root);
    if (real !== realRoot && !real.startsWith(realRoot + sep)) {
      throw ApplicationFailure.nonRetryable(`${dir} leads outside the destination ${root} (a symlink?); nothing more was restored`, 'UnsafeManifest');
    }
    checkedDirs.add(dir);
  }
  const partial = `${target}.drydock-partial`;
  const fromPack = entry.size < PACKED_BELOW ? await blobs.read(entry.sha256) : { packed: false };
  if (fromPack.packed || entry.size <= SYNC_IO_MAX) {
    // Small files: one read, one hash, synchronous writes (see SYNC_IO_MAX).
    const bytes = fromPack.packed ? fromPack.bytes : await store.get(objectKey(entry.sha256));
    if (!bytes) return { source: item.source, path: entry.path, problem: 'missing' };
    if (bytes.length !== entry.size) return { source: item.source, path: entry.path, problem: 'size mismatch' };
    if (createHash('sha256').update(bytes).digest('hex') !== entry.sha256) return { source: item.source, path: entry.path, problem: 'checksum mismatch' };
    try {
      writeFileSync(partial, bytes);
      chmodSync(partial, entry.mode || 0o644);
      renameSync(partial, target);
    } catch (err) {
      rmSync(partial, { force: true });
      throw err;
    }
    return undefined;
  }
  const body = await store.getStream(objectKey(entry.sha256));
  if (!body) return { source: item.source, path: entry.path, problem: 'missing' };
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  await pipeline(body, tap, createWriteStream(partial));
  const problem = size !== entry.size ? 'size mismatch' : hash.digest('hex') !== entry.sha256 ? 'checksum mismatch' : undefined;
  if (problem) {
    await rm(partial, { force: true });
    return { source: item.source, path: entry.path, problem };
  }
  await chmod(partial, entry.mode || 0o644);
  await rename(partial, target);
  return undefined;
}

import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { FileStore } from '../stores/file.ts';
import { openStore } from '../stores/index.ts';
import type { ObjectStore } from '../stores/types.ts';
import { listBackups } from './catalog.ts';
import { manifestKey, objectKey, readJson, stagingPrefix, writeJson, type FileEntry, type Manifest } from './layout.ts';
import { loadBlobIndex, PACKED_BELOW, PackWriter } from './packs.ts';
import { hashCopy } from '../stores/hashCopy.ts';
import { forEachLimit, walkTree, yielder, type TreeFile } from './tree.ts';

/** Files hashed and copied at once: overlaps hashing with I/O and hides per-file latency of small files. */
const COPY_CONCURRENCY = 8;
/** Entries per staging chunk, and how often the open chunk is saved. */
const CHUNK_ENTRIES = 1000;
const FLUSH_EVERY_MS = 1000;
/** Progress heartbeats at most this often: one per small file cost more than copying it. */
const HEARTBEAT_EVERY_MS = 200;

export interface CopySourceInput {
  store: string;
  backupId: string;
  source: { name: string; path: string };
}

/** What heartbeats carry: a retried attempt reads them back and continues the counts. */
export interface CopyProgress {
  source: string;
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** Files and bytes actually written to the store (the rest were already there). */
  copiedFiles: number;
  copiedBytes: number;
  attempt: number;
}

export interface CopySourceResult {
  name: string;
  files: number;
  bytes: number;
  copiedFiles: number;
  copiedBytes: number;
  /** Files reused from an earlier attempt's staging, without hashing or copying. */
  resumedFiles: number;
  /** Files whose sha256 came from the previous backup (same path, size and mtime), without reading them. */
  unchangedFiles: number;
  skippedSpecial: string[];
}

/**
 * Copies one file tree into content-addressed storage. Each file is hashed, and stored only when
 * no blob (in a pack, for small files) or object with that sha256 exists yet. Entries are saved
 * to staging as they are stored, so a retried attempt (after a worker crash) reuses them without
 * re-reading, and files stored after the last save are found in the store and not copied again.
 */
export async function copySource(input: CopySourceInput): Promise<CopySourceResult> {
  const ctx = Context.current();
  const store = openStore(input.store);
  const { name, path } = input.source;
  const s = await stat(path).catch(() => undefined);
  if (!s?.isDirectory()) {
    throw ApplicationFailure.nonRetryable(`source '${name}': ${path} is not a directory on worker ${process.env.HOSTNAME ?? ''}`.trim(), 'SourceNotFound');
  }
  if (ctx.info.attempt > 1 && store instanceof FileStore) {
    for (const p of ['objects/', 'packs/', 'index/', stagingPrefix(input.backupId, name)]) await store.sweepPartials(p);
  }

  const staged = await readStaging(store, input.backupId, name);
  const parent = await previousEntries(store, input.backupId, name, path);
  const { files, skipped } = await walkTree(path);
  // One listing instead of a HEAD (or stat) per file; blobs stored below are added to these.
  const loose = new Map((await store.listObjects('objects/sha256/')).map((o) => [o.key, o.size]));
  const looseSizes = new Set(loose.values());
  const packed = await loadBlobIndex(store);
  const stored = (sha256: string, size: number) => packed.get(sha256)?.size === size || loose.get(objectKey(sha256)) === size;
  const prev = ctx.info.heartbeatDetails as CopyProgress | undefined;
  const progress: CopyProgress = {
    source: name,
    filesDone: 0,
    filesTotal: files.length,
    bytesDone: 0,
    bytesTotal: files.reduce((n, f) => n + f.size, 0),
    copiedFiles: prev?.copiedFiles ?? 0,
    copiedBytes: prev?.copiedBytes ?? 0,
    attempt: ctx.info.attempt,
  };
  let resumedFiles = 0;
  let unchangedFiles = 0;
  const chunks = new Chunks(store, input.backupId, name, staged.chunks);
  // Entries of packed files are staged only once their pack and its index are stored.
  const packer = new PackWriter(store, (p) => {
    for (const b of p.blobs) packed.set(b.sha256, { pack: p.id, offset: b.offset, size: b.size });
    progress.copiedFiles += p.blobs.length;
    progress.copiedBytes += p.blobs.reduce((n, b) => n + b.size, 0);
    return chunks.addAll(p.entries);
  });

  const breathe = yielder();
  let lastBeat = 0;
  const copyOne = async (f: TreeFile) => {
    await breathe();
    ctx.cancellationSignal.throwIfAborted();
    const old = staged.entries.get(f.path);
    const known = parent.get(f.path);
    const unchanged = known && known.size === f.size && known.mtimeMs === f.mtimeMs ? known.sha256 : undefined;
    if (old && old.size === f.size && old.mtimeMs === f.mtimeMs) {
      resumedFiles++;
    } else if (f.size < PACKED_BELOW) {
      // Synchronous from read to commit: the file is read straight into the open pack's free space.
      const entry: FileEntry = { path: f.path, size: f.size, sha256: unchanged ?? '', mode: f.mode, mtimeMs: f.mtimeMs };
      if (unchanged && (packer.holds(unchanged) || packed.get(unchanged)?.size === f.size)) {
        unchangedFiles++;
      } else {
        const buf = packer.scratch(f.size);
        entry.size = readInto(f.abs, buf);
        entry.sha256 = createHash('sha256').update(buf.subarray(0, entry.size)).digest('hex');
      }
      if (packer.holds(entry.sha256)) packer.addRef(entry.sha256, entry);
      else if (packed.get(entry.sha256)?.size === entry.size) await chunks.add(entry);
      else await packer.commit(entry.sha256, entry.size, entry);
    } else if (unchanged && stored(unchanged, f.size)) {
      unchangedFiles++;
      await chunks.add({ path: f.path, size: f.size, sha256: unchanged, mode: f.mode, mtimeMs: f.mtimeMs });
    } else if (store instanceof FileStore && (unchanged || !looseSizes.has(f.size))) {
      // Not stored (no stored object even has this size): hash while copying, one read of the file.
      looseSizes.add(f.size);
      const put = await store.putFileAddressed(f.abs, objectKey);
      loose.set(put.key, put.size);
      progress.copiedFiles++;
      progress.copiedBytes += put.size;
      await chunks.add({ path: f.path, size: put.size, sha256: put.sha256, mode: f.mode, mtimeMs: f.mtimeMs });
    } else {
      // Maybe stored already (or S3, where an upload cannot be renamed): hash first, copy only when missing.
      const { sha256 } = await hashCopy(f.abs);
      const key = objectKey(sha256);
      if (!stored(sha256, f.size)) {
        await store.putFile(key, f.abs);
        loose.set(key, f.size);
        looseSizes.add(f.size);
        progress.copiedFiles++;
        progress.copiedBytes += f.size;
      }
      await chunks.add({ path: f.path, size: f.size, sha256, mode: f.mode, mtimeMs: f.mtimeMs });
    }
    progress.filesDone++;
    progress.bytesDone += f.size;
    if (Date.now() - lastBeat >= HEARTBEAT_EVERY_MS) {
      ctx.heartbeat(progress);
      lastBeat = Date.now();
    }
  };
  // Small files are read synchronously into packs on the event loop; big files are hashed and
  // copied in worker threads (file://), so the two run side by side on two cores. Streams (s3://)
  // would starve behind the synchronous loop, so there the big files wait for the small ones.
  const small = files.filter((f) => f.size < PACKED_BELOW).sort((a, b) => a.size - b.size);
  const big = files.filter((f) => f.size >= PACKED_BELOW).sort((a, b) => b.size - a.size);
  const smallDone = forEachLimit(small, COPY_CONCURRENCY, copyOne);
  if (!(store instanceof FileStore)) await smallDone;
  await Promise.all([smallDone, forEachLimit(big, COPY_CONCURRENCY, copyOne)]);
  await packer.finish();
  await chunks.flush();
  ctx.heartbeat(progress);
  return {
    name,
    files: files.length,
    bytes: progress.bytesTotal,
    copiedFiles: progress.copiedFiles,
    copiedBytes: progress.copiedBytes,
    resumedFiles,
    unchangedFiles,
    skippedSpecial: skipped.slice(0, 20),
  };
}

/** Reads up to buf.length bytes of a file (fewer if it shrank since it was listed); returns how many. */
function readInto(path: string, buf: Buffer): number {
  const fd = openSync(path, 'r');
  try {
    let got = 0;
    for (let n = -1; got < buf.length && n !== 0; got += n) n = readSync(fd, buf, got, buf.length - got, null);
    return got;
  } finally {
    closeSync(fd);
  }
}

/**
 * The entries of this source in the newest complete backup of the same name and origin: a file
 * with the same path, size and mtime is taken as unchanged (rsync's quick check), so its sha256 is
 * reused without reading it. Verification by restore still reads every object.
 */
async function previousEntries(store: ObjectStore, backupId: string, source: string, origin: string): Promise<Map<string, FileEntry>> {
  const name = backupId.split('/')[0];
  const prev = (await listBackups(store, name)).find((b) => b.backupId !== backupId && b.phase !== 'Incomplete' && b.verified !== false);
  if (!prev) return new Map();
  const m = await readJson<Manifest>(store, manifestKey(prev.backupId));
  const s = m?.sources.find((x) => x.name === source && x.origin === origin);
  return new Map((s?.files ?? []).map((e) => [e.path, e]));
}

/** Every entry staged so far for a source (all attempts), latest entry per path. */
export async function readStaging(store: ObjectStore, backupId: string, source: string): Promise<{ entries: Map<string, FileEntry>; chunks: number }> {
  const keys = await store.list(stagingPrefix(backupId, source));
  const entries = new Map<string, FileEntry>();
  for (const key of keys) for (const e of (await readJson<FileEntry[]>(store, key)) ?? []) entries.set(e.path, e);
  return { entries, chunks: keys.length };
}

/** Staging chunks: full ones are written once; the open one is rewritten at most every FLUSH_EVERY_MS. */
class Chunks {
  private open: FileEntry[] = [];
  private lastFlush = Date.now();
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly store: ObjectStore, private readonly backupId: string, private readonly source: string, private next: number) {}

  async add(e: FileEntry): Promise<void> {
    return this.addAll([e]);
  }

  async addAll(es: FileEntry[]): Promise<void> {
    this.open.push(...es);
    if (this.open.length >= CHUNK_ENTRIES || Date.now() - this.lastFlush >= FLUSH_EVERY_MS) await this.flush();
  }

  flush(): Promise<void> {
    const entries = this.open;
    const key = `${stagingPrefix(this.backupId, this.source)}chunk-${String(this.next).padStart(6, '0')}.json`;
    if (entries.length >= CHUNK_ENTRIES) {
      this.open = [];
      this.next++;
    }
    this.lastFlush = Date.now();
    const snapshot = entries.slice();
    this.writing = this.writing.then(() => (snapshot.length ? writeJson(this.store, key, snapshot) : undefined));
    return this.writing;
  }
}

import { createHash, randomBytes } from 'node:crypto';
import type { ObjectStore } from '../stores/types.ts';
import { packIndexKey, packKey, readJson, writeJson, type FileEntry } from './layout.ts';

/**
 * Small files go into pack objects (as restic does): creating one store object per 16 KiB file
 * cost 25-450 µs each on ext4 here, where tar appends to one archive. A pack is the plain
 * concatenation of blobs (file contents); its index lists each blob's sha256, offset and size.
 * The pack is written before its index, so an index never names a pack that was not stored.
 */
export const PACK_FORMAT = 'drydock-pack-index/v1';
/** Files below this size are packed; bigger ones stay one object each (objects/sha256/…). */
export const PACKED_BELOW = 1024 * 1024;
/** A pack is written once it holds this many bytes. */
export const PACK_TARGET = 8 * 1024 * 1024;
/** Retention rewrites a pack once this share of its bytes belongs to no backup. */
const REPACK_DEAD_SHARE = 0.2;
/** A pack without index is what a writer killed between the two writes leaves; swept after this. */
const ORPHAN_PACK_AGE_MS = 3600_000;

export interface PackBlob {
  sha256: string;
  offset: number;
  size: number;
}

export interface PackIndex {
  format: typeof PACK_FORMAT;
  pack: string;
  /** The pack object's size: an index whose pack is missing or of another size is not trusted. */
  size: number;
  blobs: PackBlob[];
}

export interface BlobLocation {
  pack: string;
  offset: number;
  size: number;
}

/** sha256 → where the blob is, from every index whose pack is in the store with the size it names. */
export async function loadBlobIndex(store: ObjectStore): Promise<Map<string, BlobLocation>> {
  const out = new Map<string, BlobLocation>();
  for (const idx of await readIndexes(store)) {
    if (!idx.packed) continue;
    for (const b of idx.index.blobs) if (!out.has(b.sha256)) out.set(b.sha256, { pack: idx.index.pack, offset: b.offset, size: b.size });
  }
  return out;
}

interface IndexRecord {
  key: string;
  index: PackIndex;
  /** Its pack exists with the size the index names. */
  packed: boolean;
}

async function readIndexes(store: ObjectStore): Promise<IndexRecord[]> {
  const packs = new Map((await store.listObjects('packs/')).map((o) => [o.key, o.size]));
  const out: IndexRecord[] = [];
  for (const key of await store.list('index/')) {
    const index = await readJson<PackIndex>(store, key).catch(() => undefined);
    if (!index || index.format !== PACK_FORMAT || !/^[0-9a-f]{32}$/.test(index.pack) || !Array.isArray(index.blobs)) continue; // unreadable: its blobs count as missing
    out.push({ key, index, packed: packs.get(packKey(index.pack)) === index.size });
  }
  return out;
}

/** Reads blobs for restore and verification; when a pack has gone (rewritten by retention meanwhile) it looks again once in a while. */
export class BlobReader {
  private index: Promise<Map<string, BlobLocation>>;
  private loadedAt = Date.now();

  constructor(private readonly store: ObjectStore) {
    this.index = loadBlobIndex(store);
  }

  /** The blob's bytes, or undefined when it is not in any pack (then look for a loose object). */
  async read(sha256: string): Promise<{ bytes?: Uint8Array; packed: boolean }> {
    for (let again = true; ; again = false) {
      const loc = (await this.index).get(sha256);
      const bytes = loc ? await this.store.getRange(packKey(loc.pack), loc.offset, loc.size) : undefined;
      if (bytes || !again || Date.now() - this.loadedAt < 10_000) return { bytes, packed: !!loc };
      this.index = loadBlobIndex(this.store);
      this.loadedAt = Date.now();
    }
  }
}

interface Builder {
  id: string;
  /** Room for PACK_TARGET bytes plus one more blob; files are read straight into it. */
  buf: Buffer;
  blobs: PackBlob[];
  size: number;
  /** Manifest entries whose content is in this pack: staged only once the pack and its index are stored. */
  entries: FileEntry[];
}

export interface LandedPack {
  id: string;
  blobs: PackBlob[];
  entries: FileEntry[];
}

/**
 * Collects small files into packs and writes each full pack in the background (one at a time,
 * while the next fills). onLanded runs once a pack and its index are stored; its synchronous
 * part must record the blobs, because from then on `holds` no longer answers for them.
 */
export class PackWriter {
  private open: Builder;
  private readonly pending = new Map<string, Builder>();
  private writing: Promise<void> = Promise.resolve();
  /** Buffers of stored packs, reused: a fresh 9 MiB buffer per pack made the GC run far more often. */
  private readonly spare: Buffer[] = [];

  constructor(
    private readonly store: ObjectStore,
    private readonly onLanded: (p: LandedPack) => Promise<void>,
    private readonly target = PACK_TARGET,
  ) {
    this.open = this.newBuilder();
  }

  /** The blob is in a pack not yet stored. */
  holds(sha256: string): boolean {
    return this.pending.has(sha256);
  }

  /**
   * Free space at the end of the open pack for a blob below PACKED_BELOW: read the file into it
   * and commit, or just drop it (a blob already stored). Valid until the next commit.
   */
  scratch(size: number): Buffer {
    if (size >= PACKED_BELOW) throw new Error(`a blob of ${size} bytes is too big for a pack`);
    return this.open.buf.subarray(this.open.size, this.open.size + size);
  }

  /** Adds an entry whose blob a pending pack holds already. */
  addRef(sha256: string, entry: FileEntry): void {
    const held = this.pending.get(sha256);
    if (!held) throw new Error(`no pending pack holds blob ${sha256}`);
    held.entries.push(entry);
  }

  /** Takes the first `length` bytes of scratch() as the blob `sha256`, referred to by entry. */
  async commit(sha256: string, length: number, entry: FileEntry): Promise<void> {
    if (this.pending.has(sha256)) return this.addRef(sha256, entry);
    const b = this.open;
    b.blobs.push({ sha256, offset: b.size, size: length });
    b.size += length;
    b.entries.push(entry);
    this.pending.set(sha256, b);
    if (b.size >= this.target) await this.rotate();
  }

  /** Writes what is left and waits for every pack to be stored. */
  async finish(): Promise<void> {
    await this.rotate();
    await this.writing;
  }

  private async rotate(): Promise<void> {
    const b = this.open;
    if (!b.entries.length) return;
    this.open = this.newBuilder();
    const prev = this.writing;
    this.writing = prev.then(() => this.land(b));
    this.writing.catch(() => undefined); // surfaced by the next rotate or finish
    await prev; // back-pressure: one pack being written while the next fills
  }

  private async land(b: Builder): Promise<void> {
    await writePack(this.store, b.id, b.buf.subarray(0, b.size), b.blobs);
    for (const blob of b.blobs) this.pending.delete(blob.sha256);
    this.spare.push(b.buf);
    await this.onLanded({ id: b.id, blobs: b.blobs, entries: b.entries });
  }

  private newBuilder(): Builder {
    return { id: randomBytes(16).toString('hex'), buf: this.spare.pop() ?? Buffer.allocUnsafe(this.target + PACKED_BELOW), blobs: [], size: 0, entries: [] };
  }
}

async function writePack(store: ObjectStore, id: string, body: Buffer, blobs: PackBlob[]): Promise<void> {
  await store.put(packKey(id), body);
  const index: PackIndex = { format: PACK_FORMAT, pack: id, size: body.length, blobs };
  await writeJson(store, packIndexKey(id), index);
}

export interface SweepResult {
  /** Blobs and loose objects no backup refers to, removed. */
  objects: number;
  bytes: number;
}

/**
 * Removes what no backup refers to: loose objects, packs whose blobs are all unreferenced, and
 * (rewriting the live blobs into a new pack first) packs that are mostly unreferenced. A pack
 * whose live blobs do not match their sha256 is left alone, for verification to report.
 */
export async function sweepUnreferenced(store: ObjectStore, referenced: Set<string>): Promise<SweepResult> {
  const result: SweepResult = { objects: 0, bytes: 0 };
  for (const o of await store.listObjects('objects/')) {
    if (referenced.has(o.key.slice(o.key.lastIndexOf('/') + 1))) continue;
    await store.remove(o.key);
    result.objects++;
    result.bytes += o.size;
  }
  const indexed = new Set<string>();
  for (const { key, index, packed } of await readIndexes(store)) {
    indexed.add(packKey(index.pack));
    if (!packed) {
      await store.remove(key); // its pack is gone or torn: no blob of it can be used
      continue;
    }
    const live = index.blobs.filter((b) => referenced.has(b.sha256));
    const dead = index.blobs.filter((b) => !referenced.has(b.sha256));
    const deadBytes = dead.reduce((n, b) => n + b.size, 0);
    if (!dead.length) continue;
    if (live.length && deadBytes < REPACK_DEAD_SHARE * index.size) continue;
    if (live.length && !(await repack(store, index, live))) continue;
    // Index first: a crash before the pack goes leaves an orphan pack, swept later, never an index without its pack.
    await store.remove(key);
    await store.remove(packKey(index.pack));
    result.objects += dead.length;
    result.bytes += deadBytes;
  }
  for (const o of await store.listObjects('packs/')) {
    if (!indexed.has(o.key) && Date.now() - o.lastModified.getTime() > ORPHAN_PACK_AGE_MS) await store.remove(o.key);
  }
  return result;
}

/** Copies the live blobs of a pack into a new one; false when one of them fails its checksum. */
async function repack(store: ObjectStore, index: PackIndex, live: PackBlob[]): Promise<boolean> {
  const body = await store.get(packKey(index.pack));
  if (!body) return false;
  const parts: Buffer[] = [];
  const blobs: PackBlob[] = [];
  let offset = 0;
  for (const b of live) {
    if (b.offset + b.size > body.length) return false;
    const bytes = Buffer.from(body.buffer, body.byteOffset + b.offset, b.size);
    if (createHash('sha256').update(bytes).digest('hex') !== b.sha256) return false;
    parts.push(bytes);
    blobs.push({ sha256: b.sha256, offset, size: b.size });
    offset += b.size;
  }
  await writePack(store, randomBytes(16).toString('hex'), Buffer.concat(parts), blobs);
  return true;
}


import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelError } from './errors.ts';

const SHA = /^[0-9a-f]{64}$/;

interface Entry {
  sizeBytes: number;
  /** ms since the epoch: a load or a prefetch of the model. */
  lastUsed: number;
  uri?: string;
}

export interface CacheEntryView {
  sha256: string;
  sizeBytes: number;
  lastUsed: string;
  uri?: string;
  /** Served, wanted (a swap or prefetch target) or downloading: never evicted. */
  pinned: boolean;
}

export interface CacheOptions {
  /** Most bytes the cache may hold (models and partial downloads); 0: bounded by the disk only. */
  maxBytes: number;
  /** Free bytes on the cache's file system (tests may stand in for statfs). */
  freeBytes?: (dir: string) => number;
}

const fmt = (n: number) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${n} bytes`);
export const formatBytes = fmt;

/**
 * The agent's content-addressed model cache, `<data dir>/models/<sha256>`: a file there has been
 * verified (it is renamed in only after its sha256 matched). Partial downloads live in
 * `models/partial/` beside a note of their source. Bounded by `maxBytes` and the disk: before a
 * download starts, least recently used models are evicted to make room, never one that is pinned
 * (the served model, the wanted ones, and downloads under way); when that is not enough the
 * download is refused (413) before its first byte.
 */
export class ModelCache {
  readonly partialDir: string;
  private readonly indexFile: string;
  private index = new Map<string, Entry>();

  constructor(readonly dir: string, private readonly opts: CacheOptions) {
    this.partialDir = join(dir, 'partial');
    this.indexFile = join(dir, 'index.json');
    mkdirSync(this.partialDir, { recursive: true });
    this.load();
  }

  /** The index, reconciled with the files actually there (a crash may have left it behind). */
  private load(): void {
    let saved: Record<string, Entry> = {};
    try {
      saved = JSON.parse(readFileSync(this.indexFile, 'utf8')) as Record<string, Entry>;
    } catch {
      /* none yet, or torn: rebuilt from the files */
    }
    for (const name of readdirSync(this.dir)) {
      if (!SHA.test(name)) continue;
      const st = statSync(join(this.dir, name));
      this.index.set(name, { sizeBytes: st.size, lastUsed: saved[name]?.lastUsed ?? st.mtimeMs, ...(saved[name]?.uri ? { uri: saved[name].uri } : {}) });
    }
    this.save();
  }

  private save(): void {
    const tmp = `${this.indexFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.index), null, 1));
    renameSync(tmp, this.indexFile);
  }

  path(sha256: string): string {
    return join(this.dir, sha256);
  }

  partialPath(sha256: string): string {
    return join(this.partialDir, `${sha256}.part`);
  }

  has(sha256: string): boolean {
    return this.index.has(sha256) && existsSync(this.path(sha256));
  }

  /** Marks a model used now (a load or a prefetch): the last to be evicted. */
  touch(sha256: string, uri?: string): void {
    const e = this.index.get(sha256);
    if (!e) return;
    e.lastUsed = Date.now();
    if (uri) e.uri = uri;
    this.save();
  }

  /** Records a file just renamed into the cache. */
  added(sha256: string, uri: string): void {
    this.index.set(sha256, { sizeBytes: statSync(this.path(sha256)).size, lastUsed: Date.now(), uri });
    this.save();
  }

  private partialBytes(): number {
    let n = 0;
    for (const f of readdirSync(this.partialDir)) if (f.endsWith('.part')) n += statSync(join(this.partialDir, f)).size;
    return n;
  }

  usedBytes(): number {
    let n = this.partialBytes();
    for (const e of this.index.values()) n += e.sizeBytes;
    return n;
  }

  private free(): number {
    try {
      return this.opts.freeBytes ? this.opts.freeBytes(this.dir) : ((s) => s.bavail * s.bsize)(statfsSync(this.dir));
    } catch {
      return Number.POSITIVE_INFINITY;
    }
  }

  /**
   * Makes room for `needBytes` more (evicting least recently used, unpinned models); throws
   * ModelError 413 naming the shortfall when even that is not enough. Nothing is evicted then.
   */
  reserve(needBytes: number, pinned: Set<string>, what: string): void {
    const evictable = [...this.index.entries()].filter(([sha]) => !pinned.has(sha)).sort((x, y) => x[1].lastUsed - y[1].lastUsed);
    const evictableBytes = evictable.reduce((n, [, e]) => n + e.sizeBytes, 0);
    const room = () => Math.min(this.free(), this.opts.maxBytes > 0 ? this.opts.maxBytes - this.usedBytes() : Number.POSITIVE_INFINITY);
    const best = Math.min(this.free() + evictableBytes, this.opts.maxBytes > 0 ? this.opts.maxBytes - this.usedBytes() + evictableBytes : Number.POSITIVE_INFINITY);
    if (best < needBytes) {
      const quota = this.opts.maxBytes > 0 ? `the cache's quota (--model-cache-bytes ${this.opts.maxBytes}) leaves ${fmt(Math.max(0, this.opts.maxBytes - this.usedBytes()))}, ` : '';
      throw new ModelError(
        413,
        `disk: ${what} needs ${fmt(needBytes)} but ${quota}${fmt(this.free())} are free in ${this.dir}, and evicting every model not served or wanted frees only ${fmt(evictableBytes)}; nothing was downloaded`,
      );
    }
    for (const [sha] of evictable) {
      if (room() >= needBytes) break;
      this.evict(sha);
    }
  }

  /** After a download: evicts least recently used unpinned models while the cache is over its quota. */
  trim(pinned: Set<string>): void {
    if (this.opts.maxBytes <= 0) return;
    const evictable = [...this.index.entries()].filter(([sha]) => !pinned.has(sha)).sort((x, y) => x[1].lastUsed - y[1].lastUsed);
    for (const [sha] of evictable) {
      if (this.usedBytes() <= this.opts.maxBytes) break;
      this.evict(sha);
    }
  }

  private evict(sha256: string): void {
    rmSync(this.path(sha256), { force: true });
    this.index.delete(sha256);
    this.save();
    console.log(`gpu-agent: evicted model ${sha256} from the cache (least recently used)`);
  }

  /** Drops partial downloads that are not `keep` (a partial file counts against the quota). */
  dropPartials(keep: Set<string>): void {
    for (const f of readdirSync(this.partialDir)) {
      const sha = f.split('.')[0];
      if (!keep.has(sha)) rmSync(join(this.partialDir, f), { force: true });
    }
  }

  view(pinned: Set<string>): { dir: string; usedBytes: number; maxBytes: number; models: CacheEntryView[] } {
    return {
      dir: this.dir,
      usedBytes: this.usedBytes(),
      maxBytes: this.opts.maxBytes,
      models: [...this.index.entries()]
        .sort((x, y) => y[1].lastUsed - x[1].lastUsed)
        .map(([sha256, e]) => ({ sha256, sizeBytes: e.sizeBytes, lastUsed: new Date(e.lastUsed).toISOString(), ...(e.uri ? { uri: e.uri } : {}), pinned: pinned.has(sha256) })),
    };
  }
}

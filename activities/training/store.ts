import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where checkpoints and parameter deltas live. A small interface on purpose, so training can move
 * onto the shared object-store abstraction (activities/stores/, backups issue) once it lands.
 * Keys are '/'-separated paths relative to the store's root.
 */
export interface ObjectStore {
  readonly uri: string;
  put(key: string, body: Uint8Array): Promise<void>;
  /** undefined when the key does not exist. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Every key under `prefix` (recursive). */
  list(prefix: string): Promise<string[]>;
  remove(key: string): Promise<void>;
}

/** Opens `file:///abs/dir` or `s3://bucket/prefix`; other schemes are refused. */
export async function openStore(uri: string, env: NodeJS.ProcessEnv = process.env): Promise<ObjectStore> {
  if (uri.startsWith('file://')) return new FileStore(uri);
  if (uri.startsWith('s3://')) {
    const { S3Store } = await import('./s3Store.ts');
    return new S3Store(uri, env);
  }
  throw new Error(`checkpoint uri '${uri}': only file:// and s3:// are supported`);
}

class FileStore implements ObjectStore {
  private readonly root: string;
  constructor(readonly uri: string) {
    this.root = fileURLToPath(uri);
  }
  private path(key: string): string {
    const p = join(this.root, ...key.split('/'));
    if (relative(this.root, p).startsWith('..')) throw new Error(`key '${key}' escapes the store root`);
    return p;
  }
  async put(key: string, body: Uint8Array): Promise<void> {
    const p = this.path(key);
    await mkdir(dirname(p), { recursive: true });
    // Write then rename: a reader never sees a half-written object, even if this process is killed.
    const tmp = `${p}.tmp-${process.pid}`;
    await writeFile(tmp, body);
    await rename(tmp, p);
  }
  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(this.path(key)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }
  async list(prefix: string): Promise<string[]> {
    const base = this.path(prefix);
    try {
      const entries = await readdir(base, { recursive: true, withFileTypes: true });
      return entries
        .filter((e) => e.isFile() && !e.name.includes('.tmp-'))
        .map((e) => relative(this.root, join(e.parentPath, e.name)).split(sep).join('/'))
        .sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }
  async remove(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }
}

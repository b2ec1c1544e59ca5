import { lstatSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface TreeFile {
  /** '/'-separated, relative to the root. */
  path: string;
  abs: string;
  size: number;
  mode: number;
  mtimeMs: number;
}

/** Regular files under root, sorted by path. Symlinks and special files are skipped and counted. */
export async function walkTree(root: string): Promise<{ files: TreeFile[]; skipped: string[] }> {
  const files: TreeFile[] = [];
  const skipped: string[] = [];
  async function visit(dir: string, rel: string): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      const abs = join(dir, e.name);
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await visit(abs, path);
      else if (e.isFile()) {
        const s = lstatSync(abs); // one syscall per file; the thread pool round trip costs more (see SYNC_IO_MAX)
        files.push({ path, abs, size: s.size, mode: s.mode & 0o7777, mtimeMs: Math.floor(s.mtimeMs) });
      } else skipped.push(path);
    }
  }
  await visit(root, '');
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { files, skipped };
}

/**
 * Lets the event loop run (timers, I/O callbacks, the worker's other tasks) when synchronous
 * small-file I/O has held it for more than a few milliseconds.
 */
export function yielder(everyMs = 20): () => Promise<void> {
  let last = Date.now();
  return async () => {
    if (Date.now() - last < everyMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    last = Date.now();
  };
}

/** Runs fn over items with at most `limit` in flight. */
export async function forEachLimit<T>(items: T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  });
  await Promise.all(lanes);
}

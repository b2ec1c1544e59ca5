import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * Copies files while hashing them (sha256), in worker threads with synchronous I/O: the copy of
 * big files then runs on another core than the backup's small-file loop, which keeps the event
 * loop busy, and never waits for a turn of it between chunks. Plain JavaScript, so the worker
 * needs no TypeScript loader.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const buf = Buffer.allocUnsafe(1024 * 1024);
parentPort.on('message', ({ id, src, dest }) => {
  let fdIn, fdOut;
  try {
    fdIn = fs.openSync(src, 'r');
    if (dest) fdOut = fs.openSync(dest, 'wx');
    const hash = createHash('sha256');
    let size = 0;
    for (;;) {
      const n = fs.readSync(fdIn, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      if (fdOut !== undefined) for (let w = 0; w < n; ) w += fs.writeSync(fdOut, buf, w, n - w);
      size += n;
    }
    parentPort.postMessage({ id, sha256: hash.digest('hex'), size });
  } catch (err) {
    parentPort.postMessage({ id, error: { message: err.message, code: err.code } });
  } finally {
    if (fdIn !== undefined) fs.closeSync(fdIn);
    if (fdOut !== undefined) fs.closeSync(fdOut);
  }
});
`;

interface Reply {
  id: number;
  sha256?: string;
  size?: number;
  error?: { message: string; code?: string };
}

interface Lane {
  worker: Worker;
  jobs: Map<number, { resolve: (r: { sha256: string; size: number }) => void; reject: (e: Error) => void }>;
}

/** Two workers even on two cores: once the small files are done, the event loop's core is free for one. */
const LANES = Math.min(4, Math.max(2, cpus().length));
let lanes: Lane[] | undefined;
let nextId = 0;

function start(): Lane[] {
  return Array.from({ length: LANES }, () => {
    const lane: Lane = { worker: new Worker(WORKER_SOURCE, { eval: true, execArgv: [] }), jobs: new Map() };
    lane.worker.unref(); // idle workers do not keep the process alive (see hashCopy)
    lane.worker.on('message', (r: Reply) => {
      const job = lane.jobs.get(r.id);
      if (!job) return;
      lane.jobs.delete(r.id);
      if (!lane.jobs.size) lane.worker.unref();
      if (r.error) job.reject(Object.assign(new Error(r.error.message), { code: r.error.code }));
      else job.resolve({ sha256: r.sha256!, size: r.size! });
    });
    lane.worker.on('error', (err) => {
      for (const job of lane.jobs.values()) job.reject(err);
      lane.jobs.clear();
      lanes = undefined; // start afresh on the next call
    });
    return lane;
  });
}

/**
 * sha256 and size of `src`, copied to `dest` (created, must not exist) when given. Jobs queue in
 * the workers, so they stay busy however late the event loop collects the replies.
 */
export function hashCopy(src: string, dest?: string): Promise<{ sha256: string; size: number }> {
  lanes ??= start();
  const lane = lanes.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
  const id = nextId++;
  return new Promise((resolve, reject) => {
    lane.jobs.set(id, { resolve, reject });
    lane.worker.ref(); // a pending job keeps the process alive, as pending fs calls do
    lane.worker.postMessage({ id, src, dest });
  });
}

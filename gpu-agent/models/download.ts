import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ModelError } from './errors.ts';
import type { ProgressMeter } from './progress.ts';
import type { RemoteSource } from './sources.ts';

/** Requests in a row that bring no new byte before a download gives up. */
const MAX_STALLED_REQUESTS = 5;
const RETRY_BASE_MS = 200;

/** What is kept beside a partial file, so a resume fetches the same version of the same file. */
interface PartialMeta {
  uri: string;
  sha256: string;
  etag?: string;
  totalBytes: number | null;
}

export interface DownloadOptions {
  uri: string;
  sha256: string;
  /** The partial file (`<final>.part`); its `.json` beside it says what it holds. */
  part: string;
  /** Where the verified file goes (renamed in one step: nothing partial is ever at this path). */
  final: string;
  meter: ProgressMeter;
  signal: AbortSignal;
  /** Most bytes per second to fetch (0: no limit), so a download beside serving does not starve it. */
  bytesPerSecond: number;
  /** Called once the size is known and before the first byte is written; throws to refuse (no space). */
  reserve(totalBytes: number | null, onDisk: number): Promise<void>;
}

async function hashFile(path: string, h: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
}

function readMeta(file: string): PartialMeta | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as PartialMeta;
  } catch {
    return undefined;
  }
}

/**
 * Streams `source` into `part`, resuming from what is on disk (after a crash, or when the connection
 * drops mid-file) with range requests, hashing as it goes; renames to `final` only when the sha256
 * matches. Memory stays at one chunk whatever the file's size. On a mismatch the partial file is
 * deleted (409); a source that keeps ending early without new bytes is a truncated file (422).
 */
export async function download(source: RemoteSource, o: DownloadOptions): Promise<void> {
  const metaFile = `${o.part}.json`;
  const meta = readMeta(metaFile);
  let offset = existsSync(o.part) ? statSync(o.part).size : 0;
  // Bytes from another URI, or from a run that left no record, are not trusted: start over.
  if (offset > 0 && (!meta || meta.uri !== o.uri || meta.sha256 !== o.sha256)) offset = 0;
  const hash = createHash('sha256');
  if (offset > 0) await hashFile(o.part, hash);
  else writeFileSync(o.part, '');
  o.meter.status.resumedFromBytes = offset;
  o.meter.status.totalBytes = meta?.totalBytes ?? null;
  o.meter.update(offset);

  let h = hash;
  let stalled = 0;
  let reserved = false;
  let etag = offset > 0 ? meta?.etag : undefined;
  let lastError: ModelError | undefined;
  const started = Date.now();
  let fetchedSinceStart = 0;
  for (;;) {
    if (stalled >= MAX_STALLED_REQUESTS) {
      const total = o.meter.status.totalBytes;
      // The source could not be reached: try again later (5xx). It answered but kept ending short: a truncated file (422).
      if (lastError) throw new ModelError(lastError.status, `${lastError.message} (${stalled} tries in a row without progress)`);
      throw new ModelError(422, `uri: download truncated: ${o.uri} ended at ${offset}${total === null ? '' : ` of ${total}`} bytes ${stalled} times in a row without sending more`);
    }
    if (stalled > 0) await sleep(Math.min(RETRY_BASE_MS * 2 ** (stalled - 1), 5000), undefined, { signal: o.signal });
    let body;
    try {
      o.meter.status.requests++;
      body = await source.open(offset, o.signal, etag);
      lastError = undefined;
    } catch (err) {
      if (o.signal.aborted) throw err;
      if (err instanceof ModelError && err.status < 500) throw err;
      lastError = err instanceof ModelError ? err : new ModelError(502, `uri: ${(err as Error).message}`);
      stalled++;
      continue;
    }
    if (body.start === 0 && offset > 0) {
      // The source ignored the range (or the file changed): the bytes on disk are dropped.
      offset = 0;
      h = createHash('sha256');
      writeFileSync(o.part, '');
      o.meter.status.resumedFromBytes = 0;
    }
    etag = body.etag;
    if (body.totalBytes !== null) o.meter.status.totalBytes = body.totalBytes;
    writeFileSync(metaFile, JSON.stringify({ uri: o.uri, sha256: o.sha256, etag, totalBytes: body.totalBytes } satisfies PartialMeta));
    if (!reserved) {
      try {
        await o.reserve(body.totalBytes, offset);
      } catch (err) {
        if (offset === 0) {
          rmSync(o.part, { force: true });
          rmSync(metaFile, { force: true });
        }
        throw err;
      }
      reserved = true;
    }
    o.meter.restartWindow();
    o.meter.update(offset);
    const before = offset;
    let dropped: ModelError | undefined;
    const fh = await open(o.part, 'a');
    try {
      for await (const chunk of body.body) {
        h.update(chunk);
        await fh.write(chunk);
        offset += chunk.length;
        fetchedSinceStart += chunk.length;
        o.meter.update(offset);
        if (o.bytesPerSecond > 0) {
          const ahead = (fetchedSinceStart / o.bytesPerSecond) * 1000 - (Date.now() - started);
          if (ahead > 5) await sleep(ahead, undefined, { signal: o.signal });
        }
      }
    } catch (err) {
      if (o.signal.aborted) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') {
        rmSync(o.part, { force: true });
        rmSync(metaFile, { force: true });
        throw new ModelError(413, `disk: the disk filled up at byte ${offset} of ${o.uri}; the partial download was deleted and nothing was loaded`);
      }
      // The connection dropped mid-file: resume from here.
      dropped = new ModelError(502, `uri: connection to the source dropped at byte ${offset} (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message})`);
    } finally {
      await fh.close();
    }
    const total = o.meter.status.totalBytes;
    if (total !== null && offset > total) throw new ModelError(422, `uri: ${o.uri} sent ${offset} bytes, more than the ${total} it announced`);
    if (total === null ? !dropped : offset === total) break;
    // Short of the end: a dropped connection, or a source that ended the body early. Resume.
    lastError = undefined;
    if (dropped) console.log(`gpu-agent: ${dropped.message}; resuming with a range request`);
    stalled = offset > before ? 0 : stalled + 1;
  }

  o.meter.status.state = 'verifying';
  const actual = h.digest('hex');
  if (actual !== o.sha256) {
    rmSync(o.part, { force: true });
    rmSync(metaFile, { force: true });
    throw new ModelError(409, `sha256: ${o.uri} downloaded with sha256 ${actual}, expected ${o.sha256}; the download was discarded and nothing was loaded`);
  }
  await rename(o.part, o.final);
  rmSync(metaFile, { force: true });
}

import { readFileSync } from 'node:fs';
import type { ModelSource } from '../../workflows/common/modelUri.ts';
import { ModelError } from './errors.ts';

/** One response of a source: its body from byte `start` on, and what it says of the whole file. */
export interface SourceBody {
  body: AsyncIterable<Uint8Array>;
  /** Where the body starts: the offset asked for, or 0 when the source ignored the range. */
  start: number;
  totalBytes: number | null;
  /** Identifies the file's version (HTTP ETag / S3 ETag), so a resume never splices two versions. */
  etag?: string;
}

/** A remote model file that can be read from any offset (range requests). */
export interface RemoteSource {
  /** Opens the file at `offset`; `ifMatch` (an etag from before) makes a changed file start over at 0. */
  open(offset: number, signal: AbortSignal, ifMatch?: string): Promise<SourceBody>;
}

const MAX_REDIRECTS = 5;

/**
 * `--model-headers FILE`: JSON `{"<URL prefix>": {"<header>": "<value>"}}`. Headers go only to URLs
 * that start with their prefix (never to a host a redirect leads elsewhere). Read at every download,
 * so a rotated token is used without a restart.
 */
export function readHeadersFile(file: string): Record<string, Record<string, string>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`--model-headers: cannot read ${file} as JSON (${(err as Error).message})`);
  }
  const bad = () => new Error(`--model-headers: ${file} must hold {"https://host/prefix": {"Header-Name": "value"}}`);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw bad();
  for (const [prefix, headers] of Object.entries(parsed)) {
    if (!/^https?:\/\/[^/]+/i.test(prefix) || typeof headers !== 'object' || headers === null || Array.isArray(headers)) throw bad();
    if (!Object.values(headers).every((v) => typeof v === 'string')) throw bad();
  }
  return parsed as Record<string, Record<string, string>>;
}

function headersFor(url: string, file: string | undefined): Record<string, string> {
  if (!file) return {};
  const out: Record<string, string> = {};
  for (const [prefix, headers] of Object.entries(readHeadersFile(file))) if (url.startsWith(prefix)) Object.assign(out, headers);
  return out;
}

/** Where an error from the network (not an HTTP answer) is a reason to retry. */
function transient(what: string, err: unknown): ModelError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return new ModelError(502, `uri: ${what}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
}

const redacted = (url: string) => url.replace(/\?.*$/, '?…');

/** https:// and http://: GET with a Range header, redirects followed by hand (a loop or more than 5 is an error). */
export class HttpSource implements RemoteSource {
  constructor(private readonly url: string, private readonly headersFile?: string) {}

  async open(offset: number, signal: AbortSignal, ifMatch?: string): Promise<SourceBody> {
    const seen = new Set<string>();
    let url = this.url;
    for (let hop = 0; ; hop++) {
      if (seen.has(url)) throw new ModelError(400, `uri: redirect loop: ${redacted(url)} redirects back to itself (via ${[...seen].map(redacted).join(' → ')})`);
      if (hop > MAX_REDIRECTS) throw new ModelError(400, `uri: more than ${MAX_REDIRECTS} redirects from ${redacted(this.url)}`);
      seen.add(url);
      const headers: Record<string, string> = { ...headersFor(url, this.headersFile), 'accept-encoding': 'identity' };
      if (offset > 0) headers.range = `bytes=${offset}-`;
      if (offset > 0 && ifMatch) headers['if-range'] = ifMatch;
      let res: Response;
      try {
        res = await fetch(url, { headers, redirect: 'manual', signal });
      } catch (err) {
        if (signal.aborted) throw err;
        throw transient(`cannot reach ${redacted(url)}`, err);
      }
      if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
        await res.body?.cancel();
        url = new URL(res.headers.get('location')!, url).toString();
        continue;
      }
      return this.answer(res, url, offset);
    }
  }

  private async answer(res: Response, url: string, offset: number): Promise<SourceBody> {
    const where = redacted(url);
    const etag = res.headers.get('etag') ?? undefined;
    if (res.status === 416 && offset > 0) {
      // Asked past the end: the file on disk is already whole (or longer than the source's: the sha256 check decides).
      await res.body?.cancel();
      const total = /\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1];
      return { body: empty(), start: offset, totalBytes: total ? Number(total) : offset, etag };
    }
    if (res.status === 404 || res.status === 410) {
      await res.body?.cancel();
      throw new ModelError(404, `uri: ${where} answered ${res.status} ${res.statusText || 'Not Found'}`);
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw new ModelError(400, `uri: ${where} answered ${res.status} ${res.statusText}: the store refused the agent (credentials go in the agent's --model-headers file)`);
    }
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      await res.body?.cancel();
      throw new ModelError(502, `uri: ${where} answered ${res.status} ${res.statusText}`);
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel();
      throw new ModelError(400, `uri: ${where} answered ${res.status} ${res.statusText}, expected 200 or 206`);
    }
    if (!res.body) throw new ModelError(502, `uri: ${where} answered ${res.status} without a body`);
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) !== offset) {
        await res.body.cancel();
        throw new ModelError(502, `uri: ${where} answered 206 with content-range '${res.headers.get('content-range')}', expected bytes ${offset}-…`);
      }
      return { body: res.body, start: offset, totalBytes: m[3] === '*' ? null : Number(m[3]), etag };
    }
    const len = res.headers.get('content-length');
    return { body: res.body, start: 0, totalBytes: len === null ? null : Number(len), etag };
  }
}

export async function* empty(): AsyncIterable<Uint8Array> {}

/**
 * The source of a remote model. The AWS SDK is loaded on the first s3:// download only, so an agent
 * that never downloads from S3 starts without it.
 */
export function remoteSource(src: Exclude<ModelSource, { scheme: 'file' }>, headersFile?: string): RemoteSource {
  if (src.scheme !== 's3') return new HttpSource(src.url, headersFile);
  return {
    open: async (offset, signal, ifMatch) => (await import('./s3Source.ts')).s3Source(src.bucket, src.key).open(offset, signal, ifMatch),
  };
}

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { parseModelUri, ModelUriError, type ModelSource } from '../../workflows/common/modelUri.ts';
import { sha256File } from '../inference/modelFile.ts';
import { formatBytes, ModelCache } from './cache.ts';
import { download } from './download.ts';
import { ModelError } from './errors.ts';
import type { ModelFetcher } from './fetcher.ts';
import { ProgressMeter, type DownloadStatus } from './progress.ts';
import { ModelRoots } from './roots.ts';
import { remoteSource, type RemoteSource } from './sources.ts';

/** How the agent gets model files (documented on AgentConfig.models). */
export interface ModelStoreOptions {
  /** Folders local model files may be loaded from (`--model-dir`). */
  roots: string[];
  /** The agent's data dir; the cache is `<dataDir>/models`. Without one, remote URIs are refused. */
  dataDir?: string;
  /** Most bytes the cache may hold (0: the disk's free space). */
  cacheBytes: number;
  /** JSON file of headers per URL prefix for https:// and http:// stores. */
  headersFile?: string;
  /** Most bytes per second a download fetches (0: no limit). */
  downloadBytesPerSecond: number;
  /** Tests: free bytes on the cache's disk. */
  freeBytes?: (dir: string) => number;
}

export interface ResolvedModel {
  path: string;
  sizeBytes: number;
  /** Where the file came from: a local root, the cache, or a download just now. */
  from: 'local' | 'cache' | 'download';
}

const MAX_DOWNLOADS_KEPT = 16;

/** Parses a model URI into its source, or ModelError 400 naming `uri`. */
export function modelSource(uri: string): ModelSource {
  try {
    return parseModelUri(uri);
  } catch (err) {
    if (err instanceof ModelUriError) throw new ModelError(400, `uri: ${err.message}`);
    throw err;
  }
}

/**
 * Where the agent's model files come from: local files under the model roots (checked before
 * anything is opened), or downloads (s3://, https://, http://) into the content-addressed cache,
 * verified before use. One download per sha256 at a time; a load and a prefetch of the same model
 * share it.
 */
export class ModelStore implements ModelFetcher {
  readonly roots: ModelRoots;
  readonly cache?: ModelCache;
  private readonly inflight = new Map<string, Promise<string>>();
  private readonly statuses = new Map<string, DownloadStatus>();
  private served?: string;
  /** The last prefetch target: wanted next, kept until another prefetch replaces it. */
  private desired?: string;
  /** The last load's target (until the next load or swap). */
  private loading?: string;
  private readonly closed = new AbortController();
  /** Tests and the simulator: the source for a URI (default: S3 or HTTP). */
  sourceFor: (src: Exclude<ModelSource, { scheme: 'file' }>) => RemoteSource;

  constructor(private readonly opts: ModelStoreOptions) {
    this.cache = opts.dataDir ? new ModelCache(join(opts.dataDir, 'models'), { maxBytes: opts.cacheBytes, freeBytes: opts.freeBytes }) : undefined;
    this.roots = new ModelRoots([...opts.roots, ...(this.cache ? [this.cache.dir] : [])]);
    this.sourceFor = (src) => remoteSource(src, opts.headersFile);
  }

  /** Served, desired (prefetched), loading and downloading models: never evicted. */
  pinned(): Set<string> {
    return new Set([this.served, this.desired, this.loading, ...this.inflight.keys()].filter((x): x is string => Boolean(x)));
  }

  /** The model now serving (after a swap). */
  setServed(sha256: string): void {
    this.served = sha256;
    if (this.loading === sha256) this.loading = undefined;
  }

  /** Downloads, newest first (progress of those under way; outcome of recent ones). */
  downloads(): DownloadStatus[] {
    return [...this.statuses.values()].reverse();
  }

  download(sha256: string): DownloadStatus | undefined {
    return this.statuses.get(sha256);
  }

  /** The file to load for (uri, sha256): verified, local or cached, downloading it first if needed. */
  async resolve(uri: string, sha256: string): Promise<ResolvedModel> {
    const src = modelSource(uri);
    if (src.scheme === 'file') return this.local(src.path, sha256);
    this.loading = sha256;
    const cache = this.needCache();
    if (cache.has(sha256)) {
      cache.touch(sha256, uri);
      return { path: cache.path(sha256), sizeBytes: statSync(cache.path(sha256)).size, from: 'cache' };
    }
    const path = await this.fetch(uri, sha256);
    return { path, sizeBytes: statSync(path).size, from: 'download' };
  }

  /**
   * Starts fetching (uri, sha256) into the cache while the agent keeps serving, and answers its
   * status at once. Idempotent: a model already cached answers `done`, one downloading its progress.
   * A local file needs no fetching: it is checked (roots, sha256) and answers `done`.
   */
  async prefetch(uri: string, sha256: string): Promise<DownloadStatus> {
    const src = modelSource(uri);
    if (src.scheme === 'file') {
      const r = await this.local(src.path, sha256);
      const now = new Date().toISOString();
      return { uri, sha256, state: 'done', bytes: r.sizeBytes, totalBytes: r.sizeBytes, resumedFromBytes: r.sizeBytes, bytesPerSecond: 0, etaSeconds: 0, requests: 0, startedAt: now, finishedAt: now };
    }
    const cache = this.needCache();
    this.desired = sha256;
    if (cache.has(sha256)) {
      cache.touch(sha256, uri);
      const size = statSync(cache.path(sha256)).size;
      const prior = this.statuses.get(sha256);
      if (prior?.state === 'done') return prior;
      const now = new Date().toISOString();
      return { uri, sha256, state: 'done', bytes: size, totalBytes: size, resumedFromBytes: size, bytesPerSecond: 0, etaSeconds: 0, requests: 0, startedAt: now, finishedAt: now };
    }
    void this.fetch(uri, sha256).catch(() => {
      /* kept in its status */
    });
    return this.statuses.get(sha256)!;
  }

  private needCache(): ModelCache {
    if (!this.cache) throw new ModelError(400, "uri: downloading a model needs the agent's --data-dir (the model cache lives there)");
    return this.cache;
  }

  private async local(path: string, sha256: string): Promise<ResolvedModel> {
    const real = this.roots.check(path);
    let sizeBytes: number;
    try {
      const st = statSync(real);
      if (!st.isFile()) throw new ModelError(400, `uri: ${path} is not a file`);
      sizeBytes = st.size;
    } catch (err) {
      if (err instanceof ModelError) throw err;
      throw new ModelError(404, `uri: no file at ${path}`);
    }
    const actual = await sha256File(real);
    if (actual !== sha256) throw new ModelError(409, `sha256: ${path} has sha256 ${actual}, expected ${sha256}; refusing to load it`);
    return { path: real, sizeBytes, from: 'local' };
  }

  /** One download per sha256; later callers share it. */
  private fetch(uri: string, sha256: string): Promise<string> {
    const running = this.inflight.get(sha256);
    if (running) return running;
    const cache = this.needCache();
    // A partial file of a model nobody wants any more only takes space: one resumable partial per wanted model.
    cache.dropPartials(new Set([...this.inflight.keys(), sha256]));
    const meter = new ProgressMeter(uri, sha256);
    this.statuses.delete(sha256);
    this.statuses.set(sha256, meter.status);
    while (this.statuses.size > MAX_DOWNLOADS_KEPT) this.statuses.delete(this.statuses.keys().next().value!);
    const src = modelSource(uri) as Exclude<ModelSource, { scheme: 'file' }>;
    const p = (async () => {
      try {
        await download(this.sourceFor(src), {
          uri,
          sha256,
          part: cache.partialPath(sha256),
          final: cache.path(sha256),
          meter,
          signal: this.closed.signal,
          bytesPerSecond: this.opts.downloadBytesPerSecond,
          reserve: async (total, onDisk) => {
            if (total !== null) cache.reserve(Math.max(0, total - onDisk), this.pinned(), `${uri} (${formatBytes(total)})`);
          },
        });
        cache.added(sha256, uri);
        meter.update(meter.status.bytes);
        meter.finish('done');
        cache.trim(this.pinned());
        return cache.path(sha256);
      } catch (err) {
        const e = err instanceof ModelError ? err : new ModelError(this.closed.signal.aborted ? 503 : 502, `uri: ${(err as Error).message}`);
        meter.finish('failed', { status: e.status, message: e.message });
        throw e;
      } finally {
        this.inflight.delete(sha256);
      }
    })();
    this.inflight.set(sha256, p);
    return p;
  }

  /** The cache for /health: usage, quota and models (pinned ones marked). */
  cacheView() {
    return this.cache?.view(this.pinned()) ?? null;
  }

  /** Stops downloads (their partial files stay for a resume after the restart). */
  close(): void {
    this.closed.abort();
  }
}

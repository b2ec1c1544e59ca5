import { setTimeout as sleep } from 'node:timers/promises';
import type { CacheView, ModelFetcher } from './fetcher.ts';
import { ModelError } from './errors.ts';
import { ProgressMeter, type DownloadStatus } from './progress.ts';
import { modelSource } from './store.ts';

/** Bytes a simulated remote model has (progress is reported against it). */
export const SIM_MODEL_BYTES = 4 * 2 ** 30;
const TICK_MS = 250;

/**
 * The fleet simulator's model store: a remote model (s3://, https://) "downloads" in
 * `downloadSeconds`, with progress, into an in-memory cache; local paths exist by name only.
 * Same sharing as the real store: a load and a prefetch of one model wait for one download.
 */
export class SimulatedModelStore implements ModelFetcher {
  private readonly cached = new Set<string>();
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly statuses = new Map<string, DownloadStatus>();
  private readonly closed = new AbortController();

  constructor(private readonly downloadSeconds: number) {}

  /** Waits for the model to be "on the node" (a remote one downloads first). */
  async resolve(uri: string, sha256: string): Promise<void> {
    if (modelSource(uri).scheme === 'file' || this.cached.has(sha256)) return;
    await this.fetch(uri, sha256);
  }

  async prefetch(uri: string, sha256: string): Promise<DownloadStatus> {
    if (modelSource(uri).scheme === 'file' || this.cached.has(sha256)) {
      const now = new Date().toISOString();
      return this.statuses.get(sha256) ?? { uri, sha256, state: 'done', bytes: 0, totalBytes: 0, resumedFromBytes: 0, bytesPerSecond: 0, etaSeconds: 0, requests: 0, startedAt: now, finishedAt: now };
    }
    void this.fetch(uri, sha256).catch(() => {});
    return this.statuses.get(sha256)!;
  }

  private fetch(uri: string, sha256: string): Promise<void> {
    const running = this.inflight.get(sha256);
    if (running) return running;
    const meter = new ProgressMeter(uri, sha256);
    meter.status.totalBytes = SIM_MODEL_BYTES;
    this.statuses.set(sha256, meter.status);
    const p = (async () => {
      const started = Date.now();
      const ms = this.downloadSeconds * 1000;
      try {
        for (;;) {
          const f = ms <= 0 ? 1 : Math.min(1, (Date.now() - started) / ms);
          meter.update(Math.round(f * SIM_MODEL_BYTES));
          if (f >= 1) break;
          await sleep(Math.min(TICK_MS, ms - (Date.now() - started)), undefined, { signal: this.closed.signal });
        }
        this.cached.add(sha256);
        meter.finish('done');
      } catch {
        meter.finish('failed', { status: 503, message: 'the agent is shutting down' });
        throw new ModelError(503, 'the agent is shutting down');
      } finally {
        this.inflight.delete(sha256);
      }
    })();
    this.inflight.set(sha256, p);
    return p;
  }

  downloads(): DownloadStatus[] {
    return [...this.statuses.values()].reverse();
  }

  download(sha256: string): DownloadStatus | undefined {
    return this.statuses.get(sha256);
  }

  cacheView(): CacheView | null {
    return null;
  }

  close(): void {
    this.closed.abort();
  }
}

import type { CacheEntryView } from './cache.ts';
import type { DownloadStatus } from './progress.ts';

export interface CacheView {
  dir: string;
  usedBytes: number;
  maxBytes: number;
  models: CacheEntryView[];
}

/** What the agent's HTTP API and metrics need from a model store (real: ModelStore; the simulator's: SimulatedModelStore). */
export interface ModelFetcher {
  /** Starts fetching a model into the cache while the agent serves; answers its status at once. */
  prefetch(uri: string, sha256: string): Promise<DownloadStatus>;
  /** Downloads, newest first. */
  downloads(): DownloadStatus[];
  download(sha256: string): DownloadStatus | undefined;
  cacheView(): CacheView | null;
  close(): void;
}

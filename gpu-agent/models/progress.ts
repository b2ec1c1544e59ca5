/** One download into the model cache, as /health, /model, /metrics and the swap activity report it. */
export interface DownloadStatus {
  uri: string;
  sha256: string;
  state: 'downloading' | 'verifying' | 'done' | 'failed';
  /** Bytes on disk so far (resumed bytes included). */
  bytes: number;
  /** The file's size when the source says it; null until then. */
  totalBytes: number | null;
  /** Bytes already on disk when this download started (a resume after a crash or a dropped connection). */
  resumedFromBytes: number;
  /** Over the last few seconds. */
  bytesPerSecond: number;
  /** Seconds left at the current rate; null when unknown. */
  etaSeconds: number | null;
  /** Requests made to the source (more than one: the connection dropped and the download resumed). */
  requests: number;
  startedAt: string;
  finishedAt?: string;
  error?: string;
  /** The HTTP status a failed download answers with. */
  status?: number;
}

const WINDOW_MS = 5000;

/** Tracks bytes over time for one download: rate over a sliding window, and ETA. */
export class ProgressMeter {
  readonly status: DownloadStatus;
  private samples: { at: number; bytes: number }[] = [];

  constructor(uri: string, sha256: string, private readonly now = () => Date.now()) {
    this.status = { uri, sha256, state: 'downloading', bytes: 0, totalBytes: null, resumedFromBytes: 0, bytesPerSecond: 0, etaSeconds: null, requests: 0, startedAt: new Date(now()).toISOString() };
  }

  /** Sets the bytes on disk (after a write, or at a resume). */
  update(bytes: number): void {
    const at = this.now();
    this.status.bytes = bytes;
    this.samples.push({ at, bytes });
    while (this.samples.length > 2 && this.samples[0].at < at - WINDOW_MS) this.samples.shift();
    const first = this.samples[0];
    const dt = (at - first.at) / 1000;
    this.status.bytesPerSecond = dt > 0 ? Math.round((bytes - first.bytes) / dt) : 0;
    const left = this.status.totalBytes === null ? null : Math.max(0, this.status.totalBytes - bytes);
    this.status.etaSeconds = left === null || this.status.bytesPerSecond <= 0 ? (left === 0 ? 0 : null) : Math.round((left / this.status.bytesPerSecond) * 10) / 10;
  }

  /** A fresh start of the rate window (after a reconnect the old samples would understate the rate). */
  restartWindow(): void {
    this.samples = [];
  }

  finish(state: 'done' | 'failed', error?: { status: number; message: string }): void {
    this.status.state = state;
    this.status.finishedAt = new Date(this.now()).toISOString();
    this.status.bytesPerSecond = 0;
    this.status.etaSeconds = state === 'done' ? 0 : null;
    if (error) {
      this.status.error = error.message;
      this.status.status = error.status;
    }
  }
}

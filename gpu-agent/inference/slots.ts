import type { LlamaContextSequence } from 'node-llama-cpp';

export class QueueFullError extends Error {}
export class QueueTimeoutError extends Error {}

interface Waiter {
  resolve: (s: LlamaContextSequence) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * N slots (context sequences of one context) and a bounded FIFO of requests waiting for one:
 * a full queue refuses at once (503), a request that waits longer than the timeout gives up (504).
 */
export class SlotPool {
  private free: LlamaContextSequence[];
  private waiters: Waiter[] = [];
  private idleListeners: (() => void)[] = [];

  constructor(readonly sequences: LlamaContextSequence[], private readonly queueSize: number, private readonly timeoutMs: number) {
    this.free = [...sequences];
  }

  get total(): number {
    return this.sequences.length;
  }
  get busy(): number {
    return this.sequences.length - this.free.length;
  }
  get queued(): number {
    return this.waiters.length;
  }

  acquire(signal?: AbortSignal): Promise<LlamaContextSequence> {
    const seq = this.free.pop();
    if (seq) return Promise.resolve(seq);
    if (this.waiters.length >= this.queueSize) {
      return Promise.reject(new QueueFullError(`all ${this.total} slots busy and ${this.queued} requests queued (queue size ${this.queueSize}): retry later`));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (s) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(s);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
        timer: setTimeout(() => {
          this.remove(waiter);
          waiter.reject(new QueueTimeoutError(`no slot became free within ${this.timeoutMs} ms`));
        }, this.timeoutMs),
      };
      const onAbort = () => {
        this.remove(waiter);
        waiter.reject(new Error(`request cancelled while queued: ${String(signal?.reason ?? 'aborted')}`));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(seq: LlamaContextSequence): void {
    const next = this.waiters.shift();
    if (next) {
      clearTimeout(next.timer);
      next.resolve(seq);
      return;
    }
    this.free.push(seq);
    if (this.busy === 0) for (const l of this.idleListeners.splice(0)) l();
  }

  /** Resolves once no slot is busy and nobody waits (used before disposing a replaced model). */
  idle(): Promise<void> {
    if (this.busy === 0 && this.queued === 0) return Promise.resolve();
    return new Promise((r) => this.idleListeners.push(r));
  }

  private remove(w: Waiter): void {
    clearTimeout(w.timer);
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
  }
}

/**
 * In-flight work on a node and its cordon / drain state machine:
 *   active --cordon--> cordoned --drain--> draining --(no work left)--> drained
 *   draining --(deadline passes)--> timed-out (work still running; force cancels it)
 *   any --uncordon--> active
 * The drain deadline is fixed by the first drain request, so a retried drain never extends it.
 * Every kind of work (inference requests, simulated jobs) is one tracked item, so a drain
 * waits for all of it and a forced drain cancels all of it.
 */
export type NodeState = 'active' | 'cordoned' | 'draining' | 'drained' | 'timed-out';

export interface DrainStatus {
  state: NodeState;
  inFlight: number;
  startedAt?: string;
  deadline?: string;
  cancelled: number;
  /** In-flight work by kind (e.g. inference, job), so progress says what is being waited for. */
  byKind: Record<string, number>;
}

/** A unit of in-flight work; call `done()` exactly when it ends (extra calls are ignored). */
export interface WorkItem {
  readonly id: number;
  readonly kind: string;
  done(): void;
}

interface Entry {
  kind: string;
  cancel: () => void;
}

export class CordonedError extends Error {
  constructor(readonly state: NodeState) {
    super(`node is ${state}: not accepting new work`);
  }
}

export class WorkTracker {
  private items = new Map<number, Entry>();
  private nextId = 1;
  private state: NodeState = 'active';
  private drainStartedAt?: Date;
  private drainDeadline?: Date;
  private cancelled = 0;
  private loadTimer?: NodeJS.Timeout;
  /** Long-polling drain requests, woken whenever work ends or the node is uncordoned. */
  private waiters = new Set<() => void>();

  constructor(private readonly onChange: (inFlight: number) => void = () => {}) {}

  get inFlight(): number {
    return this.items.size;
  }

  get accepting(): boolean {
    return this.state === 'active';
  }

  /**
   * Registers new work; throws CordonedError unless the node accepts work.
   * `cancel` is called when a forced drain (or shutdown) cancels it; the item then counts as done.
   */
  begin(kind: string, cancel: () => void): WorkItem {
    if (!this.accepting) throw new CordonedError(this.state);
    const id = this.nextId++;
    this.items.set(id, { kind, cancel });
    this.onChange(this.items.size);
    return { id, kind, done: () => this.end(id) };
  }

  /** Runs a simulated job for `seconds`; resolves when it finishes or is cancelled by a forced drain. */
  run(seconds: number): Promise<'done' | 'cancelled'> {
    let timer: NodeJS.Timeout | undefined;
    let settle: (o: 'done' | 'cancelled') => void = () => {};
    const item = this.begin('job', () => {
      clearTimeout(timer);
      settle('cancelled');
    });
    return new Promise((resolve) => {
      settle = resolve;
      timer = setTimeout(() => {
        item.done();
        resolve('done');
      }, seconds * 1000);
    });
  }

  /** Keeps `concurrency` simulated jobs of `seconds` each running while the node accepts work. */
  simulateLoad(concurrency: number, seconds: number): void {
    if (concurrency <= 0) return;
    const top = () => {
      while (this.accepting && this.countKind('job') < concurrency) void this.run(seconds);
    };
    top();
    this.loadTimer = setInterval(top, 250);
    this.loadTimer.unref();
  }

  cordon(): DrainStatus {
    if (this.state === 'active') this.state = 'cordoned';
    return this.status();
  }

  uncordon(): DrainStatus {
    this.state = 'active';
    this.drainStartedAt = undefined;
    this.drainDeadline = undefined;
    this.wake();
    return this.status();
  }

  /** Starts (or continues) a drain; `force` cancels whatever is still running. */
  drain(timeoutSeconds: number, force: boolean): DrainStatus {
    if (this.state === 'active' || this.state === 'cordoned') {
      this.state = 'draining';
      this.drainStartedAt = new Date();
      this.drainDeadline = new Date(this.drainStartedAt.getTime() + timeoutSeconds * 1000);
    }
    if (force) this.cancelAll();
    return this.status();
  }

  /**
   * The drain status once it settles (drained or past its deadline), or after `ms` at most, so a
   * caller learns the moment a drain finishes without polling.
   */
  async settled(ms: number): Promise<DrainStatus> {
    const now = this.status();
    if (now.state !== 'draining' || ms <= 0) return now;
    const untilDeadline = this.drainDeadline ? Math.max(0, this.drainDeadline.getTime() - Date.now()) : ms;
    await new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.min(ms, untilDeadline + 1));
      this.waiters.add(wake);
    });
    return this.status();
  }

  status(): DrainStatus {
    if (this.state === 'draining' || this.state === 'timed-out') {
      if (this.items.size === 0) this.state = 'drained';
      else if (this.drainDeadline && Date.now() >= this.drainDeadline.getTime()) this.state = 'timed-out';
    }
    const byKind: Record<string, number> = {};
    for (const e of this.items.values()) byKind[e.kind] = (byKind[e.kind] ?? 0) + 1;
    return {
      state: this.state,
      inFlight: this.items.size,
      startedAt: this.drainStartedAt?.toISOString(),
      deadline: this.drainDeadline?.toISOString(),
      cancelled: this.cancelled,
      byKind,
    };
  }

  stop(): void {
    if (this.loadTimer) clearInterval(this.loadTimer);
    this.cancelAll();
  }

  private countKind(kind: string): number {
    let n = 0;
    for (const e of this.items.values()) if (e.kind === kind) n++;
    return n;
  }

  private cancelAll(): void {
    for (const [id, e] of [...this.items]) {
      if (!this.items.has(id)) continue;
      this.cancelled++;
      this.end(id);
      e.cancel();
    }
  }

  private end(id: number): void {
    if (!this.items.delete(id)) return;
    this.onChange(this.items.size);
    if (this.items.size === 0) this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

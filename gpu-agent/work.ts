/**
 * In-flight work on a node and its cordon / drain state machine:
 *   active --cordon--> cordoned --drain--> draining --(no work left)--> drained
 *   draining --(deadline passes)--> timed-out (work still running; force cancels it)
 *   any --uncordon--> active
 * The drain deadline is fixed by the first drain request, so a retried drain never extends it.
 */
export type NodeState = 'active' | 'cordoned' | 'draining' | 'drained' | 'timed-out';

export interface DrainStatus {
  state: NodeState;
  inFlight: number;
  startedAt?: string;
  deadline?: string;
  cancelled: number;
}

interface Job {
  id: number;
  timer: NodeJS.Timeout;
  resolve: (outcome: 'done' | 'cancelled') => void;
}

export class CordonedError extends Error {
  constructor(readonly state: NodeState) {
    super(`node is ${state}: not accepting new work`);
  }
}

export class WorkTracker {
  private jobs = new Map<number, Job>();
  private nextId = 1;
  private state: NodeState = 'active';
  private drainStartedAt?: Date;
  private drainDeadline?: Date;
  private cancelled = 0;
  private loadTimer?: NodeJS.Timeout;

  constructor(private readonly onChange: (inFlight: number) => void = () => {}) {}

  get inFlight(): number {
    return this.jobs.size;
  }

  get accepting(): boolean {
    return this.state === 'active';
  }

  /** Runs a job for `seconds`; resolves when it finishes or is cancelled by a forced drain. */
  run(seconds: number): Promise<'done' | 'cancelled'> {
    if (!this.accepting) throw new CordonedError(this.state);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.finish(id, 'done'), seconds * 1000);
      this.jobs.set(id, { id, timer, resolve });
      this.onChange(this.jobs.size);
    });
  }

  /** Keeps `concurrency` simulated jobs of `seconds` each running while the node accepts work. */
  simulateLoad(concurrency: number, seconds: number): void {
    if (concurrency <= 0) return;
    const top = () => {
      while (this.accepting && this.jobs.size < concurrency) void this.run(seconds);
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
    return this.status();
  }

  /** Starts (or continues) a drain; `force` cancels whatever is still running. */
  drain(timeoutSeconds: number, force: boolean): DrainStatus {
    if (this.state === 'active' || this.state === 'cordoned') {
      this.state = 'draining';
      this.drainStartedAt = new Date();
      this.drainDeadline = new Date(this.drainStartedAt.getTime() + timeoutSeconds * 1000);
    }
    if (force) for (const id of [...this.jobs.keys()]) this.finish(id, 'cancelled');
    return this.status();
  }

  status(): DrainStatus {
    if (this.state === 'draining' || this.state === 'timed-out') {
      if (this.jobs.size === 0) this.state = 'drained';
      else if (this.drainDeadline && Date.now() >= this.drainDeadline.getTime()) this.state = 'timed-out';
    }
    return {
      state: this.state,
      inFlight: this.jobs.size,
      startedAt: this.drainStartedAt?.toISOString(),
      deadline: this.drainDeadline?.toISOString(),
      cancelled: this.cancelled,
    };
  }

  stop(): void {
    if (this.loadTimer) clearInterval(this.loadTimer);
    for (const id of [...this.jobs.keys()]) this.finish(id, 'cancelled');
  }

  private finish(id: number, outcome: 'done' | 'cancelled'): void {
    const job = this.jobs.get(id);
    if (!job) return;
    clearTimeout(job.timer);
    this.jobs.delete(id);
    if (outcome === 'cancelled') this.cancelled++;
    job.resolve(outcome);
    this.onChange(this.jobs.size);
  }
}

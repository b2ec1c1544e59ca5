import { condition } from '@temporalio/workflow';
import { failureMessage } from '../common/failure.ts';
import { isRemoteModelUri } from '../common/modelUri.ts';
import { resolveAmount } from '../inputs/validate.ts';
import type { RolloutNode } from './api.ts';
import type { Rollout } from './runtime.ts';

type Outcome = { ok: true } | { ok: false; error: string; cause: unknown };

/**
 * Prefetch for the rolling strategy: nodes download the target (a remote model) while they still
 * serve, in the order they will walk, at most `limit` at once, so that when a node's turn comes its
 * cordon → drain → swap → smoke covers only the load. A node whose turn comes before its download
 * finished waits for it, still serving, before it is cordoned.
 */
export class Prefetcher {
  private readonly outcomes = new Map<string, Promise<Outcome>>();
  private running = 0;
  private stopped = false;

  private constructor(private readonly rt: Rollout) {}

  /** A prefetcher when the target is remote and prefetch is not 0; undefined otherwise (the swap downloads). */
  static forRollout(rt: Rollout): Prefetcher | undefined {
    if (!isRemoteModelUri(rt.cfg.target.model.uri)) return undefined;
    const p = new Prefetcher(rt);
    return p.limit() > 0 ? p : undefined;
  }

  /** Most downloads at once: the `prefetch` setting, by default two batches. */
  limit(): number {
    const total = Math.max(this.rt.st.nodes.length, 1);
    const a = this.rt.cfg.prefetch;
    return a === undefined ? 2 * this.rt.st.maxUnavailable : resolveAmount(a, total, 'up');
  }

  /** Starts downloads for the next pending nodes as slots free up, until stop(). */
  async run(): Promise<void> {
    this.rt.event(`prefetching ${this.rt.cfg.target.model.uri} on up to ${this.limit()} node(s) at once while they serve`);
    for (;;) {
      await condition(() => this.stopped || (this.running < this.limit() && this.next() !== undefined));
      if (this.stopped) return;
      this.start(this.next()!);
    }
  }

  stop(): void {
    this.stopped = true;
  }

  private next(): RolloutNode | undefined {
    return this.rt.st.nodes.find((n) => n.state === 'pending' && n.direction === 'forward' && !this.outcomes.has(n.id) && n.role !== 'green');
  }

  private start(n: RolloutNode): Promise<Outcome> {
    const { rt } = this;
    this.running++;
    n.prefetch = { state: 'prefetching' };
    rt.publish();
    const model = rt.cfg.target.model;
    const p: Promise<Outcome> = rt.acts.prefetch.prefetchModel
      .executeWithOptions({ summary: `prefetch ${model.sha256.slice(0, 12)} on ${n.id} while it serves` }, [{ pool: rt.cfg.pool, nodeId: n.id, model }])
      .then(
        (r): Outcome => {
          n.prefetch = r;
          return { ok: true };
        },
        (err: unknown): Outcome => {
          const error = failureMessage(err);
          n.prefetch = { state: 'failed', error };
          return { ok: false, error, cause: err };
        },
      )
      .finally(() => {
        this.running--;
        rt.publish();
      });
    this.outcomes.set(n.id, p);
    return p;
  }

  /**
   * Waits until the node holds the target in its cache (starting its download now if it had not
   * started); a failed download is reported once, and a retried node downloads again.
   */
  async ready(n: RolloutNode): Promise<Outcome> {
    const p = this.outcomes.get(n.id) ?? this.start(n);
    const r = await p;
    if (!r.ok) this.outcomes.delete(n.id);
    return r;
  }
}

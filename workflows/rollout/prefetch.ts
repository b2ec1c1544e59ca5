import { CancellationScope, condition, isCancellation } from '@temporalio/workflow';
import { failureMessage } from '../common/failure.ts';
import { isRemoteModelUri } from '../common/modelUri.ts';
import { resolveAmount } from '../inputs/validate.ts';
import type { NodePrefetch, RolloutNode } from './api.ts';
import type { Rollout } from './runtime.ts';

type Outcome = { ok: true } | { ok: false; error: string; cause?: unknown };

/**
 * Prefetch for the rolling strategy: nodes download the target (a remote model) while they still
 * serve, in the order they will walk, at most `limit` at once, so that when a node's turn comes its
 * cordon → drain → swap → smoke covers only the load. A node whose turn comes before its download
 * finished waits for it, still serving, before it is cordoned.
 *
 * Each download is started by a short activity (startPrefetch), and one activity (awaitPrefetches)
 * follows all of them and returns when any ends: a thousand downloading nodes hold one worker slot,
 * and the history grows by a few events per node.
 */
export class Prefetcher {
  private readonly waiters = new Map<string, { done: Promise<Outcome>; settle: (o: Outcome) => void }>();
  /** Downloading now (started, not ended), with when each started. */
  private readonly active = new Map<string, number>();
  /** Nodes whose turn came before their download started: they go first. */
  private readonly urgent: string[] = [];
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
    const a = this.rt.cfg.prefetch;
    return a === undefined ? 2 * this.rt.st.maxUnavailable : resolveAmount(a, Math.max(this.rt.st.nodes.length, 1), 'up');
  }

  stop(): void {
    this.stopped = true;
  }

  /** The next node to start: an urgent one, else the first pending node in walk order with no download yet. */
  private next(): RolloutNode | undefined {
    const byId = (id: string) => this.rt.st.nodes.find((n) => n.id === id);
    const urgent = this.urgent.map(byId).find((n) => n && !this.active.has(n.id));
    if (urgent) return urgent;
    if (this.active.size >= this.limit()) return undefined;
    return this.rt.st.nodes.find((n) => n.state === 'pending' && n.direction === 'forward' && !this.waiters.has(n.id) && !this.active.has(n.id));
  }

  private waiter(id: string) {
    let w = this.waiters.get(id);
    if (!w) {
      let settle!: (o: Outcome) => void;
      const done = new Promise<Outcome>((r) => (settle = r));
      w = { done, settle };
      this.waiters.set(id, w);
    }
    return w;
  }

  private end(n: RolloutNode, result: NodePrefetch, cause?: unknown): void {
    this.active.delete(n.id);
    const i = this.urgent.indexOf(n.id);
    if (i >= 0) this.urgent.splice(i, 1);
    n.prefetch = result;
    this.rt.publish();
    this.waiter(n.id).settle(result.state === 'failed' ? { ok: false, error: result.error ?? 'prefetch failed', cause } : { ok: true });
  }

  /** Starts downloads as slots free up and follows them, until stop(). */
  async run(): Promise<void> {
    const { rt } = this;
    const model = rt.cfg.target.model;
    rt.event(`prefetching ${model.uri} on up to ${this.limit()} node(s) at once while they serve`);
    for (;;) {
      // Start what may start (each a quick activity), in walk order.
      const starting: Promise<void>[] = [];
      for (let n = this.next(); n && !this.stopped; n = this.next()) {
        const node = n;
        this.waiter(node.id);
        this.active.set(node.id, Date.now());
        node.prefetch = { state: 'prefetching' };
        starting.push(
          rt.acts.rollout.startPrefetch.executeWithOptions({ summary: `prefetch ${model.sha256.slice(0, 12)} on ${node.id} while it serves` }, [{ pool: rt.cfg.pool, nodeId: node.id, model }]).then(
            (r) => (r.state === 'ready' ? this.end(node, r) : undefined),
            (err: unknown) => this.end(node, { state: 'failed', error: failureMessage(err) }, err),
          ),
        );
      }
      rt.publish();
      await Promise.all(starting);
      if (this.stopped) return;
      if (this.active.size === 0) {
        await condition(() => this.stopped || this.next() !== undefined);
        if (this.stopped) return;
        continue;
      }
      // Follow every active download until one ends, or a node must join the watch (it is urgent, or a slot freed).
      const watched = [...this.active.keys()];
      const scope = new CancellationScope();
      const watch = scope.run(() =>
        rt.acts.prefetch.awaitPrefetches.executeWithOptions({ summary: `follow ${watched.length} download(s) of ${model.sha256.slice(0, 12)}` }, [
          { pool: rt.cfg.pool, nodes: watched, model, startedAt: Object.fromEntries([...this.active].filter(([id]) => watched.includes(id))) },
        ]),
      );
      let watching = true;
      void condition(() => !watching || this.stopped || this.urgent.some((id) => !this.active.has(id))).then(() => {
        if (watching) scope.cancel();
      });
      try {
        for (const e of await watch) {
          const n = rt.st.nodes.find((x) => x.id === e.nodeId);
          if (n) this.end(n, e.result);
        }
      } catch (err) {
        if (!isCancellation(err)) {
          // The watch itself failed (its retries ran out): every watched download fails with it.
          for (const id of watched) {
            const n = rt.st.nodes.find((x) => x.id === id);
            if (n && this.active.has(id)) this.end(n, { state: 'failed', error: failureMessage(err) }, err);
          }
        }
      }
      watching = false;
      if (this.stopped) return;
    }
  }

  /**
   * Waits until the node holds the target in its cache (starting its download now if it had not
   * started); a failed download is reported once, and a retried node downloads again.
   */
  async ready(n: RolloutNode): Promise<Outcome> {
    if (n.prefetch?.state === 'ready' && !this.active.has(n.id)) return { ok: true };
    const w = this.waiter(n.id);
    if (!this.active.has(n.id) && !this.urgent.includes(n.id)) this.urgent.push(n.id);
    const r = await w.done;
    if (!r.ok) this.waiters.delete(n.id);
    return r;
  }
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { HttpError, sendJson } from './http.ts';

/**
 * The health watch (`GET /health/watch?since=<revision>&waitSeconds=N`): a long-poll that answers
 * at once when the node's health, its cordon / drain state or its serving model changed since
 * `since`, and otherwise when one of those changes or `waitSeconds` pass. Every change bumps a
 * revision number, so a caller that passes the last revision it saw never misses a change between
 * two calls (several changes in between answer with the latest state and the latest revision).
 *
 * What the agent does pokes the watch (an XID from the kernel log, a cordon, a model swap, an
 * injected fault); a poke re-evaluates health over the last GPU snapshot (no nvidia-smi run, so
 * an XID reaches a waiting caller within milliseconds). While anyone waits, the watch also
 * refreshes with a fresh snapshot every `refreshMs` (telemetry such as temperature has no event).
 */
export const MAX_WATCH_WAIT_SECONDS = 60;
export const DEFAULT_WATCH_WAIT_SECONDS = 25;

/** What the watch compares and answers with (a subset of /health). */
export interface WatchState {
  nodeId: string;
  status: 'healthy' | 'degraded' | 'unhealthy';
  reasons: string[];
  drain: { state: string; inFlight: number };
  model: { id: string; uri: string; sha256: string } | null;
}

export interface WatchAnswer extends WatchState {
  /** Changes once per agent start: a caller that passes another epoch gets an answer at once (revisions restart at 1). */
  epoch: string;
  revision: number;
  /** false: waitSeconds passed with nothing new since `since`. */
  changed: boolean;
}

/** `fresh`: take a new GPU snapshot; otherwise re-judge the last one with the current XIDs, drain state and model. */
export type ReadState = (fresh: boolean) => Promise<WatchState>;

const keyOf = (s: WatchState) => JSON.stringify([s.status, s.reasons, s.drain.state, s.model?.sha256 ?? null]);

export class HealthWatch {
  revision = 0;
  readonly epoch = randomBytes(6).toString('hex');
  private state?: WatchState;
  private key?: string;
  private waiters = new Set<() => void>();
  private running?: Promise<void>;
  private again: boolean | undefined;
  private timer?: NodeJS.Timeout;

  constructor(private readonly read: ReadState, private readonly refreshMs = 1000) {}

  /** Something on the node changed: re-evaluate (coalesced: one evaluation at a time, one more after it if poked meanwhile). */
  poke(fresh = false): Promise<void> {
    if (this.running) {
      this.again = (this.again ?? false) || fresh;
      return this.running;
    }
    this.running = (async () => {
      let f = fresh;
      for (;;) {
        try {
          this.update(await this.read(f));
        } catch {
          /* a failed read changes nothing; the next poke or refresh tries again */
        }
        if (this.again === undefined) break;
        f = this.again;
        this.again = undefined;
      }
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private update(s: WatchState): void {
    const key = keyOf(s);
    this.state = s;
    if (key === this.key) return;
    this.key = key;
    this.revision++;
    for (const w of [...this.waiters]) w();
  }

  /**
   * The state once the revision passes `since`, or after `ms` at most (then `changed` is false), or
   * when `signal` aborts. A `since` from another epoch (or above the revision) answers at once.
   */
  async wait(since: number, ms: number, epoch?: string, signal?: AbortSignal): Promise<WatchAnswer> {
    if (!this.state) await this.poke(true);
    const stale = (epoch !== undefined && epoch !== this.epoch) || since > this.revision;
    if (!stale && this.revision <= since && ms > 0 && !signal?.aborted) {
      this.startRefresh();
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(t);
          this.waiters.delete(wake);
          if (this.waiters.size === 0) this.stopRefresh();
          resolve();
        };
        const t = setTimeout(wake, ms);
        this.waiters.add(wake);
        signal?.addEventListener('abort', wake, { once: true });
      });
    }
    return { ...this.state!, epoch: this.epoch, revision: this.revision, changed: stale || this.revision > since };
  }

  private startRefresh(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.poke(true), this.refreshMs);
    this.timer.unref();
  }

  private stopRefresh(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Wakes every caller (they answer with what they have) and stops refreshing: the agent is closing. */
  close(): void {
    for (const w of [...this.waiters]) w();
    this.stopRefresh();
  }
}

function intParam(q: URLSearchParams, name: string, min: number, max: number, fallback: number): number {
  const raw = q.get(name);
  if (raw === null) return fallback;
  const v = Number(raw);
  if (!/^\d+$/.test(raw) || v < min || v > max) throw new HttpError(400, `${name}: expected an integer ${min}..${max}, got '${raw}'`);
  return v;
}

/** The route: parses `since` and `waitSeconds` (400 naming the parameter when bad) and answers the long-poll. */
export async function watchRoute(watch: HealthWatch, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const q = new URL(req.url ?? '/', 'http://agent').searchParams;
  for (const k of q.keys()) if (!['since', 'waitSeconds', 'epoch'].includes(k)) throw new HttpError(400, `${k}: unknown parameter (allowed: since, waitSeconds, epoch)`);
  const since = intParam(q, 'since', 0, Number.MAX_SAFE_INTEGER, 0);
  const waitSeconds = intParam(q, 'waitSeconds', 0, MAX_WATCH_WAIT_SECONDS, DEFAULT_WATCH_WAIT_SECONDS);
  const epoch = q.get('epoch') ?? undefined;
  // A caller that went away stops the wait (nothing holds on to it for the rest of waitSeconds).
  const gone = new AbortController();
  res.once('close', () => gone.abort());
  const answer = await watch.wait(since, waitSeconds * 1000, epoch, gone.signal);
  if (!gone.signal.aborted) sendJson(res, 200, answer);
}

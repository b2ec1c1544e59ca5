import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Context } from '@temporalio/activity';
import type { ProbeHealth } from '../../workflows/common/digest.ts';
import { DEAD_AT_PROVIDER, HEALTH_CHANGES_SIGNAL, type HealthChange, type HealthChanges } from '../../workflows/common/health.ts';
import type { NodeActivityDeps } from '../nodes.ts';
import { nodeAccess } from '../nodes.ts';
import { WORKFLOW_ID_HEADER } from '../agentClient.ts';
import type { NodeInstance } from '../providers/types.ts';

export interface WatchPoolInput {
  pool: string;
  /** The longest one long-poll waits at the agent (its waitSeconds). */
  waitSeconds: number;
  /** At most this many agents watched at once (the rest are left to the periodic probe). */
  concurrency: number;
  /** Changes are held this long at most before one signal carries them all. */
  batchMs: number;
  /** How often the provider's list is read again (members come and go). */
  relistSeconds: number;
  /** The activity returns after this long; the workflow starts the next one (bounded activity life). */
  maxSeconds: number;
}

export interface WatchPoolResult {
  watched: number;
  signals: number;
  changes: number;
}

export { WATCH_DEFAULTS } from '../../workflows/common/health.ts';

const MAX_REASONS = 3;
/** Failed watch calls in a row before a node is reported unreachable (one failure can be a restart of the connection). */
const UNREACHABLE_AFTER_FAILURES = 2;
const HEARTBEAT_MS = 5000;

interface Answer {
  epoch: string;
  revision: number;
  status: 'healthy' | 'degraded' | 'unhealthy';
  reasons: string[];
  drain: { state: string };
}

class WatchHttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/**
 * One long-poll per member (GET /health/watch) from one long-running, heartbeating activity:
 * bounded concurrency, one keep-alive connection pool for every agent, changes batched for at most
 * `batchMs` and handed to the pool workflow by signal. Only changes travel: a node's first answer
 * is sent only when it is not healthy (the probe already told the workflow the rest), later ones
 * only when health or reasons differ from what was last sent.
 */
export function createWatchActivities(deps: NodeActivityDeps) {
  const { pool } = nodeAccess(deps);

  return {
    async watchPool(input: WatchPoolInput): Promise<WatchPoolResult> {
      const ctx = Context.current();
      const workflowId = ctx.info.workflowExecution?.workflowId ?? `pool/${input.pool}`;
      const { provider } = pool(input.pool);
      const http = new HttpAgent({ keepAlive: true, maxSockets: input.concurrency });
      const https = new HttpsAgent({ keepAlive: true, maxSockets: input.concurrency });
      const stop = new AbortController();
      const following = new Map<string, { url: string; abort: AbortController }>();
      const sent = new Map<string, string>();
      let batch = new Map<string, HealthChange>();
      let flushTimer: NodeJS.Timeout | undefined;
      let sending: Promise<void> = Promise.resolve();
      const stats: WatchPoolResult = { watched: 0, signals: 0, changes: 0 };
      let signalError: unknown;

      const flush = () => {
        flushTimer = undefined;
        if (batch.size === 0) return;
        const payload: HealthChanges = { changes: [...batch.values()] };
        batch = new Map();
        sending = sending.then(async () => {
          try {
            await ctx.client.workflow.getHandle(workflowId).signal(HEALTH_CHANGES_SIGNAL, payload);
            stats.signals++;
            stats.changes += payload.changes.length;
          } catch (err) {
            signalError = err; // the workflow is gone (or the server): end, the workflow starts another watch
            stop.abort();
          }
        });
      };
      const report = (id: string, health: ProbeHealth, reasons: string[] | undefined, drain: string | undefined, first: boolean) => {
        const key = JSON.stringify([health, reasons ?? []]);
        const before = sent.get(id);
        sent.set(id, key);
        if (before === key || (first && before === undefined && health === 'healthy')) return;
        batch.set(id, { id, health, ...(reasons ? { reasons } : {}), ...(drain ? { drain } : {}), at: Date.now() });
        flushTimer ??= setTimeout(flush, input.batchMs);
      };

      const get = (url: string, token: string, signal: AbortSignal): Promise<Answer> =>
        new Promise((resolve, reject) => {
          const u = new URL(url);
          const secure = u.protocol === 'https:';
          const req = (secure ? httpsRequest : httpRequest)(
            u,
            { method: 'GET', agent: secure ? https : http, headers: { authorization: `Bearer ${token}`, [WORKFLOW_ID_HEADER]: workflowId }, signal, timeout: (input.waitSeconds + 10) * 1000 },
            (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () => {
                const text = Buffer.concat(chunks).toString('utf8');
                if (res.statusCode !== 200) return reject(new WatchHttpError(res.statusCode ?? 0, `agent answered ${res.statusCode}: ${text.slice(0, 200)}`));
                try {
                  resolve(JSON.parse(text) as Answer);
                } catch (err) {
                  reject(err as Error);
                }
              });
              res.on('error', reject);
            },
          );
          req.on('timeout', () => req.destroy(new Error('watch timed out')));
          req.on('error', reject);
          req.end();
        });

      const follow = async (id: string, url: string, abort: AbortController) => {
        let since = 0;
        let epoch: string | undefined;
        let failures = 0;
        let first = true;
        // The node's own control token (one per key during a rotation: the next is tried after a 401).
        const tokens = deps.pools.auth.tokensFor(input.pool, id);
        let tokenIndex = 0;
        while (!abort.signal.aborted) {
          try {
            const q = `since=${since}&waitSeconds=${input.waitSeconds}${epoch ? `&epoch=${epoch}` : ''}`;
            const a = await get(`${url}/health/watch?${q}`, tokens[tokenIndex], abort.signal);
            failures = 0;
            since = a.revision;
            epoch = a.epoch;
            const reasons = a.status === 'healthy' ? undefined : a.reasons.slice(0, MAX_REASONS).map((r) => r.slice(0, 160));
            report(id, a.status, reasons, a.drain.state, first);
            first = false;
          } catch (err) {
            if (abort.signal.aborted) return;
            // An agent without the watch (older version, 404) or refusing it: the periodic probe covers it.
            if (err instanceof WatchHttpError && err.status === 401 && tokenIndex + 1 < tokens.length) {
              tokenIndex++;
              continue;
            }
            if (err instanceof WatchHttpError && err.status >= 400 && err.status < 500) return;
            failures++;
            if (failures >= UNREACHABLE_AFTER_FAILURES) report(id, 'unreachable', [`agent did not answer the watch: ${(err as Error).message}`.slice(0, 160)], undefined, false);
            await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** failures)));
          }
        }
      };

      const relist = async () => {
        let nodes: NodeInstance[];
        try {
          nodes = await provider.list(input.pool);
        } catch {
          return; // the next relist tries again; the probe reports provider trouble
        }
        const live = new Set<string>();
        for (const n of nodes.sort((x, y) => x.id.localeCompare(y.id))) {
          live.add(n.id);
          if (n.dead) {
            report(n.id, 'unreachable', [`${DEAD_AT_PROVIDER}${n.dead.reason}`.slice(0, 160)], undefined, false);
            following.get(n.id)?.abort.abort();
            following.delete(n.id);
            continue;
          }
          const f = following.get(n.id);
          if (f && f.url === n.agentUrl) continue;
          f?.abort.abort();
          following.delete(n.id);
          if (!n.agentUrl || following.size >= input.concurrency) continue;
          const abort = new AbortController();
          following.set(n.id, { url: n.agentUrl, abort });
          void follow(n.id, n.agentUrl, abort);
        }
        for (const [id, f] of following) {
          if (live.has(id)) continue;
          f.abort.abort();
          following.delete(id);
          sent.delete(id);
        }
        stats.watched = Math.max(stats.watched, following.size);
      };

      const ended = Date.now() + input.maxSeconds * 1000;
      let nextList = 0;
      try {
        while (!stop.signal.aborted && Date.now() < ended) {
          if (Date.now() >= nextList) {
            await relist();
            nextList = Date.now() + input.relistSeconds * 1000;
          }
          ctx.heartbeat({ watched: following.size, signals: stats.signals, changes: stats.changes });
          // Wakes on cancellation (delivered with a heartbeat's answer) or after the heartbeat interval.
          await Promise.race([ctx.cancelled.catch(() => undefined), new Promise((r) => setTimeout(r, Math.min(HEARTBEAT_MS, input.relistSeconds * 1000)))]);
          if (ctx.cancellationSignal.aborted) break;
        }
      } finally {
        for (const f of following.values()) f.abort.abort();
        if (flushTimer) clearTimeout(flushTimer);
        if (!ctx.cancellationSignal.aborted) flush();
        await sending;
        http.destroy();
        https.destroy();
      }
      if (ctx.cancellationSignal.aborted) await ctx.cancelled; // rethrows the cancellation
      if (signalError) throw signalError;
      return stats;
    },
  };
}

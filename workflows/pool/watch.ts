import { CancellationScope, defineSignal, isCancellation, proxyActivities, sleep } from '@temporalio/workflow';
import type { PoolActivities } from '../../activities/pool/index.ts';
import { failureMessage } from '../common/failure.ts';
import { HEALTH_CHANGES_SIGNAL, WATCH_DEFAULTS, type HealthChanges } from '../common/health.ts';
import { recordBad } from './breaker.ts';
import { advanceClock } from './clock.ts';
import type { PoolContext } from './context.ts';

/**
 * The pool's side of the health watch (activities/pool/watch.ts): one long-running activity keeps a
 * long-poll open on every agent and signals only changes; this file starts it (and restarts it when
 * it ends or fails), stops it before continue-as-new, and applies what it signals.
 */
export const healthChangesSignal = defineSignal<[HealthChanges]>(HEALTH_CHANGES_SIGNAL);

/** Applies a batch of changes to members (not to the probe's view, which stays the probe activity's mirror). */
export function applyWatch(ctx: PoolContext, { changes }: HealthChanges): void {
  const { state: s } = ctx;
  for (const c of changes) advanceClock(ctx, c.at);
  const t = ctx.now();
  for (const c of changes) {
    const n = s.nodes[c.id];
    if (!n || n.phase === 'replacing' || n.phase === 'leaving' || n.phase === 'rebooting') continue;
    const same = n.health === c.health && JSON.stringify(n.reasons ?? []) === JSON.stringify(c.reasons ?? []);
    if (same) continue;
    const was = n.health;
    n.health = c.health;
    n.watchedAt = t;
    if (c.health === 'healthy') delete n.reasons;
    else if (c.reasons) n.reasons = c.reasons;
    if (c.health === 'unreachable') n.unreachableSince ??= t;
    else delete n.unreachableSince;
    n.badProbes = c.health === 'unhealthy' ? Math.max(1, n.badProbes) : 0;
    if (was === c.health) continue;
    if ((c.health === 'unhealthy' || c.health === 'unreachable') && (n.phase === 'active' || n.phase === 'cordoned')) {
      n.badSince = t;
      s.breaker = recordBad(s.breaker, n.id, t);
      ctx.event(`${c.health}: ${(n.reasons ?? []).join('; ')} (watch)`, n.id);
    } else if (c.health === 'degraded') ctx.event(`degraded (reported, not replaced): ${(n.reasons ?? []).join('; ')} (watch)`, n.id);
    else if (c.health === 'healthy' && was !== 'unknown') ctx.event(`recovered (was ${was}) (watch)`, n.id);
  }
  ctx.run.dirty = true;
}

export interface PoolWatch {
  stop(): Promise<void>;
}

/** Starts the watch activity in its own scope; it is started again when it returns, and after a failure with a growing pause. */
export function startWatch(ctx: PoolContext): PoolWatch {
  const acts = proxyActivities<PoolActivities>({
    startToCloseTimeout: `${WATCH_DEFAULTS.maxSeconds + 300} seconds`,
    heartbeatTimeout: '30 seconds',
    retry: { maximumAttempts: 1 },
  });
  const scope = new CancellationScope();
  let failures = 0;
  const done = scope
    .run(async () => {
      for (;;) {
        try {
          await acts.watchPool.executeWithOptions({ summary: `health watch on every agent of ${ctx.pool}` }, [{ pool: ctx.pool, ...WATCH_DEFAULTS }]);
          failures = 0;
        } catch (err) {
          if (isCancellation(err)) return;
          failures++;
          ctx.event(`health watch failed (the probe covers; started again in ${Math.min(300, 5 * 2 ** failures)} s): ${failureMessage(err)}`);
          await sleep(Math.min(300, 5 * 2 ** failures) * 1000);
        }
      }
    })
    .catch((err: unknown) => {
      if (!isCancellation(err)) throw err;
    });
  return {
    async stop() {
      scope.cancel();
      await done;
    },
  };
}

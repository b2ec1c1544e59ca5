import type { ProbePoolInput, ProbePoolResult } from '../../activities/pool/probe.ts';
import { applyChanges, viewDigest, type ProbeView } from '../common/digest.ts';
import { failureMessage } from '../common/failure.ts';
import { autoscale, loadWanted } from './autoscale/index.ts';
import type { ModelRef } from '../inputs/rollingUpdate.ts';
import { recordBad } from './breaker.ts';
import { members, type PoolContext } from './context.ts';
import { applyServingProbe, servingProbeInput } from './serving.ts';
import { uncordonStrays } from './strays.ts';

/** Health from probes: what the probe activity is asked, and what its answer does to members, the breaker and the autoscaler. */

export function probeInput(ctx: PoolContext): ProbePoolInput {
  const load = loadWanted(ctx);
  return { pool: ctx.pool, digest: viewDigest(ctx.state.view), timeoutMs: ctx.cfg.health.probeTimeoutMs, concurrency: ctx.cfg.health.probeConcurrency, ...servingProbeInput(ctx), ...(load ? { load } : {}) };
}

/** A probe that failed (not bad input) is an event; the next one is due an interval later. */
export function probeFailed(ctx: PoolContext, at: number, err: unknown): void {
  ctx.event(`probe failed: ${failureMessage(err)}`);
  ctx.state.lastProbe = { at, probed: 0, tookMs: ctx.now() - at, full: false };
}

/**
 * Applies a probe's answer (started at `at`): the view, each member's health and streak of bad
 * probes, events for transitions, nodes gone bad for the breaker, and one autoscaler decision.
 */
export function applyProbe(ctx: PoolContext, at: number, r: ProbePoolResult, asked?: ModelRef): void {
  const { state: s, cfg } = ctx;
  const before: ProbeView = s.view;
  s.view = r.full ? applyChanges({}, r.changes) : applyChanges(s.view, r.changes);
  s.idle = r.idle;
  s.lastProbe = { at, probed: r.probed, tookMs: r.tookMs, full: r.full };
  const t = ctx.now();
  const reasons = new Map(r.changes.filter((c) => c.reasons).map((c) => [c.id, c.reasons!]));
  for (const n of members(ctx)) {
    const h = s.view[n.id];
    if (!h) continue; // not seen by this probe (gone: handled by reconcile)
    if (n.watchedAt !== undefined && n.watchedAt > at) continue; // the health watch saw this node after the probe started
    const was = n.health;
    n.health = h;
    if (reasons.has(n.id)) n.reasons = reasons.get(n.id);
    if (h === 'healthy') delete n.reasons;
    if (h === 'unreachable') n.unreachableSince ??= t;
    else delete n.unreachableSince;
    n.badProbes = h === 'unhealthy' ? n.badProbes + 1 : 0;
    if (was !== h && before[n.id] !== h) {
      if ((h === 'unhealthy' || h === 'unreachable') && (n.phase === 'active' || n.phase === 'cordoned')) {
        s.breaker = recordBad(s.breaker, n.id, t);
        ctx.event(`${h}: ${(n.reasons ?? []).join('; ')}`, n.id);
      } else if (h === 'degraded') ctx.event(`degraded (reported, not replaced): ${(n.reasons ?? []).join('; ')}`, n.id);
      else if (h === 'healthy' && was !== 'unknown') ctx.event(`recovered (was ${was})`, n.id);
    }
  }
  applyServingProbe(ctx, r, asked);
  if (ctx.run.uncordonStrays) uncordonStrays(ctx, r.cordoned ?? []);
  if (r.leastLoaded) s.loads = Object.fromEntries(r.leastLoaded.map((l) => [l.id, l.inFlight]));
  else delete s.loads;
  autoscale(ctx, r, t);
}

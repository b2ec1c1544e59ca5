import type { FleetPoolConfig } from '../inputs/fleetPool.ts';
import type { PoolStatus } from './api.ts';
import { maxUnavailable, members, minHealthy, poolPhase, type PoolContext } from './context.ts';
import { servingStatus } from './serving.ts';

/** The status query's answer: counts, members (no internal timers), budget, breaker, autoscaler and the last events. */
export function poolStatus(ctx: PoolContext): PoolStatus {
  const { state: s, cfg } = ctx;
  const t = ctx.now();
  const ms = members(ctx);
  return {
    name: ctx.pool,
    phase: poolPhase(ctx),
    phaseReason: s.paused?.reason ?? (s.breaker.open ? s.breaker.reason : undefined),
    minNodes: cfg.minNodes,
    maxNodes: cfg.maxNodes,
    desired: s.autoscaler.desired,
    counts: {
      members: ms.length,
      healthy: ms.filter((n) => n.health === 'healthy').length,
      degraded: ms.filter((n) => n.health === 'degraded').length,
      unhealthy: ms.filter((n) => n.health === 'unhealthy').length,
      unreachable: ms.filter((n) => n.health === 'unreachable').length,
      disrupted: s.budget.leases.length,
      provisioning: ctx.run.provisioning,
    },
    nodes: ms.map(({ unreachableSince, retryAfter, ...n }) => ({
      ...n,
      ...(unreachableSince !== undefined ? { unreachableForSeconds: Math.round((t - unreachableSince) / 1000) } : {}),
    })),
    maxUnavailable: maxUnavailable(ctx),
    minHealthy: minHealthy(ctx),
    leases: s.budget.leases,
    queue: s.budget.queue,
    breaker: s.breaker,
    autoscaler: s.autoscaler,
    lastProbe: s.lastProbe ? { ...s.lastProbe, at: new Date(s.lastProbe.at).toISOString() } : undefined,
    maxDisrupted: s.maxDisrupted,
    replacements: s.replacements,
    runs: s.runs,
    events: s.events.slice(-30),
    claims: Object.entries(s.claims ?? {}).map(([nodeId, holder]) => ({ nodeId, holder })),
    ...(ctx.cfg.serving ? { serving: servingStatus(ctx) } : {}),
  };
}

/** The Web UI's current details: phase, sizes, budget, autoscaler and the last five events. */
export function poolDetails(st: PoolStatus, cfg: Pick<FleetPoolConfig, 'autoscaling'>): string {
  const c = st.counts;
  return [
    `**pool ${st.name}** — **${st.phase}**${st.phaseReason ? `: ${st.phaseReason}` : ''}`,
    `nodes ${c.members} (desired ${st.desired}, min ${st.minNodes}, max ${st.maxNodes}) · healthy ${c.healthy} · degraded ${c.degraded} · unhealthy ${c.unhealthy} · unreachable ${c.unreachable} · provisioning ${c.provisioning}`,
    `budget ${c.disrupted}/${st.maxUnavailable} disrupted, ${st.queue.length} waiting · replacements ${st.replacements.succeeded} done, ${st.replacements.failed} failed`,
    `autoscaler ${cfg.autoscaling.type}${st.autoscaler.utilization !== undefined ? ` · utilisation ${st.autoscaler.utilization} %` : ''}${st.autoscaler.lastDecision ? ` · ${st.autoscaler.lastDecision}` : ''}`,
    '',
    ...st.events.slice(-5).map((e) => `- ${e.at.slice(11, 19)} ${e.nodeId ? `\`${e.nodeId}\` ` : ''}${e.message}`),
  ].join('\n');
}

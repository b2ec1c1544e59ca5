import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { NodeActivities } from '../../activities/nodes.ts';
import type { PoolActivities } from '../../activities/pool/index.ts';
import { failureMessage } from '../common/failure.ts';
import type { PoolContext, PoolWork } from './context.ts';
import * as budget from './budget.ts';
import { closeIncident, openIncident, rungFailed, type Incident } from './incidents.ts';

type Spawn = (ctx: PoolContext, key: string, fn: () => Promise<void>) => void;

const short = { startToCloseTimeout: '1 minute', heartbeatTimeout: '20 seconds', retry: { maximumInterval: '10 seconds', maximumAttempts: 5 } } as const;

/** The side tasks of health events (incidents.ts): quarantine, the reboot rung, and incident records for Prometheus. */
export function remedyWork(spawn: Spawn): Required<Pick<PoolWork, 'quarantine' | 'reboot' | 'recordIncident'>> {
  const acts = proxyActivities<NodeActivities & PoolActivities>(short);
  const drainActs = (ctx: PoolContext) => proxyActivities<NodeActivities>({ ...short, startToCloseTimeout: `${ctx.cfg.health.drainTimeoutSeconds + 120} seconds` });
  const rebootActs = (ctx: PoolContext) =>
    proxyActivities<PoolActivities>({ ...short, startToCloseTimeout: `${ctx.cfg.health.remediation.rebootTimeoutSeconds + 120} seconds` });

  return {
    quarantine(ctx, nodeId) {
      spawn(ctx, `quarantine/${nodeId}`, async () => {
        await acts.cordonNode.executeWithOptions({ summary: `quarantine: cordon ${nodeId}` }, [{ pool: ctx.pool, nodeId }]);
      });
    },

    reboot(ctx, node, l) {
      const { pool, state: s } = ctx;
      const ref = { pool, nodeId: node.id };
      const inc = openIncident(ctx, node.id);
      spawn(ctx, l.holder, async () => {
        try {
          await acts.cordonNode.executeWithOptions({ summary: `reboot: cordon ${node.id}` }, [ref]);
          const drain = await drainActs(ctx).drainNode.executeWithOptions({ summary: `reboot: drain ${node.id}` }, [
            { ...ref, timeoutSeconds: ctx.cfg.health.drainTimeoutSeconds, force: ctx.cfg.health.forceDrain },
          ]);
          if (drain.outcome === 'timed-out') {
            node.phase = 'active';
            rungFailed(ctx, node.id, `reboot skipped: the drain timed out with ${drain.inFlight} jobs running`);
            return;
          }
          await rebootActs(ctx).rebootNode.executeWithOptions({ summary: `reboot ${node.id}` }, [{ ...ref, idempotencyKey: `${l.holder}/${inc?.id ?? 0}/${inc?.rung ?? 0}` }]);
          const back = await rebootActs(ctx).waitRebooted.executeWithOptions({ summary: `reboot: wait until ${node.id} passes health` }, [
            { ...ref, timeoutSeconds: ctx.cfg.health.remediation.rebootTimeoutSeconds },
          ]);
          const n = s.nodes[node.id];
          if (!n) return;
          n.phase = 'active';
          n.badProbes = 0;
          if (!back.healthy) {
            n.health = 'unhealthy';
            n.reasons = back.reasons.slice(0, 3);
            rungFailed(ctx, node.id, `still not healthy after the reboot (${back.reasons.join('; ').slice(0, 200)})`);
            return;
          }
          await acts.uncordonNode.executeWithOptions({ summary: `reboot: ${node.id} passed health: uncordon` }, [ref]);
          n.health = 'healthy';
          delete n.reasons;
          delete n.unreachableSince;
          closeIncident(ctx, node.id, 'back-in-service', 'rebooted and passed health');
        } catch (err) {
          const n = s.nodes[node.id];
          if (n) n.phase = 'active';
          const cause = err instanceof ActivityFailure ? err.cause : err;
          if (cause instanceof ApplicationFailure && cause.nonRetryable) rungFailed(ctx, node.id, `reboot failed: ${failureMessage(err)}`);
          else {
            if (n) n.retryAfter = ctx.now() + 60_000;
            ctx.event(`reboot failed (tried again in 60 s): ${failureMessage(err)}`, node.id);
          }
        } finally {
          s.budget = budget.release(s.budget, l.holder);
        }
      });
    },

    recordIncident(ctx, inc: Incident) {
      const s = (ms?: number) => (ms === undefined ? undefined : (ms - inc.detectedAt) / 1000);
      spawn(ctx, `incident/${inc.id}`, async () => {
        await acts.recordIncident.executeWithOptions({ summary: `incident ${inc.id} of ${inc.nodeId}: ${inc.outcome}` }, [
          {
            pool: ctx.pool,
            nodeId: inc.nodeId,
            class: inc.class,
            outcome: inc.outcome ?? 'open',
            ...(inc.action ? { action: inc.action } : {}),
            rung: inc.rung,
            ...(inc.quarantinedAt !== undefined ? { detectToQuarantineS: s(inc.quarantinedAt) } : {}),
            ...(inc.remediationAt !== undefined ? { detectToRemediationS: s(inc.remediationAt) } : {}),
            detectToCloseS: s(inc.closedAt ?? ctx.now())!,
          },
        ]);
      });
    },
  };
}

import { ParentClosePolicy, proxyActivities, startChild } from '@temporalio/workflow';
import type { NodeActivities } from '../../activities/nodes.ts';
import { failureMessage } from '../common/failure.ts';
import { replaceNode } from '../replaceNode.ts';
import * as budget from './budget.ts';
import type { PoolContext, PoolWork } from './context.ts';
import { addNode } from './membership.ts';
import { convergeNode, joinModel, joinNode } from './servingWork.ts';

const short = { startToCloseTimeout: '1 minute', heartbeatTimeout: '20 seconds', retry: { maximumInterval: '10 seconds', maximumAttempts: 5 } } as const;

/**
 * The pool's disruptive work as side tasks: replaceNode children, scale-down (cordon, drain,
 * terminate), operator cordons and uncordons, and scale-up (provision, wait healthy). Each task
 * gives its lease back when it ends; its failure becomes an event, never the pool's.
 */
export function poolWork(): PoolWork {
  const acts = proxyActivities<NodeActivities>(short);
  const slowActs = proxyActivities<NodeActivities>({ ...short, startToCloseTimeout: '15 minutes', retry: { maximumInterval: '10 seconds' } });
  const drainActs = (ctx: PoolContext) => proxyActivities<NodeActivities>({ ...short, startToCloseTimeout: `${ctx.cfg.health.drainTimeoutSeconds + 120} seconds` });

  return {
    replace(ctx, node, l, reason) {
      const { pool, state: s } = ctx;
      spawn(ctx, l.holder, async () => {
        try {
          const child = await startChild(replaceNode, {
            workflowId: l.holder,
            args: [{ pool, nodeId: node.id, reason: reason.slice(0, 500), drainTimeoutSeconds: ctx.cfg.health.drainTimeoutSeconds, force: l.force ?? ctx.cfg.health.forceDrain }],
            // A pool that is cancelled asks its replacements to stop (they uncordon if not yet terminated).
            parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
            staticSummary: `replace ${pool}/${node.id} (${l.origin ?? 'auto'})`,
          });
          const result = await child.result();
          delete s.nodes[node.id];
          addNode(ctx, result.replacementNodeId, 'healthy'); // the child waited until it was healthy and ready
          s.replacements.succeeded++;
          ctx.event(`replaced by ${result.replacementNodeId}`, node.id);
        } catch (err) {
          s.replacements.failed++;
          const n = s.nodes[node.id];
          if (n) {
            n.phase = 'active';
            n.badProbes = 0;
            n.failures = (n.failures ?? 0) + 1;
            n.retryAfter = ctx.now() + Math.min(600, 30 * 2 ** (n.failures - 1)) * 1000;
          }
          ctx.event(`replacement failed: ${failureMessage(err)}`, node.id);
        } finally {
          s.budget = budget.release(s.budget, l.holder);
        }
      });
    },

    scaleDown(ctx, node, l) {
      const { pool, state: s } = ctx;
      const ref = { pool, nodeId: node.id };
      spawn(ctx, l.holder, async () => {
        try {
          await acts.cordonNode.executeWithOptions({ summary: `scale-down: cordon ${node.id}` }, [ref]);
          const drain = await drainActs(ctx).drainNode.executeWithOptions({ summary: `scale-down: drain ${node.id}` }, [
            { ...ref, timeoutSeconds: ctx.cfg.health.drainTimeoutSeconds, force: ctx.cfg.health.forceDrain },
          ]);
          if (drain.outcome === 'timed-out') {
            await acts.uncordonNode.executeWithOptions({ summary: `scale-down of ${node.id} abandoned: uncordon` }, [ref]);
            node.phase = 'active';
            node.retryAfter = ctx.now() + ctx.cfg.autoscaling.cooldownSeconds * 1000;
            ctx.event(`scale-down drain timed out with ${drain.inFlight} jobs running; node kept and uncordoned`, node.id);
            return;
          }
          await slowActs.terminateNode.executeWithOptions({ summary: `scale-down: terminate ${node.id}` }, [ref]);
          delete s.nodes[node.id];
          ctx.event(`scaled down (drain ${drain.outcome})`, node.id);
        } catch (err) {
          if (s.nodes[node.id]) {
            node.phase = 'active';
            node.retryAfter = ctx.now() + 60_000;
          }
          throw err;
        } finally {
          s.budget = budget.release(s.budget, l.holder);
        }
      });
    },

    cordon(ctx, node, l) {
      spawn(ctx, l.holder, async () => {
        await acts.cordonNode.executeWithOptions({ summary: `cordon ${node.id} (operator)` }, [{ pool: ctx.pool, nodeId: node.id }]);
      });
    },

    uncordon(ctx, nodeId) {
      spawn(ctx, `uncordon/${nodeId}`, async () => {
        await acts.uncordonNode.executeWithOptions({ summary: `uncordon ${nodeId} (operator)` }, [{ pool: ctx.pool, nodeId }]);
      });
    },

    provision(ctx, key) {
      const { pool } = ctx;
      spawn(ctx, key, async () => {
        try {
          // A serving pool's node starts not ready until it serves the pool's model, and joins only once it does.
          const model = joinModel(ctx);
          const serving = model ? { serving: true } : {};
          const r = await slowActs.provisionNode.executeWithOptions({ summary: `scale-up: provision (${key})` }, [{ pool, idempotencyKey: key, ...serving }]);
          await slowActs.waitNodeHealthy.executeWithOptions({ summary: `scale-up: wait until ${r.nodeId} is healthy` }, [{ pool, nodeId: r.nodeId, ...(model ? { modelPending: true } : {}) }]);
          const served = model ? await joinNode(ctx, r.nodeId, ctx.cfg.serving?.model ?? model) : undefined;
          addNode(ctx, r.nodeId, 'healthy');
          if (served) ctx.state.nodes[r.nodeId].model = served;
          ctx.event(served ? `joined the pool (scale-up), serving ${served.sha256.slice(0, 12)}…` : 'joined the pool (scale-up)', r.nodeId);
        } finally {
          ctx.run.provisioning--;
        }
      });
    },

    converge(ctx, node, l) {
      spawn(ctx, l.holder, () => convergeNode(ctx, node, l));
    },
  };
}

/** Runs `fn` as a side task under `key`; when it ends the main loop runs again. */
function spawn(ctx: PoolContext, key: string, fn: () => Promise<void>): void {
  const { tasks } = ctx.run;
  const p = fn()
    .catch((err: unknown) => ctx.event(`${key} failed: ${failureMessage(err)}`))
    .finally(() => {
      tasks.delete(key);
      ctx.run.dirty = true;
    });
  tasks.set(key, p);
}

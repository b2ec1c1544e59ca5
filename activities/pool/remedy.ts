import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { NodeActivityDeps, NodeRef } from '../nodes.ts';
import { nodeAccess, POLL_MS } from '../nodes.ts';

/** What a closed incident reports to Prometheus (workers/metrics.ts observes it). */
export interface IncidentRecord {
  pool: string;
  nodeId: string;
  class: string;
  outcome: string;
  action?: string;
  rung: number;
  detectToQuarantineS?: number;
  detectToRemediationS?: number;
  detectToCloseS: number;
}

/** Healthy answers in a row a rebooted node must give before it counts as passing health. */
const HEALTHY_IN_A_ROW = 2;

/** The ladder's reboot rung: the provider's reboot, then health while the node stays cordoned. */
export function createRemedyActivities(deps: NodeActivityDeps) {
  const { pool, agentFor } = nodeAccess(deps);
  return {
    /** Reboots through the provider (idempotent on the key); NodeNotRebootable fails non-retryably. */
    async rebootNode(input: NodeRef & { idempotencyKey: string }): Promise<void> {
      await pool(input.pool).provider.reboot(input.nodeId, input.idempotencyKey);
    },

    /**
     * Waits until the rebooted node's agent answers healthy (twice in a row), cordoning it again
     * whenever it answers active (a fresh agent forgets the cordon), so it takes no work before it
     * passes. After `timeoutSeconds` answers with what it saw last: the next rung decides.
     */
    async waitRebooted(input: NodeRef & { timeoutSeconds: number }): Promise<{ healthy: boolean; reasons: string[] }> {
      const ctx = Context.current();
      const until = Date.now() + input.timeoutSeconds * 1000;
      let inARow = 0;
      let reasons: string[] = ['agent did not answer after the reboot'];
      while (Date.now() < until) {
        try {
          const agent = await agentFor(input);
          if (agent) {
            const h = await agent.health();
            if (h.drain.state === 'active') await agent.cordon();
            reasons = h.reasons;
            inARow = h.status === 'healthy' ? inARow + 1 : 0;
            if (inARow >= HEALTHY_IN_A_ROW) return { healthy: true, reasons: [] };
          }
        } catch (err) {
          if (err instanceof ApplicationFailure) throw err;
          inARow = 0;
          reasons = [`agent did not answer after the reboot: ${(err as Error).message}`.slice(0, 160)];
        }
        ctx.heartbeat({ inARow, reasons });
        await ctx.sleep(POLL_MS);
      }
      return { healthy: false, reasons };
    },

    /** No effect: the worker's metrics interceptor turns the record into histograms. */
    async recordIncident(r: IncidentRecord): Promise<IncidentRecord> {
      return r;
    },
  };
}

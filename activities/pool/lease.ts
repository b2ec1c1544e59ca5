import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { fleetPoolWorkflowId } from '../../workflows/common/ids.ts';
import type { LeaseAnswer } from '../../workflows/pool/api.ts';

const POLL_MS = 5000;

interface LeaseInput {
  pool: string;
  holder: string;
  nodeId: string;
}

/** The pool workflow is gone or was never started: there is no budget to respect. */
export function noPool(err: unknown): boolean {
  return err instanceof WorkflowNotFoundError || /not found|already completed|workflow execution.*(closed|completed)/i.test((err as Error).message ?? '');
}

/**
 * A replaceNode started outside its pool takes a slot of the pool's disruption budget through
 * the pool's acquireLease update, so every disruptive action goes through one budget.
 */
export function createLeaseActivities() {
  return {
    /** Waits in the pool's FIFO queue (polling, heartbeating) until granted; `no-pool` when no pool workflow runs. */
    async acquirePoolLease(input: LeaseInput): Promise<'granted' | 'no-pool'> {
      const ctx = Context.current();
      const handle = ctx.client.workflow.getHandle(fleetPoolWorkflowId(input.pool));
      for (;;) {
        try {
          const a = await handle.executeUpdate<LeaseAnswer, [{ holder: string; nodeId: string; ttlSeconds: number }]>('acquireLease', {
            args: [{ holder: input.holder, nodeId: input.nodeId, ttlSeconds: 3600 }],
          });
          if (a.granted) return 'granted';
          ctx.heartbeat({ position: a.position });
        } catch (err) {
          if (err instanceof WorkflowUpdateFailedError) {
            throw ApplicationFailure.nonRetryable(`pool ${input.pool} refused a disruption lease for ${input.nodeId}: ${err.cause?.message ?? err.message}`, 'LeaseRefused');
          }
          if (noPool(err)) return 'no-pool';
          throw err;
        }
        await ctx.sleep(POLL_MS);
      }
    },

    async releasePoolLease(input: LeaseInput): Promise<void> {
      try {
        await Context.current().client.workflow.getHandle(fleetPoolWorkflowId(input.pool)).executeUpdate<{ released: boolean }, [{ holder: string }]>('releaseLease', {
          args: [{ holder: input.holder }],
        });
      } catch (err) {
        if (!noPool(err)) throw err;
      }
    },
  };
}

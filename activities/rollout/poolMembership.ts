import { Context } from '@temporalio/activity';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { fleetPoolWorkflowId } from '../../workflows/common/ids.ts';
import { noPool } from '../pool/lease.ts';

/**
 * Blue-green's calls into the pool workflow (claimNodes, swapMembers, releaseClaims). With no pool
 * workflow running there is no membership to keep: each call answers `no-pool` and does nothing.
 */
async function poolUpdate(pool: string, name: string, arg: object): Promise<'done' | 'no-pool'> {
  try {
    await Context.current().client.workflow.getHandle(fleetPoolWorkflowId(pool)).executeUpdate(name, { args: [arg] });
    return 'done';
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      throw ApplicationFailure.nonRetryable(`pool ${pool} refused ${name}: ${err.cause?.message ?? err.message}`, 'PoolRefused');
    }
    if (noPool(err)) return 'no-pool';
    throw err;
  }
}

export function createPoolMembershipActivities() {
  return {
    claimPoolNodes(input: { pool: string; holder: string; nodeIds: string[] }) {
      return poolUpdate(input.pool, 'claimNodes', { holder: input.holder, nodeIds: input.nodeIds });
    },
    swapPoolMembers(input: { pool: string; holder: string; admit: string[]; remove: string[] }) {
      return poolUpdate(input.pool, 'swapMembers', { holder: input.holder, admit: input.admit, remove: input.remove });
    },
    releasePoolClaims(input: { pool: string; holder: string }) {
      return poolUpdate(input.pool, 'releaseClaims', { holder: input.holder });
    },
  };
}

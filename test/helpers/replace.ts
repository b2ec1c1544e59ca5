import type { Client, WorkflowHandle } from '@temporalio/client';
import { replaceNodeWorkflowId } from '../../workflows/common/ids.ts';
import type { ReplaceNodeInput } from '../../workflows/inputs/replaceNode.ts';
import type { ReplaceNodeStatus } from '../../workflows/replaceNode.ts';
import { waitFor } from './fleet.ts';

export function startReplace(client: Client, taskQueue: string, input: ReplaceNodeInput, workflowId?: string): Promise<WorkflowHandle> {
  return client.workflow.start('replaceNode', {
    taskQueue,
    workflowId: workflowId ?? replaceNodeWorkflowId(input.pool, input.nodeId),
    args: [input],
    staticSummary: `replace ${input.pool}/${input.nodeId}`,
  });
}

export async function waitForPhase(handle: WorkflowHandle, phase: ReplaceNodeStatus['phase'], timeoutMs = 120_000): Promise<void> {
  await waitFor(
    async () => {
      try {
        return (await handle.query<ReplaceNodeStatus>('status')).phase === phase;
      } catch {
        return false; // no worker to answer the query right now
      }
    },
    timeoutMs,
    `phase ${phase}`,
  );
}

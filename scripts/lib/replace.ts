import type { Client, WorkflowHandle } from '@temporalio/client';
import { replaceNodeWorkflowId } from '../../workflows/common/ids.ts';
import type { ReplaceNodeInput } from '../../workflows/inputs/replaceNode.ts';

/** Starts replaceNode under its conventional workflow id (or `workflowId`). */
export function startReplace(client: Client, taskQueue: string, input: ReplaceNodeInput, workflowId?: string): Promise<WorkflowHandle> {
  return client.workflow.start('replaceNode', {
    taskQueue,
    workflowId: workflowId ?? replaceNodeWorkflowId(input.pool, input.nodeId),
    args: [input],
    staticSummary: `replace ${input.pool}/${input.nodeId}`,
  });
}

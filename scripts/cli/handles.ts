import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowHandle } from '@temporalio/client';
import { badInput } from './runtime.ts';

/** Looking up workflows a command acts on by id: one that is not there is bad input, not a crash. */

/** The latest run's description, or undefined when no workflow has this id. */
export async function describeIfExists(client: Client, workflowId: string): Promise<WorkflowExecutionDescription | undefined> {
  try {
    return await client.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

/** A handle on a workflow that exists, with its description, or exit 2 with `missing` (which says how to find or start one). */
export async function existingWorkflow(client: Client, workflowId: string, missing: string): Promise<{ handle: WorkflowHandle; desc: WorkflowExecutionDescription }> {
  const desc = await describeIfExists(client, workflowId);
  if (!desc) throw badInput(missing);
  return { handle: client.workflow.getHandle(workflowId), desc };
}

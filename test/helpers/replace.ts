import type { WorkflowHandle } from '@temporalio/client';
import type { ReplaceNodeStatus } from '../../workflows/replaceNode.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';

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

import assert from 'node:assert/strict';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';

/** Rejected (a workflow's result or an update) with InvalidArgument naming `field`. */
export async function rejectsNaming(p: Promise<unknown>, field: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    const cause = err instanceof WorkflowUpdateFailedError || err instanceof WorkflowFailedError ? err.cause : err;
    assert.ok(cause instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    assert.equal(cause.type, 'InvalidArgument');
    assert.ok(cause.message.startsWith(`${field}: `), `expected the message to name ${field}: ${cause.message}`);
    return true;
  });
}

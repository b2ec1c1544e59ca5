import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import { NODE_NOT_REBOOTABLE } from '../../activities/providers/errors.ts';

/** Asserts that a reboot failed as providers fail one a node cannot take: non-retryable NodeNotRebootable, saying why. */
export async function assertNotRebootable(reboot: Promise<unknown>, message: RegExp): Promise<void> {
  const err = await reboot.catch((e: unknown) => e);
  assert.ok(err instanceof ApplicationFailure, String(err));
  assert.equal(err.type, NODE_NOT_REBOOTABLE);
  assert.equal(err.nonRetryable, true);
  assert.match(err.message, message);
}

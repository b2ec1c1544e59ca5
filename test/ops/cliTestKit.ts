import assert from 'node:assert/strict';
import type { RolloutStatus } from '../../workflows/rollout/api.ts';
import { CliError, EXIT } from '../../scripts/cli/runtime.ts';

/** What the CLI tests in test/ops share: the exit-2 assertion and a rollout status to render. */

/** `fn` throws (or rejects with) the CLI's bad-input error (exit 2), its message matching `message`. */
export async function assertBadInput(fn: () => unknown, message: RegExp): Promise<void> {
  await assert.rejects(
    async () => fn(),
    (err: unknown) => {
      assert.ok(err instanceof CliError, String(err));
      assert.equal(err.exitCode, EXIT.badInput);
      assert.match(err.message, message);
      return true;
    },
  );
}

/** A rolling rollout of two nodes in two batches, the first node draining. */
export const progressingRollout: RolloutStatus = {
  id: 'r1',
  pool: 'p1',
  strategy: 'rolling',
  phase: 'progressing',
  target: { uri: '/models/new.gguf', sha256: 'a'.repeat(64) },
  step: 0,
  steps: 2,
  batches: [['n1'], ['n2']],
  maxUnavailable: 1,
  maxDisrupted: 1,
  poolBudget: false,
  counts: { total: 2, pending: 1, inProgress: 1, done: 0, failed: 0, rolledBack: 0 },
  nodes: [
    { id: 'n1', state: 'draining', direction: 'forward', batch: 0 },
    { id: 'n2', state: 'pending', direction: 'forward', batch: 1 },
  ],
  analyses: [],
  events: [],
  startedAt: '2026-11-23T09:00:00.000Z',
};

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { historyFiles, readFixture } from '../../scripts/lib/histories.ts';
import { workflowBundle } from '../../scripts/lib/bundle.ts';
import { bundleEditedCopy } from '../helpers/workflowBundles.ts';

/**
 * fleetPool auto-upgrades, so a running pool replays its history on new code: a change to its
 * commands is safe only behind patched(). Removing the check of a real patch in fleetPool (the
 * phase memo) makes an old pool history fail to replay; with the check it replays.
 */
const OLD_POOL = 'fleetPool/59a6666-replace-sick-node.json';

describe('a patched() check is what keeps an old fleetPool history replaying', () => {
  it('replays with the check, and fails with a determinism error when the check is removed', async () => {
    assert.ok(historyFiles().includes(OLD_POOL));
    const fixture = readFixture(OLD_POOL);
    const history = historyFromJSON(fixture.history);
    await Worker.runReplayHistory({ workflowBundle: { codePath: await workflowBundle() } }, history, fixture.workflowId);
    const unguarded = await bundleEditedCopy({ 'fleetPool.ts': (t) => t.replace('if (patched(PHASE_MEMO_PATCH)) upsertMemo(', 'if (true) upsertMemo(') });
    await assert.rejects(
      Worker.runReplayHistory({ workflowBundle: { codePath: unguarded } }, history, fixture.workflowId),
      (err: unknown) => (err as Error).name === 'DeterminismViolationError' || /nondetermin/i.test((err as Error).message),
    );
  });
});

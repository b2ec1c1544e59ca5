import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { fixtureType, historyFiles, readFixture, readManifest } from '../../scripts/lib/histories.ts';
import { workflowBundle } from '../../scripts/lib/bundle.ts';
import { bundleAtCommit } from '../helpers/workflowBundles.ts';
import { patchIds, withTaskTimesAtStart, type HistoryJSON } from '../helpers/history.ts';
import { HISTORY_CLOCK_PATCH } from '../../workflows/pool/clock.ts';

/**
 * Replays every history of the append-only corpus (test/fixtures/histories/<type>/, listed in its
 * manifest): against today's workflow code, or, for an entry of a pinned type marked
 * `replayAgainst: "recorded"` after a deliberate incompatible change, against the code of the
 * commit that recorded it. A change that breaks a running workflow fails here.
 */
const manifest = readManifest();
const files = historyFiles();

/** Types whose running workflows move to new code (auto-upgrade): they can never be replayed against old code. */
const AUTO_UPGRADE = new Set(['fleetPool']);

describe('the replay corpus replays', () => {
  it('lists every history file in the manifest, and nothing else; each under its own workflow type, named by its commit', () => {
    assert.deepEqual(Object.keys(manifest.histories).sort(), files, 'manifest.json and the files under test/fixtures/histories/ differ');
    for (const file of files) {
      const entry = manifest.histories[file];
      const [type, name] = file.split('/');
      assert.equal(fixtureType(readFixture(file)), type, `${file}: the history is of another workflow type`);
      assert.match(entry.recordedAt, /^[0-9a-f]{40}$/, `${file}: recordedAt must be a full commit id`);
      assert.ok(name.startsWith(`${entry.recordedAt.slice(0, 7)}-`), `${file}: the name starts with the commit it was recorded at`);
      assert.ok(entry.replayAgainst === 'current' || entry.replayAgainst === 'recorded', `${file}: replayAgainst is 'current' or 'recorded'`);
      if (AUTO_UPGRADE.has(type)) assert.equal(entry.replayAgainst, 'current', `${file}: ${type} auto-upgrades, so its histories replay against the current code`);
    }
  });

  for (const type of ['replaceNode', 'fleetPool', 'rollingUpdate', 'backup', 'restore', 'verifyBackup', 'trainingJob']) {
    it(`has at least one history of ${type}`, () => assert.ok(files.some((f) => f.startsWith(`${type}/`))));
  }

  for (const file of files) {
    const entry = manifest.histories[file];
    const against = entry?.replayAgainst === 'recorded' ? `the code of ${entry.recordedAt.slice(0, 7)}` : 'the current code';
    it(`replays ${file} against ${against}`, async () => {
      // Workflows may check their own id, so the fixture carries the id it ran under.
      const fixture = readFixture(file);
      assert.ok(fixture.workflowId && fixture.history, `${file}: expected { workflowId, history }`);
      const codePath = entry?.replayAgainst === 'recorded' ? await bundleAtCommit(entry.recordedAt) : await workflowBundle();
      await Worker.runReplayHistory({ workflowBundle: { codePath } }, historyFromJSON(fixture.history), fixture.workflowId);
    });
    // Pools on the history clock (workflows/pool/clock.ts) decide nothing by their tasks' times.
    const fixture = readFixture(file);
    const history = fixture.history as HistoryJSON;
    if (file.startsWith('fleetPool/') && patchIds(history).includes(HISTORY_CLOCK_PATCH)) {
      it(`replays ${file} with every workflow task's time moved back to the run's start`, async () => {
        const { history: timeless, moved } = withTaskTimesAtStart(history);
        assert.ok(moved > 5, `${file}: tasks to move (${moved})`);
        await Worker.runReplayHistory({ workflowBundle: { codePath: await workflowBundle() } }, historyFromJSON(timeless), fixture.workflowId);
      });
    }
  }
});

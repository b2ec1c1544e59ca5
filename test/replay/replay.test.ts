import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { workflowBundle } from '../../scripts/lib/bundle.ts';

/**
 * Replays every recorded history against today's workflow code: a change that breaks
 * determinism for running workflows fails here. Record with `npm run record-histories`.
 */
const dir = join(REPO_ROOT, 'test/fixtures/histories');
const fixtures = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('recorded histories replay against the current workflow code', () => {
  it('has a recorded history for replaceNode', () => {
    assert.ok(fixtures.includes('replaceNode.json'));
  });
  for (const file of fixtures) {
    it(`replays ${file}`, async () => {
      // Workflows may check their own id, so the fixture carries the id it ran under.
      const fixture = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { workflowId: string; history: unknown };
      assert.ok(fixture.workflowId && fixture.history, `${file}: expected { workflowId, history }`);
      await Worker.runReplayHistory({ workflowBundle: { codePath: await workflowBundle() } }, historyFromJSON(fixture.history), fixture.workflowId);
    });
  }
});

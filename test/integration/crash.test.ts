import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { localNodeId } from '../../activities/providers/local.ts';
import type { ReplaceNodeResult } from '../../workflows/replaceNode.ts';
import { activityAttempts, waitForRunningActivity } from '../helpers/history.ts';
import { agentProcesses, startFleet, type TestFleet } from '../../scripts/lib/fleet.ts';
import { spawnWorker, type WorkerProcess } from '../../scripts/lib/workers.ts';
import { startReplace } from '../../scripts/lib/replace.ts';
import { startDevServer } from '../../scripts/lib/temporal.ts';

const TQ = 'replace-crash';

describe('replaceNode survives a SIGKILLed worker', () => {
  let env: TestWorkflowEnvironment;
  let fleet: TestFleet;
  let worker: WorkerProcess | undefined;

  before(async () => {
    // Replacements take 12 s to boot, so the kill lands inside provisioning.
    [env, fleet] = await Promise.all([startDevServer(), startFleet({ pool: 'crash', nodes: 3, bootSeconds: 12 })]);
  });
  after(async () => {
    await worker?.kill();
    await fleet?.cleanup();
    await env?.teardown();
  });

  /** Every agent process belongs to a live node, and every live node has exactly one process. */
  async function assertNoOrphans(): Promise<void> {
    const live = await fleet.provider.list('crash');
    assert.equal(live.length, 3, 'the pool has 3 nodes');
    assert.ok(live.every((n) => n.state === 'running'));
    assert.equal(agentProcesses(fleet.dir).length, 3, 'exactly one agent process per live node, none orphaned');
    const records = fleet.provider.records('crash');
    assert.equal(records.filter((r) => r.state !== 'terminated').length, 3);
  }

  async function replaceWithKill(killDuring: 'draining' | 'provisioning'): Promise<void> {
    const live = await fleet.provider.list('crash');
    const victim = live[0];
    // A 15 s job keeps the drain busy long enough to kill the worker inside it.
    await fetch(`${victim.agentUrl}/jobs`, { method: 'POST', headers: { authorization: `Bearer ${fleet.token}` }, body: '{"seconds": 15}' });
    worker = await spawnWorker(fleet, env.address, TQ);
    const handle = await startReplace(env.client, TQ, { pool: 'crash', nodeId: victim.id, drainTimeoutSeconds: 60 });
    const interrupted = killDuring === 'draining' ? 'drainNode' : 'provisionNode';
    await waitForRunningActivity(handle, interrupted);
    await worker.kill('SIGKILL');
    worker = await spawnWorker(fleet, env.address, TQ);

    const result: ReplaceNodeResult = await handle.result();
    assert.equal(result.replacementNodeId, localNodeId('crash', `replace/crash/${victim.id}/provision`));
    assert.equal((await fleet.provider.describe(victim.id))?.state, 'terminated');
    const attempts = await activityAttempts(handle);
    assert.ok(attempts[interrupted] >= 2, `${interrupted} was interrupted and retried (attempts: ${JSON.stringify(attempts)})`);
    const before = live.map((n) => n.id).filter((id) => id !== victim.id);
    const after = (await fleet.provider.list('crash')).map((n) => n.id);
    assert.deepEqual(after.sort(), [...before, result.replacementNodeId].sort(), 'exactly one replacement, no duplicate');
    await assertNoOrphans();
    await worker.kill('SIGTERM');
    worker = undefined;
  }

  it('killed during drain: the new worker resumes the same drain and finishes with one replacement', () => replaceWithKill('draining'));
  it('killed during provisioning: the retried provision finds the booting node instead of making a second', () => replaceWithKill('provisioning'));
});

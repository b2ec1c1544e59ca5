import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { ReplaceNodeResult } from '../../workflows/replaceNode.ts';
import { agentProcesses, startFleet, type TestFleet } from '../../scripts/lib/fleet.ts';
import { spawnWorker, type WorkerProcess } from '../../scripts/lib/workers.ts';
import { freePort } from '../helpers/moto.ts';
import { waitForRunningActivity } from '../helpers/history.ts';
import { startReplace } from '../../scripts/lib/replace.ts';
import { startDevServer } from '../../scripts/lib/temporal.ts';

describe('replaceNode survives a Temporal server restart', () => {
  let env: TestWorkflowEnvironment | undefined;
  let fleet: TestFleet | undefined;
  let worker: WorkerProcess | undefined;
  const dbDir = mkdtempSync(join(tmpdir(), 'drydock-db-'));
  after(async () => {
    await worker?.kill();
    await fleet?.cleanup();
    await env?.teardown();
    rmSync(dbDir, { recursive: true, force: true });
  });

  it('completes after the dev server is stopped mid-drain and started again on the same database file', async () => {
    const port = await freePort();
    const server = { port, dbFilename: join(dbDir, 'temporal.db') };
    [env, fleet] = await Promise.all([startDevServer(server), startFleet({ pool: 'restart', nodes: 3 })]);
    const victim = fleet.nodeIds[0];
    const url = (await fleet.provider.describe(victim))!.agentUrl!;
    await fetch(`${url}/jobs`, { method: 'POST', headers: { authorization: `Bearer ${fleet.token}` }, body: '{"seconds": 12}' });
    worker = await spawnWorker(fleet, `127.0.0.1:${port}`, 'replace-restart');
    const handle = await startReplace(env.client, 'replace-restart', { pool: 'restart', nodeId: victim });
    await waitForRunningActivity(handle, 'drainNode');

    await env.teardown();
    env = undefined;
    await sleep(2000); // the server is down while the drain goes on
    env = await startDevServer(server);

    const result: ReplaceNodeResult = await env.client.workflow.getHandle(handle.workflowId).result();
    assert.equal((await fleet.provider.describe(victim))?.state, 'terminated');
    const live = await fleet.provider.list('restart');
    assert.equal(live.length, 3);
    assert.ok(live.some((n) => n.id === result.replacementNodeId));
    assert.equal(agentProcesses(fleet.dir).length, 3);
    assert.equal(worker.child.exitCode, null, 'the same worker process reconnected and carried on');
  });
});

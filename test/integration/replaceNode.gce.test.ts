import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { AgentClient } from '../../activities/agentClient.ts';
import { GCE_TOKEN_ENV, LABEL_REQUEST } from '../../activities/providers/gce.ts';
import { keyHash } from '../../activities/providers/naming.ts';
import { replaceNodeWorkflowId } from '../../workflows/common/ids.ts';
import type { ReplaceNodeResult, ReplaceNodeStatus } from '../../workflows/replaceNode.ts';
import { spawnCloudWorker, startCloudFleet, type CloudFleet } from '../helpers/cloudFleet.ts';
import { agentProcesses } from '../../scripts/lib/fleet.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { type WorkerProcess } from '../../scripts/lib/workers.ts';
import { startGceFake, type GceFake } from '../fakes/gce/server.ts';
import { activityAttempts } from '../helpers/history.ts';
import { startReplace } from '../../scripts/lib/replace.ts';
import { startDevServer } from '../../scripts/lib/temporal.ts';

const TQ = 'replace-gce';
const POOL = 'gpu';

describe('replaceNode end to end on gce (strict fake), two zones with the first exhausted, worker SIGKILLed during provisioning', () => {
  let env: TestWorkflowEnvironment;
  let fake: GceFake;
  let fleet: CloudFleet;
  const workers: WorkerProcess[] = [];
  // The fake's access token reaches the worker through env only, as a real one would.
  const token = `ya29.fake-${randomBytes(12).toString('hex')}`;

  before(async () => {
    process.env[GCE_TOKEN_ENV] = token;
    [env, fake] = await Promise.all([startDevServer(), startGceFake({ token, pollsToDone: 4 })]);
    fake.exhaustZone('us-central1-a');
    const entry = (zone: string) => ({ type: 'gce', project: fake.project, zone, sourceImage: 'projects/debian-cloud/global/images/family/debian-12', apiEndpoint: '127.0.0.1', port: fake.port, protocol: 'http', startupScript: '#!/bin/sh\n# boot the drydock agent for {{pool}}/{{nodeId}}' });
    fleet = await startCloudFleet({
      pool: POOL,
      instanceType: 'a2-highgpu-1g',
      nodes: 2,
      bootSeconds: 3,
      strategy: 'priority',
      providers: [entry('us-central1-a'), entry('us-central1-b')],
    });
  });
  after(async () => {
    for (const w of workers) await w.kill('SIGKILL');
    await fleet?.cleanup();
    await fake?.stop();
    await env?.teardown();
  });

  it('replaces the node exactly once in the zone with capacity; the old instance is deleted', async () => {
    assert.deepEqual(fake.instances().map((i) => i.zone), ['us-central1-b', 'us-central1-b'], 'the exhausted zone was skipped');
    const [victim, other] = fleet.nodeIds;
    const key = `${replaceNodeWorkflowId(POOL, victim)}/provision`;
    workers.push(await spawnCloudWorker(fleet, env.address, TQ));
    const handle = await startReplace(env.client, TQ, { pool: POOL, nodeId: victim, reason: 'ecc', drainTimeoutSeconds: 30 });

    // Kill while the replacement exists at GCE but provisionNode has not finished with it.
    await waitFor(() => fake.instances().some((i) => i.labels[LABEL_REQUEST] === keyHash(key)), 90_000, 'the replacement instance to exist');
    assert.equal((await handle.query<ReplaceNodeStatus>('status')).phase, 'provisioning', 'killed inside provisioning');
    await workers[0].kill('SIGKILL');
    workers.push(await spawnCloudWorker(fleet, env.address, TQ));

    const result: ReplaceNodeResult = await handle.result();
    const attempts = await activityAttempts(handle);
    assert.ok(attempts.provisionNode >= 2, `provisionNode was interrupted and retried (attempts: ${JSON.stringify(attempts)})`);

    // Proof by listing labelled instances at the provider (every zone).
    const managed = fake.instances().filter((i) => i.labels['drydock-pool'] === POOL && i.labels['drydock-managed'] === 'true');
    assert.deepEqual(managed.map((i) => i.name).sort(), [other, result.replacementNodeId].sort(), 'exactly one replacement, the old one deleted');
    assert.equal(fake.instances().filter((i) => i.labels[LABEL_REQUEST] === keyHash(key)).length, 1, 'one instance for the provision key');
    assert.ok(managed.every((i) => i.zone === 'us-central1-b' && i.status === 'RUNNING'));
    assert.equal(await fleet.provider.describe(victim), undefined, 'the old instance is gone');

    const replacement = await fleet.provider.describe(result.replacementNodeId);
    assert.equal((await new AgentClient(replacement!.agentUrl!, fleet.token).health()).status, 'healthy');
    await waitFor(() => agentProcesses(fleet.dir).length === 2, 20_000, 'one agent per live instance');

    const history = JSON.stringify(await handle.fetchHistory());
    assert.ok(!history.includes(token), 'the access token is not in the workflow history');
    for (const w of workers) assert.ok(!w.output().includes(token), 'nor in the worker output');
  });
});

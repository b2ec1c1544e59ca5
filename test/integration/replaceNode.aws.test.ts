import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DescribeInstancesCommand, EC2Client, type Instance } from '@aws-sdk/client-ec2';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { AgentClient } from '../../activities/agentClient.ts';
import { TAG_REQUEST } from '../../activities/providers/aws.ts';
import { keyHash } from '../../activities/providers/naming.ts';
import { replaceNodeWorkflowId } from '../../workflows/common/ids.ts';
import type { ReplaceNodeResult, ReplaceNodeStatus } from '../../workflows/replaceNode.ts';
import { MOTO_IMAGE_ID, spawnCloudWorker, startCloudFleet, type CloudFleet } from '../helpers/cloudFleet.ts';
import { agentProcesses } from '../../scripts/lib/fleet.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { type WorkerProcess } from '../../scripts/lib/workers.ts';
import { activityAttempts } from '../helpers/history.ts';
import { startMoto, type Moto } from '../helpers/moto.ts';
import { startReplace } from '../../scripts/lib/replace.ts';
import { startDevServer } from '../../scripts/lib/temporal.ts';

const TQ = 'replace-aws';
const POOL = 'ec2';

describe('replaceNode end to end on aws-ec2 (moto), worker SIGKILLed during provisioning', () => {
  let env: TestWorkflowEnvironment;
  let moto: Moto;
  let fleet: CloudFleet;
  let ec2: EC2Client;
  const workers: WorkerProcess[] = [];
  // Fake credentials for moto, from env only, as in production; distinctive so a leak would be found.
  const secret = `moto-secret-${randomBytes(8).toString('hex')}`;

  before(async () => {
    process.env.AWS_ACCESS_KEY_ID = 'AKIAMOTOTESTING';
    process.env.AWS_SECRET_ACCESS_KEY = secret;
    process.env.AWS_REGION = 'us-east-1';
    [env, moto] = await Promise.all([startDevServer(), startMoto()]);
    ec2 = new EC2Client({ region: 'us-east-1', endpoint: moto.endpoint });
    fleet = await startCloudFleet({
      pool: POOL,
      instanceType: 'p4d.24xlarge',
      nodes: 2,
      // Replacements boot their agent in 3 s, so the kill lands while provisionNode waits for it.
      bootSeconds: 3,
      providers: [{ type: 'aws-ec2', region: 'us-east-1', zone: 'us-east-1a', imageId: MOTO_IMAGE_ID, endpoint: moto.endpoint, userData: '#!/bin/sh\n# boot the drydock agent for {{pool}}/{{nodeId}}' }],
    });
  });
  after(async () => {
    for (const w of workers) await w.kill('SIGKILL');
    await fleet?.cleanup();
    ec2?.destroy();
    await moto?.stop();
    await env?.teardown();
  });

  const tagged = async (filters: { Name: string; Values: string[] }[]): Promise<Instance[]> =>
    (await ec2.send(new DescribeInstancesCommand({ Filters: filters }))).Reservations!.flatMap((r) => r.Instances!);

  it('replaces the node exactly once: one replacement instance, the old one terminated', async () => {
    const [victim, other] = fleet.nodeIds;
    const key = `${replaceNodeWorkflowId(POOL, victim)}/provision`;
    workers.push(await spawnCloudWorker(fleet, env.address, TQ));
    const handle = await startReplace(env.client, TQ, { pool: POOL, nodeId: victim, reason: 'xid 79', drainTimeoutSeconds: 30 });

    // Kill once RunInstances has made the replacement but before provisionNode has seen its agent.
    await waitFor(async () => (await tagged([{ Name: `tag:${TAG_REQUEST}`, Values: [keyHash(key)] }])).length > 0, 90_000, 'the replacement instance to exist');
    assert.equal((await handle.query<ReplaceNodeStatus>('status')).phase, 'provisioning', 'killed inside provisioning');
    await workers[0].kill('SIGKILL');
    workers.push(await spawnCloudWorker(fleet, env.address, TQ));

    const result: ReplaceNodeResult = await handle.result();
    const attempts = await activityAttempts(handle);
    assert.ok(attempts.provisionNode >= 2, `provisionNode was interrupted and retried (attempts: ${JSON.stringify(attempts)})`);

    // Proof by listing tagged instances at the provider.
    const all = await tagged([{ Name: 'tag:drydock-pool', Values: [POOL] }, { Name: 'tag:drydock-managed', Values: ['true'] }]);
    const live = all.filter((i) => i.State?.Name !== 'terminated');
    const nodeOf = (i: Instance) => i.Tags?.find((t) => t.Key === 'drydock-node')?.Value;
    assert.deepEqual(live.map(nodeOf).sort(), [other, result.replacementNodeId].sort(), 'exactly one replacement, nothing else live');
    assert.equal((await tagged([{ Name: `tag:${TAG_REQUEST}`, Values: [keyHash(key)] }])).length, 1, 'one instance for the provision key');
    assert.deepEqual(all.filter((i) => nodeOf(i) === victim).map((i) => i.State?.Name), ['terminated'], 'the old instance is terminated');

    // The replacement's agent (started by the boot hook) really serves, and the old one is gone.
    const replacement = await fleet.provider.describe(result.replacementNodeId);
    assert.equal((await new AgentClient(replacement!.agentUrl!, fleet.token).health()).status, 'healthy');
    await waitFor(() => agentProcesses(fleet.dir).length === 2, 20_000, 'one agent per live instance');

    // Credentials stay in the worker's env: not in the workflow history, not in the worker's output.
    const history = JSON.stringify(await handle.fetchHistory());
    for (const w of workers) assert.ok(!w.output().includes(secret), 'no secret in worker output');
    assert.ok(!history.includes(secret) && !history.includes('AKIAMOTOTESTING'), 'no credential in the workflow history');
  });
});

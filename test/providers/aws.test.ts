import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  EC2Client,
  EC2ServiceException,
  StopInstancesCommand,
  TerminateInstancesCommand,
  type DescribeInstancesCommandInput,
  type DescribeInstancesCommandOutput,
  type DescribeInstanceStatusCommandOutput,
  type RunInstancesCommandOutput,
} from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/common';
import { AwsEc2Provider, classifyAwsError, healthFromStatus, TAG_REBOOT, TAG_REQUEST } from '../../activities/providers/aws.ts';
import { PrivateIpAgent } from '../../activities/providers/bootHook.ts';
import { PROVIDER_CONFIG } from '../../activities/providers/errors.ts';
import { CapacityError } from '../../activities/providers/types.ts';
import { keyHash } from '../../activities/providers/naming.ts';
import { MOTO_IMAGE_ID } from '../helpers/cloudFleet.ts';
import { startMoto, type Moto } from '../helpers/moto.ts';
import { assertNotRebootable } from '../helpers/providers.ts';

const REGION = 'us-east-1';

describe('aws-ec2 provider against moto', () => {
  let moto: Moto;
  let ec2: EC2Client;
  const imageId = MOTO_IMAGE_ID;
  const provider = (opts: Partial<ConstructorParameters<typeof AwsEc2Provider>[0]> = {}) =>
    new AwsEc2Provider({ region: REGION, imageId, endpoint: moto.endpoint, zone: 'us-east-1a', ...opts }, new PrivateIpAgent(9400), 'pool gpu');
  const spec = { pool: 'gpu', instanceType: 'p4d.24xlarge' };

  before(async () => {
    // Fake credentials for moto, from env as in production (the SDK's standard chain reads them).
    process.env.AWS_ACCESS_KEY_ID = 'testing';
    process.env.AWS_SECRET_ACCESS_KEY = 'testing';
    moto = await startMoto();
    ec2 = new EC2Client({ region: REGION, endpoint: moto.endpoint });
  });
  beforeEach(() => moto.reset());
  after(async () => {
    ec2?.destroy();
    await moto?.stop();
  });

  const tagged = async (pool: string) =>
    (await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:drydock-pool', Values: [pool] }] }))).Reservations!.flatMap((r) => r.Instances!);

  it('provisioning twice with one key makes one tagged, running instance with its agent at private IP:port', async () => {
    const p = provider({ spot: true, userData: '#!/bin/sh\necho {{pool}} {{nodeId}}' });
    const a = await p.provision(spec, 'replace/gpu/n1/provision');
    const b = await p.provision(spec, 'replace/gpu/n1/provision');
    assert.equal(a.id, b.id);
    assert.equal(a.providerId, b.providerId);
    const instances = await tagged('gpu');
    assert.equal(instances.length, 1, 'exactly one instance for one key');
    // moto ignores ClientToken (real EC2 honours it); we still send one derived from the key.
    assert.match(instances[0].ClientToken ?? '', /^[0-9a-f]{64}$/);
    assert.equal(a.state, 'running');
    assert.equal(a.instanceType, 'p4d.24xlarge');
    assert.equal(a.zone, 'us-east-1a');
    assert.equal(a.agentUrl, `http://${a.privateIp}:9400`);
    assert.deepEqual(
      { pool: a.tags['drydock-pool'], node: a.tags['drydock-node'], managed: a.tags['drydock-managed'], req: a.tags[TAG_REQUEST] },
      { pool: 'gpu', node: a.id, managed: 'true', req: keyHash('replace/gpu/n1/provision') },
    );
    const vols = (await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:drydock-node', Values: [a.id] }] }))).Volumes!;
    assert.equal(vols.length, 1, 'the root volume carries the drydock tags too');
    // A second key is a second node.
    const c = await p.provision(spec, 'replace/gpu/n2/provision');
    assert.notEqual(c.id, a.id);
    assert.equal((await tagged('gpu')).length, 2);
  });

  it('terminate twice is fine, as is an unknown node; describe shows terminated and list leaves it out', async () => {
    const p = provider();
    const n = await p.provision(spec, 'k1');
    const keep = await p.provision(spec, 'k2');
    await p.terminate(n.id);
    await p.terminate(n.id);
    await p.terminate('gpu-nosuchnode');
    assert.equal((await p.describe(n.id))?.state, 'terminated');
    assert.equal((await p.describe(n.id))?.agentUrl, undefined);
    assert.deepEqual((await p.list('gpu')).map((x) => x.id), [keep.id]);
    assert.equal(await p.describe('gpu-nosuchnode'), undefined);
    // A retried provision after the node was terminated returns it as terminated, not a new one.
    assert.equal((await p.provision(spec, 'k1')).state, 'terminated');
    assert.equal((await tagged('gpu')).length, 2);
  });

  it('lists by pool only, from the tags', async () => {
    const p = provider();
    await p.provision(spec, 'a');
    await p.provision({ pool: 'other', instanceType: 'p4d.24xlarge' }, 'b');
    assert.deepEqual((await p.list('gpu')).map((n) => n.pool), ['gpu']);
    assert.deepEqual((await p.list('other')).map((n) => n.pool), ['other']);
    assert.deepEqual(await p.list('empty'), []);
  });

  it('EBS snapshots: create from a node (once per key), list with OwnerIds self by tag, delete twice', async () => {
    const p = provider();
    const n = await p.provision(spec, 'snap-node');
    const req = { source: { nodeId: n.id }, idempotencyKey: 'backup/nightly/2026-01-01', tags: { 'drydock-backup': 'nightly' } };
    const s1 = await p.snapshot(req);
    const s2 = await p.snapshot(req);
    assert.equal(s1.id, s2.id, 'same key, same snapshot');
    assert.match(s1.id, /^snap-/);
    assert.match(s1.volumeId, /^vol-/);
    const listed = await p.listSnapshots({ tags: { 'drydock-backup': 'nightly' } });
    assert.deepEqual(listed.map((s) => s.id), [s1.id]);
    assert.ok(['pending', 'ready'].includes(listed[0].state));
    const byVolume = await p.snapshot({ source: { volumeId: s1.volumeId }, idempotencyKey: 'other', tags: { 'drydock-backup': 'weekly' } });
    assert.notEqual(byVolume.id, s1.id);
    assert.equal((await p.listSnapshots({ tags: { 'drydock-backup': 'weekly' } })).length, 1);
    await p.deleteSnapshot(s1.id);
    await p.deleteSnapshot(s1.id);
    assert.deepEqual(await p.listSnapshots({ tags: { 'drydock-backup': 'nightly' } }), []);
  });

  it('a bad subnet fails non-retryably, naming the field to fix', async () => {
    const err = await provider({ subnetId: 'subnet-0000nope', zone: undefined }).provision(spec, 'bad').catch((e: unknown) => e);
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.nonRetryable, true);
    assert.equal(err.type, PROVIDER_CONFIG);
    assert.match(err.message, /InvalidSubnetID.NotFound.*Fix 'subnetId' of pool gpu in the pools file/s);
    assert.equal((await tagged('gpu')).length, 0);
  });

  it('a launch EC2 ends at once for lack of capacity does not count: the next try uses a new token and one node lives', async () => {
    // moto never runs out of capacity: a middleware on the real client terminates the first launch in
    // moto and reports it the way EC2 reports a spot launch it could not keep (StateReason Server.InsufficientInstanceCapacity).
    const lost = new Set<string>();
    let loseNext = true;
    const client = new EC2Client({ region: REGION, endpoint: moto.endpoint });
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === 'RunInstancesCommand' && loseNext) {
          loseNext = false;
          const id = (out.output as RunInstancesCommandOutput).Instances![0].InstanceId!;
          lost.add(id);
          await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
        }
        if (context.commandName === 'DescribeInstancesCommand') {
          for (const i of (out.output as DescribeInstancesCommandOutput).Reservations?.flatMap((r) => r.Instances ?? []) ?? []) {
            if (lost.has(i.InstanceId!)) i.StateReason = { Code: 'Server.InsufficientInstanceCapacity', Message: 'Server.InsufficientInstanceCapacity: Insufficient capacity.' };
          }
        }
        return out;
      },
      { step: 'initialize', name: 'loseFirstLaunch' },
    );
    const p = new AwsEc2Provider({ region: REGION, imageId, endpoint: moto.endpoint, zone: 'us-east-1a', spot: true }, new PrivateIpAgent(9400), 'pool gpu', client);
    const err = await p.provision(spec, 'spot-key').catch((e: unknown) => e);
    assert.ok(err instanceof CapacityError, String(err));
    const node = await p.provision(spec, 'spot-key');
    assert.equal(node.state, 'running');
    assert.equal((await p.provision(spec, 'spot-key')).providerId, node.providerId, 'and that node is the answer from then on');
    const all = await tagged('gpu');
    assert.deepEqual(all.map((i) => i.State?.Name).sort(), ['running', 'terminated']);
    assert.notEqual(all[0].ClientToken, all[1].ClientToken, 'the second launch used a new token');
    client.destroy();
  });

  /** A provider on its own client, with `sent` counting the commands it sent by name and `mw` to add middleware. */
  const instrumented = () => {
    const client = new EC2Client({ region: REGION, endpoint: moto.endpoint });
    const sent = new Map<string, number>();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const name = context.commandName ?? '';
        sent.set(name, (sent.get(name) ?? 0) + 1);
        return next(args);
      },
      { step: 'initialize', name: 'countCommands' },
    );
    const p = new AwsEc2Provider({ region: REGION, imageId, endpoint: moto.endpoint, zone: 'us-east-1a' }, new PrivateIpAgent(9400), 'pool gpu', client);
    return { p, client, sent };
  };

  it('pages through DescribeInstances with the SDK paginator: three nodes in pages of one', async () => {
    const { p, client, sent } = instrumented();
    const ids = await Promise.all(['pg1', 'pg2', 'pg3'].map(async (k) => (await p.provision(spec, k)).id));
    // moto pages DescribeInstances at MaxResults (100 by default; it takes 1, where EC2 wants at least 5): ask for pages of one.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'DescribeInstancesCommand') (args.input as DescribeInstancesCommandInput).MaxResults = 1;
        return next(args);
      },
      { step: 'initialize', name: 'smallPages' },
    );
    sent.clear();
    assert.deepEqual((await p.list('gpu')).map((n) => n.id).sort(), ids.sort());
    assert.equal(sent.get('DescribeInstancesCommand'), 3, 'one page per instance');
    client.destroy();
  });

  it('reboot is RebootInstances: once per key (tagged with its hash), every call without one; the node keeps its id', async () => {
    const { p, client, sent } = instrumented();
    const n = await p.provision(spec, 'reboot-node');
    await p.reboot(n.id, 'remedy/gpu/1');
    await p.reboot(n.id, 'remedy/gpu/1');
    assert.equal(sent.get('RebootInstancesCommand'), 1, 'a retry after the reboot finished does not reboot again');
    const tags = (await tagged('gpu')).find((i) => i.InstanceId === n.providerId)?.Tags ?? [];
    assert.equal(tags.find((t) => t.Key === TAG_REBOOT)?.Value, keyHash('remedy/gpu/1'));
    await p.reboot(n.id, 'remedy/gpu/2');
    await p.reboot(n.id);
    assert.equal(sent.get('RebootInstancesCommand'), 3, 'a new key, and no key, reboot');
    const after = await p.describe(n.id);
    assert.deepEqual([after?.id, after?.providerId, after?.state, after?.dead], [n.id, n.providerId, 'running', undefined]);

    await assertNotRebootable(p.reboot('gpu-nosuchnode'), /no such instance/);
    await ec2.send(new StopInstancesCommand({ InstanceIds: [n.providerId!] }));
    await assertNotRebootable(p.reboot(n.id, 'remedy/gpu/3'), /the instance is stop(ping|ped).*Replace the node instead/);
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [n.providerId!] }));
    await assertNotRebootable(p.reboot(n.id, 'remedy/gpu/3'), /the instance is (shutting-down|terminated)/);
    assert.equal(sent.get('RebootInstancesCommand'), 3, 'nothing was sent for a node that cannot take a reboot');
    client.destroy();
  });

  it('dead at the provider: a status check impaired or a stopped instance, in list and describe, with the reason', async () => {
    const { p, client } = instrumented();
    const [impaired, stopped, fine] = await Promise.all(['d1', 'd2', 'd3'].map((k) => p.provision(spec, k)));
    await ec2.send(new StopInstancesCommand({ InstanceIds: [stopped.providerId!] }));
    // moto cannot impair an instance: a middleware on the real client reports `impaired` for one, as EC2 would.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === 'DescribeInstanceStatusCommand') {
          for (const st of (out.output as DescribeInstanceStatusCommandOutput).InstanceStatuses ?? []) {
            if (st.InstanceId === impaired.providerId) st.InstanceStatus = { Status: 'impaired', Details: [{ Name: 'reachability', Status: 'failed' }] };
          }
        }
        return out;
      },
      { step: 'initialize', name: 'impairOne' },
    );
    const listed = new Map((await p.list('gpu')).map((n) => [n.id, n]));
    assert.deepEqual(listed.get(impaired.id)?.dead, { reason: 'EC2 instance status check impaired' });
    assert.equal(listed.get(impaired.id)?.state, 'running', 'still running at EC2; its agent may even answer');
    assert.ok(listed.get(impaired.id)?.agentUrl);
    assert.match(listed.get(stopped.id)?.dead?.reason ?? '', /^EC2 instance is stop(ping|ped)/);
    assert.equal(listed.get(stopped.id)?.agentUrl, undefined);
    assert.equal(listed.get(fine.id)?.dead, undefined);
    assert.deepEqual((await p.describe(impaired.id))?.dead, { reason: 'EC2 instance status check impaired' });
    assert.equal((await p.describe(fine.id))?.dead, undefined);
    client.destroy();
  });

  it('instance status checks are a health signal', async () => {
    const p = provider();
    const n = await p.provision(spec, 'h');
    assert.deepEqual(await p.instanceHealth(n.id), { ok: true, reasons: [] });
    // moto cannot impair an instance: the mapping of an impaired status is checked on its own.
    assert.deepEqual(healthFromStatus({ SystemStatus: { Status: 'impaired' }, InstanceStatus: { Status: 'ok' } }), {
      ok: false,
      reasons: ['system status check impaired'],
    });
  });
});

describe('aws-ec2 error classes', () => {
  it('sorts EC2 errors: capacity → next zone, throttling → retry, auth / validation → fix', () => {
    const err = (name: string, status = 400) => new EC2ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });
    assert.equal(classifyAwsError(err('InsufficientInstanceCapacity')), 'capacity');
    assert.equal(classifyAwsError(err('RequestLimitExceeded', 503)), 'throttle');
    assert.equal(classifyAwsError(err('AuthFailure', 401)), 'auth');
    assert.equal(classifyAwsError(err('UnauthorizedOperation', 403)), 'auth');
    assert.equal(classifyAwsError(err('InvalidInstanceID.NotFound')), 'not-found');
    assert.equal(classifyAwsError(err('InvalidSubnetID.NotFound')), 'invalid');
    assert.equal(classifyAwsError(err('InvalidParameterValue')), 'invalid');
  });
});

import { SharedTokenAuth } from '../../activities/agentAuth.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DescribeInstancesCommand, EC2Client, EC2ServiceException } from '@aws-sdk/client-ec2';
import { PoolRegistry, PoolsFileError } from '../../activities/pools.ts';
import { AwsEc2Provider } from '../../activities/providers/aws.ts';
import { PrivateIpAgent } from '../../activities/providers/bootHook.ts';
import { parsePoolsDocument } from '../../activities/providers/config.ts';
import { fixedTokenAuth, GceProvider } from '../../activities/providers/gce.ts';
import { MultiProvider, type MultiEntry } from '../../activities/providers/multi.ts';
import { keyHash } from '../../activities/providers/naming.ts';
import { CapacityError } from '../../activities/providers/types.ts';
import { startGceFake, type GceFake } from '../fakes/gce/server.ts';
import { MOTO_IMAGE_ID } from '../helpers/cloudFleet.ts';
import { startMoto, type Moto } from '../helpers/moto.ts';
import { assertNotRebootable } from '../helpers/providers.ts';

const TOKEN = 'fake-gce-token';
const aws = { type: 'aws-ec2', region: 'us-east-1', zone: 'us-east-1a', imageId: 'ami-0abc1234' };
const gce = { type: 'gce', project: 'drydock-test', zone: 'us-central1-a', sourceImage: 'debian-12' };

describe('pools file: multi-provider schema, validated with the field named', () => {
  const bad: [string, unknown, RegExp][] = [
    ['no pools list', { pool: [] }, /pools: expected a top-level 'pools' list/],
    ['missing AMI', { pools: [{ name: 'g', instanceType: 't', provider: { ...aws, imageId: undefined } }] }, /pools\[0\]\.provider\.imageId: required/],
    ['credentials in the file', { pools: [{ name: 'g', instanceType: 't', provider: { ...aws, secretAccessKey: 'x' } }] }, /pools\[0\]\.provider\.secretAccessKey: credentials never go in the pools file/],
    ['typo in a field', { pools: [{ name: 'g', instanceType: 't', providers: [aws, { ...gce, zonee: 'x' }] }] }, /pools\[0\]\.providers\[1\]\.zonee: unknown field/],
    ['bad zone', { pools: [{ name: 'g', instanceType: 't', provider: { ...gce, zone: 'Central' } }] }, /pools\[0\]\.provider\.zone: 'Central' is not valid/],
    ['unknown type', { pools: [{ name: 'g', instanceType: 't', provider: { type: 'azure' } }] }, /pools\[0\]\.provider\.type: expected 'local', 'aws-ec2' or 'gce'/],
    ['bad strategy', { pools: [{ name: 'g', instanceType: 't', strategy: 'random', providers: [aws, gce] }] }, /pools\[0\]\.strategy: expected one of priority, round-robin, cheapest/],
    ['cheapest without prices', { pools: [{ name: 'g', instanceType: 't', strategy: 'cheapest', providers: [aws, gce], prices: { 'aws-us-east-1a': 3 } }] }, /pools\[0\]\.prices: .*missing: gce-us-central1-a/],
    ['price for no entry', { pools: [{ name: 'g', instanceType: 't', providers: [aws, gce], prices: { azure: 1 } }] }, /pools\[0\]\.prices\.azure: no entry named 'azure'/],
    ['same entry twice', { pools: [{ name: 'g', instanceType: 't', providers: [gce, gce] }] }, /pools\[0\]\.providers\[1\]\.name: entry name 'gce-us-central1-a' is used twice/],
    ['gce pool name', { pools: [{ name: '9g', instanceType: 't', provider: gce }] }, /pools\[0\]\.name: a pool with gce entries needs a name that starts with a letter/],
    ['both forms', { pools: [{ name: 'g', instanceType: 't', provider: gce, providers: [gce] }] }, /pools\[0\]\.provider: give either 'provider'/],
    ['bad boot hook', { pools: [{ name: 'g', instanceType: 't', provider: { ...gce, agent: { bootHook: { type: 'ssh' } } } }] }, /pools\[0\]\.provider\.agent\.bootHook\.type: expected 'local-agent'/],
    ['pool twice', { pools: [{ name: 'g', instanceType: 't', provider: gce }, { name: 'g', instanceType: 't', provider: gce }] }, /pools\[1\]\.name: pool 'g' is defined twice/],
  ];
  for (const [what, doc, msg] of bad) {
    it(`rejects ${what}`, () => {
      assert.throws(() => parsePoolsDocument(doc, 'pools.yaml'), (e: unknown) => e instanceof PoolsFileError && msg.test(e.message) && e.message.startsWith('pools.yaml: '));
    });
  }

  it('loads a YAML file with a single-provider and a multi-provider pool', () => {
    const dir = mkdtempSync(join(tmpdir(), 'drydock-pools-'));
    try {
      const file = join(dir, 'pools.yaml');
      writeFileSync(
        file,
        [
          'pools:',
          '  - name: train',
          '    instanceType: a2-highgpu-8g',
          '    provider: { type: gce, project: drydock-test, zone: us-central1-a, sourceImage: debian-12, spot: true, agent: { port: 9500 } }',
          '  - name: infer',
          '    instanceType: p4d.24xlarge',
          '    strategy: cheapest',
          '    prices: { east: 32.77, gce-us-central1-b: 29.5 }',
          '    providers:',
          '      - { name: east, type: aws-ec2, region: us-east-1, zone: us-east-1a, imageId: ami-0abc1234, spot: { maxPrice: "20.5" } }',
          '      - { type: gce, project: drydock-test, zone: us-central1-b, sourceImage: debian-12, instanceType: a2-ultragpu-8g }',
        ].join('\n'),
      );
      const reg = PoolRegistry.fromFile(file, new SharedTokenAuth('x'.repeat(24)));
      assert.deepEqual(reg.names(), ['train', 'infer']);
      assert.equal(reg.get('train').provider.name, 'gce');
      assert.equal(reg.get('infer').provider.name, 'multi');
      assert.equal(reg.get('infer').config.strategy, 'cheapest');
      assert.equal(reg.get('infer').config.provider.type, 'aws-ec2', 'provider is the first entry');
      assert.deepEqual((reg.get('infer').provider as MultiProvider).order('k').map((e) => e.name), ['gce-us-central1-b', 'east']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('orders entries: priority as listed, cheapest by price, round-robin spread by key and stable per key', () => {
    const entries = ['a', 'b', 'c'].map((name, i) => ({ name, provider: {} as MultiEntry['provider'], price: [3, 1, 2][i] }));
    assert.deepEqual(new MultiProvider(entries, 'priority').order('k').map((e) => e.name), ['a', 'b', 'c']);
    assert.deepEqual(new MultiProvider(entries, 'cheapest').order('k').map((e) => e.name), ['b', 'c', 'a']);
    const rr = new MultiProvider(entries, 'round-robin');
    const firsts = Array.from({ length: 300 }, (_, i) => rr.order(`replace/p/n${i}/provision`)[0].name);
    for (const n of ['a', 'b', 'c']) {
      const share = firsts.filter((f) => f === n).length / 300;
      assert.ok(share > 0.2 && share < 0.47, `entry ${n} goes first for ${share} of keys`);
    }
    assert.deepEqual(rr.order('same'), rr.order('same'), 'a retry tries the same entry first');
    assert.equal(new Set(rr.order('x').map((e) => e.name)).size, 3, 'every entry is still tried');
  });
});

describe('multi-provider pools: fail-over from an exhausted zone to the next', () => {
  let fake: GceFake;
  let moto: Moto;
  const imageId = MOTO_IMAGE_ID;
  const closers: GceProvider[] = [];
  before(async () => {
    process.env.AWS_ACCESS_KEY_ID = 'testing';
    process.env.AWS_SECRET_ACCESS_KEY = 'testing';
    [fake, moto] = await Promise.all([startGceFake({ token: TOKEN }), startMoto()]);
  });
  after(async () => {
    await Promise.all(closers.map((c) => c.close()));
    await fake?.stop();
    await moto?.stop();
  });

  const gceEntry = (zone: string): MultiEntry => {
    const p = new GceProvider(
      { project: fake.project, zone, sourceImage: 'debian-12', apiEndpoint: '127.0.0.1', port: fake.port, protocol: 'http' },
      new PrivateIpAgent(),
      `pool gpu entry ${zone}`,
      fixedTokenAuth(TOKEN),
    );
    closers.push(p);
    return { name: `gce-${zone}`, provider: p };
  };

  /**
   * moto always has capacity, so exhaustion is injected at the provider boundary: a middleware on the
   * real EC2 client fails RunInstances in the exhausted zones with EC2's InsufficientInstanceCapacity.
   */
  const awsEntry = (zone: string, exhausted: Set<string>): MultiEntry => {
    const client = new EC2Client({ region: 'us-east-1', endpoint: moto.endpoint });
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Placement?: { AvailabilityZone?: string } };
        if (context.commandName === 'RunInstancesCommand' && exhausted.has(input.Placement?.AvailabilityZone ?? '')) {
          throw new EC2ServiceException({
            name: 'InsufficientInstanceCapacity',
            $fault: 'server',
            $metadata: { httpStatusCode: 500 },
            message: `We currently do not have sufficient p4d.24xlarge capacity in the Availability Zone you requested (${input.Placement?.AvailabilityZone}).`,
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'injectCapacityError' },
    );
    return { name: `aws-${zone}`, provider: new AwsEc2Provider({ region: 'us-east-1', zone, imageId, endpoint: moto.endpoint }, new PrivateIpAgent(), `pool gpu entry ${zone}`, client) };
  };
  const spec = { pool: 'gpu', instanceType: 'p4d.24xlarge' };

  it('gce: priority moves from the exhausted zone to the next, and a retry with the key finds that node', async () => {
    fake.exhaustZone('us-central1-a');
    const pool = new MultiProvider([gceEntry('us-central1-a'), gceEntry('us-central1-b')], 'priority');
    const node = await pool.provision({ pool: 'gpu', instanceType: 'a2-highgpu-1g' }, 'replace/gpu/n1/provision');
    assert.equal(node.zone, 'us-central1-b');
    fake.exhaustZone('us-central1-a', false);
    // Zone a has capacity again; the retried key must still not make a second node there.
    const again = await pool.provision({ pool: 'gpu', instanceType: 'a2-highgpu-1g' }, 'replace/gpu/n1/provision');
    assert.equal(again.id, node.id);
    assert.deepEqual(fake.instances().map((i) => `${i.zone}/${i.name}`), [`us-central1-b/${node.id}`]);
    assert.deepEqual((await pool.list('gpu')).map((n) => n.id), [node.id]);
    await pool.terminate(node.id);
    assert.equal(await pool.describe(node.id), undefined);
  });

  it('aws-ec2 (capacity error injected, moto cannot run out): fails over zones, then reports no capacity anywhere as retryable', async () => {
    const exhausted = new Set(['us-east-1a']);
    const pool = new MultiProvider([awsEntry('us-east-1a', exhausted), awsEntry('us-east-1b', exhausted)], 'priority');
    const node = await pool.provision(spec, 'aws/n1');
    assert.equal(node.zone, 'us-east-1b');
    exhausted.add('us-east-1b');
    const err = await pool.provision(spec, 'aws/n2').catch((e: unknown) => e);
    assert.ok(err instanceof CapacityError, String(err));
    assert.match(err.message, /no capacity in any entry of pool gpu.*aws-us-east-1a.*InsufficientInstanceCapacity.*aws-us-east-1b/s);
    const ec2 = new EC2Client({ region: 'us-east-1', endpoint: moto.endpoint });
    const all = (await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:drydock-pool', Values: ['gpu'] }] }))).Reservations!.flatMap((r) => r.Instances!);
    ec2.destroy();
    assert.deepEqual(all.map((i) => i.Placement?.AvailabilityZone), ['us-east-1b'], 'only the one node exists');
  });

  it('reboot goes to the entry that holds the node (gce reset, EC2 reboot), dead nodes show in the pool\'s list, an unknown node is not rebootable', async () => {
    const pool = new MultiProvider([gceEntry('us-central1-b'), awsEntry('us-east-1d', new Set())], 'priority');
    const onGce = await pool.provision({ pool: 'rb', instanceType: 'a2-highgpu-1g' }, 'rb/n1');
    fake.exhaustZone('us-central1-b');
    const onAws = await pool.provision({ pool: 'rb', instanceType: 'a2-highgpu-1g' }, 'rb/n2').finally(() => fake.exhaustZone('us-central1-b', false));
    assert.deepEqual([onGce.provider, onAws.provider], ['gce', 'aws-ec2']);
    await pool.reboot(onGce.id, 'remedy/rb/1');
    await pool.reboot(onAws.id, 'remedy/rb/2');
    assert.equal(fake.instances().find((i) => i.name === onGce.id)?.resets, 1);
    const ec2 = new EC2Client({ region: 'us-east-1', endpoint: moto.endpoint });
    const [inst] = (await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:drydock-node', Values: [onAws.id] }] }))).Reservations!.flatMap((r) => r.Instances!);
    ec2.destroy();
    assert.equal(inst.Tags?.find((t) => t.Key === 'drydock-reboot')?.Value, keyHash('remedy/rb/2'), 'the EC2 entry rebooted its own node');
    await assertNotRebootable(pool.reboot('rb-nosuchnode'), /no such node in any entry of this pool/);
    fake.setInstanceStatus('us-central1-b', onGce.id, 'TERMINATED');
    const listed = new Map((await pool.list('rb')).map((n) => [n.id, n.dead?.reason]));
    assert.deepEqual(listed, new Map([[onGce.id, 'GCE status TERMINATED'], [onAws.id, undefined]]));
  });

  it('mixed aws-ec2 + gce, cheapest first: the cheaper cloud is exhausted, the node lands on the other; snapshots and disks carry the entry', async () => {
    const exhausted = new Set(['us-east-1c']);
    const a = { ...awsEntry('us-east-1c', exhausted), price: 20 };
    const g = { ...gceEntry('europe-west4-a'), price: 30 };
    const pool = new MultiProvider([g, a], 'cheapest');
    assert.deepEqual(pool.order('k').map((e) => e.name), ['aws-us-east-1c', 'gce-europe-west4-a']);
    const node = await pool.provision({ pool: 'mixed', instanceType: 'a2-highgpu-1g' }, 'mixed/n1');
    assert.equal(node.provider, 'gce');
    const snap = await pool.snapshot({ source: { nodeId: node.id }, idempotencyKey: 'b1', tags: { 'drydock-backup': 'x' } });
    assert.match(snap.id, /^gce-europe-west4-a:drydock-snap-/);
    assert.deepEqual((await pool.listSnapshots({ tags: { 'drydock-backup': 'x' } })).map((s) => s.id), [snap.id]);
    // A disk from the snapshot goes to the entry its id names, and its id names that entry too.
    const disk = await pool.createDiskFromSnapshot({ snapshotId: snap.id, idempotencyKey: 'r1/disk', tags: { 'drydock-backup': 'x' } });
    assert.match(disk.id, /^gce-europe-west4-a:zones\/europe-west4-a\/disks\/drydock-disk-/);
    assert.equal(disk.snapshotId, snap.id);
    assert.equal((await pool.createDiskFromSnapshot({ snapshotId: snap.id, idempotencyKey: 'r1/disk', tags: {} })).id, disk.id);
    assert.equal(fake.disks().filter((d) => d.sourceSnapshot).length, 1);
    await assert.rejects(pool.createDiskFromSnapshot({ snapshotId: 'nowhere:snap-1', idempotencyKey: 'r2', tags: {} }), /no entry 'nowhere'/);
    await pool.deleteSnapshot(snap.id);
    assert.deepEqual(await pool.listSnapshots({ tags: { 'drydock-backup': 'x' } }), []);
  });
});

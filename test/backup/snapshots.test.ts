import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DescribeImagesCommand, DescribeSnapshotsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createBackupActivities } from '../../activities/backup/index.ts';
import { listBackups } from '../../activities/backup/catalog.ts';
import { AwsEc2Provider } from '../../activities/providers/aws.ts';
import { PrivateIpAgent } from '../../activities/providers/bootHook.ts';
import { fixedTokenAuth, GceProvider } from '../../activities/providers/gce.ts';
import type { Provider } from '../../activities/providers/types.ts';
import { FileStore } from '../../activities/stores/index.ts';
import { backupStamp } from '../../workflows/inputs/backup.ts';
import { startGceFake, type GceFake } from '../fakes/gce/server.ts';
import { startMoto, type Moto } from '../helpers/moto.ts';

/**
 * The backup activities against the real aws-ec2 provider on moto and the gce provider on the GCE
 * fake, run in Temporal's activity test environment (the workflow path is covered on local pools
 * in backup.test.ts; the snapshot calls here are the ones a cloud pool's worker makes).
 */
describe('disk snapshot backups and their retention: EBS on moto, GCE on the fake', () => {
  let moto: Moto;
  let gce: GceFake;
  let ec2: EC2Client;
  let dir: string;
  const GCE_TOKEN = 'fake-gce-token';

  before(async () => {
    process.env.AWS_ACCESS_KEY_ID = 'testing';
    process.env.AWS_SECRET_ACCESS_KEY = 'testing';
    [moto, gce] = await Promise.all([startMoto(), startGceFake({ token: GCE_TOKEN, pollsToDone: 2 })]);
    ec2 = new EC2Client({ region: 'us-east-1', endpoint: moto.endpoint });
    dir = mkdtempSync(join(tmpdir(), 'drydock-snapbackup-'));
  });
  after(async () => {
    ec2?.destroy();
    await moto?.stop();
    await gce?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Two backups of a 2-node pool, the second with keepLast 1; returns both backups' snapshot ids. */
  async function twoBackups(provider: Provider, name: string, instanceType: string) {
    await provider.provision({ pool: 'gpu', instanceType }, `${name}-n1`);
    await provider.provision({ pool: 'gpu', instanceType }, `${name}-n2`);
    const nodes = (await provider.list('gpu')).map((n) => n.id).sort();
    const acts = createBackupActivities({ pools: { get: () => ({ provider }) } });
    const env = new MockActivityEnvironment();
    const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args) as Promise<R>;
    const store = `file://${dir}/${name}`;
    const source = { name: 'disks', pool: 'gpu' };

    async function backupAt(at: Date, retention = {}) {
      const backupId = `${name}/${backupStamp(at)}`;
      const key = `backup/${backupId}/disks`;
      await run(acts.beginBackup, { store, backupId, workflowId: `backup/${backupId}`, startedAt: at.toISOString() });
      const snaps = await run(acts.snapshotSource, { backupId, idempotencyKey: key, source });
      // A retried activity (same key) finds the same snapshots instead of taking new ones.
      assert.deepEqual((await run(acts.snapshotSource, { backupId, idempotencyKey: key, source })).map((s) => s.snapshotId), snaps.map((s) => s.snapshotId));
      await run(acts.writeManifest, {
        store, backupId, name, workflowId: `backup/${backupId}`, runId: 'r', startedAt: at.toISOString(), phase: 'Completed' as const,
        sources: [{ name: 'disks', type: 'snapshot' as const, origin: 'gpu', snapshots: snaps }], hooks: [],
      });
      assert.equal((await run(acts.verifyBackup, { store, backupId })).ok, true);
      const prune = await run(acts.pruneBackups, { store, name, retention, now: new Date().toISOString() });
      return { backupId, snaps, prune };
    }

    const b1 = await backupAt(new Date(Date.now() - 60_000));
    assert.deepEqual(b1.snaps.map((s) => s.nodeId).sort(), nodes);
    assert.ok(b1.snaps.every((s) => s.provider === provider.name && s.state === 'ready'));
    const b2 = await backupAt(new Date(), { keepLast: 1 });
    assert.deepEqual(b2.prune.removed.map((r) => r.backupId), [b1.backupId]);
    assert.deepEqual((await listBackups(new FileStore(join(dir, name)), name)).map((b) => b.backupId), [b2.backupId]);
    // A restore cannot copy a cloud snapshot; it says how to make a disk from each one.
    const restored = await run(acts.restoreSnapshots, { store, backupId: b2.backupId, destination: join(dir, `${name}-out`), overwrite: false });
    assert.deepEqual(restored.map((r) => r.snapshotId), b2.snaps.map((s) => s.snapshotId));
    assert.ok(restored.every((r) => !r.restoredTo && r.hint?.includes(r.snapshotId)));
    return { first: b1.snaps.map((s) => s.snapshotId), second: b2.snaps.map((s) => s.snapshotId) };
  }

  it('EBS: snapshots every node once per key, records them in the manifest; retention deletes the pruned snapshots', async () => {
    const imageId = (await ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
    const provider = new AwsEc2Provider({ region: 'us-east-1', imageId, endpoint: moto.endpoint, zone: 'us-east-1a' }, new PrivateIpAgent(9400), 'pool gpu');
    const { first, second } = await twoBackups(provider, 'ebs', 'p4d.24xlarge');
    assert.ok([...first, ...second].every((id) => /^snap-/.test(id)));
    const left = new Set((await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots!.map((s) => s.SnapshotId));
    assert.ok(first.every((id) => !left.has(id)), "the pruned backup's EBS snapshots were deleted");
    assert.ok(second.every((id) => left.has(id)), "the kept backup's snapshots remain");
  });

  it('GCE: disks.createSnapshot per node, idempotent per key; retention deletes the pruned snapshots', async () => {
    const provider = new GceProvider(
      { project: gce.project, zone: 'us-central1-a', sourceImage: 'projects/debian-cloud/global/images/family/debian-12', apiEndpoint: '127.0.0.1', port: gce.port, protocol: 'http' },
      new PrivateIpAgent(9400),
      'pool gpu',
      fixedTokenAuth(GCE_TOKEN),
    );
    try {
      const { first, second } = await twoBackups(provider, 'gce', 'a2-highgpu-1g');
      const left = new Set((await provider.listSnapshots()).map((s) => s.id));
      assert.ok(first.every((id) => !left.has(id)), "the pruned backup's GCE snapshots were deleted");
      assert.ok(second.every((id) => left.has(id)), "the kept backup's snapshots remain");
    } finally {
      await provider.close();
    }
  });
});

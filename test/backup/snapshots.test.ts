import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DescribeImagesCommand, DescribeSnapshotsCommand, DescribeVolumesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createBackupActivities } from '../../activities/backup/index.ts';
import { listBackups } from '../../activities/backup/catalog.ts';
import { AwsEc2Provider } from '../../activities/providers/aws.ts';
import { PrivateIpAgent } from '../../activities/providers/bootHook.ts';
import { fixedTokenAuth, GceProvider } from '../../activities/providers/gce.ts';
import { TAG_DISK_KEY, TAG_MANAGED, type Provider } from '../../activities/providers/types.ts';
import { backupLabel, TAG_BACKUP } from '../../activities/backup/snapshots.ts';
import { FileStore } from '../../activities/stores/index.ts';
import { backupStamp } from '../../workflows/common/ids.ts';
import { startGceFake, type GceFake } from '../fakes/gce/server.ts';
import { startMoto, type Moto } from '../helpers/moto.ts';

/**
 * The backup activities against the real aws-ec2 provider on moto and the gce provider on the GCE
 * fake, run in Temporal's activity test environment (the workflow path is covered on local pools
 * in backup.test.ts; the snapshot calls here are the ones a cloud pool's worker makes).
 */
describe('disk snapshot backups, their retention and restore to new disks: EBS on moto, GCE on the fake', () => {
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
    // Asked for disks, it makes one per snapshot; the retried activity (same run, same keys) makes none more.
    const toDisks = { store, backupId: b2.backupId, destination: join(dir, `${name}-disks`), overwrite: false, snapshots: 'disk' as const };
    const disks = await run(acts.restoreSnapshots, toDisks);
    assert.deepEqual(disks.map((r) => r.snapshotId), b2.snaps.map((s) => s.snapshotId));
    assert.ok(disks.every((r) => r.diskId), 'every snapshot got a disk');
    assert.equal(new Set(disks.map((r) => r.diskId)).size, disks.length, 'one disk per snapshot');
    assert.deepEqual((await run(acts.restoreSnapshots, toDisks)).map((r) => r.diskId), disks.map((r) => r.diskId));
    return { first: b1.snaps.map((s) => s.snapshotId), second: b2.snaps.map((s) => s.snapshotId), disks: disks.map((r) => ({ diskId: r.diskId!, snapshotId: r.snapshotId })), backupId: b2.backupId };
  }

  it('EBS: snapshots every node once per key, records them in the manifest; retention deletes the pruned snapshots', async () => {
    const imageId = (await ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
    const provider = new AwsEc2Provider({ region: 'us-east-1', imageId, endpoint: moto.endpoint, zone: 'us-east-1a' }, new PrivateIpAgent(9400), 'pool gpu');
    const { first, second, disks, backupId } = await twoBackups(provider, 'ebs', 'p4d.24xlarge');
    assert.ok([...first, ...second].every((id) => /^snap-/.test(id)));
    const left = new Set((await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots!.map((s) => s.SnapshotId));
    assert.ok(first.every((id) => !left.has(id)), "the pruned backup's EBS snapshots were deleted");
    assert.ok(second.every((id) => left.has(id)), "the kept backup's snapshots remain");
    // Exactly one EBS volume per snapshot, made from it and tagged by drydock.
    const vols = (await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'snapshot-id', Values: second }] }))).Volumes!;
    assert.deepEqual(vols.map((v) => v.VolumeId).sort(), disks.map((d) => d.diskId).sort());
    for (const v of vols) {
      const tags = Object.fromEntries((v.Tags ?? []).map((t) => [t.Key, t.Value]));
      assert.equal(tags[TAG_MANAGED], 'true');
      assert.equal(tags[TAG_BACKUP], backupLabel(backupId));
      assert.ok(tags[TAG_DISK_KEY], 'carries the key hash that makes a retry find it');
      assert.equal(v.SnapshotId, disks.find((d) => d.diskId === v.VolumeId)?.snapshotId);
      assert.equal(v.State, 'available');
    }
  });

  it('GCE: disks.createSnapshot per node, idempotent per key; retention deletes the pruned snapshots', async () => {
    const provider = new GceProvider(
      { project: gce.project, zone: 'us-central1-a', sourceImage: 'projects/debian-cloud/global/images/family/debian-12', apiEndpoint: '127.0.0.1', port: gce.port, protocol: 'http' },
      new PrivateIpAgent(9400),
      'pool gpu',
      fixedTokenAuth(GCE_TOKEN),
    );
    try {
      const { first, second, disks, backupId } = await twoBackups(provider, 'gce', 'a2-highgpu-1g');
      const left = new Set((await provider.listSnapshots()).map((s) => s.id));
      assert.ok(first.every((id) => !left.has(id)), "the pruned backup's GCE snapshots were deleted");
      assert.ok(second.every((id) => left.has(id)), "the kept backup's snapshots remain");
      // Exactly one persistent disk per snapshot (disks.insert, deduplicated by requestId), labelled by drydock.
      const made = gce.disks().filter((d) => d.sourceSnapshot);
      assert.deepEqual(made.map((d) => `zones/${d.zone}/disks/${d.name}`).sort(), disks.map((d) => d.diskId).sort());
      for (const d of made) {
        assert.equal(d.sourceSnapshot!.split('/').pop(), disks.find((x) => x.diskId.endsWith(`/${d.name}`))?.snapshotId);
        assert.equal(d.labels?.[TAG_MANAGED], 'true');
        assert.equal(d.labels?.[TAG_BACKUP], backupLabel(backupId));
        assert.equal(d.status, 'READY');
      }
    } finally {
      await provider.close();
    }
  });
});

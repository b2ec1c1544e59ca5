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
import { FileStore } from '../../activities/stores/index.ts';
import { backupStamp } from '../../workflows/inputs/backup.ts';
import { startMoto, type Moto } from '../helpers/moto.ts';

/**
 * The backup activities against the real aws-ec2 provider on moto. (The worker's pools file only
 * knows local pools so far, so this runs the activities in Temporal's activity test environment.)
 */
describe('EBS snapshot backups and their retention on moto', () => {
  let moto: Moto;
  let ec2: EC2Client;
  let dir: string;

  before(async () => {
    process.env.AWS_ACCESS_KEY_ID = 'testing';
    process.env.AWS_SECRET_ACCESS_KEY = 'testing';
    moto = await startMoto();
    ec2 = new EC2Client({ region: 'us-east-1', endpoint: moto.endpoint });
    dir = mkdtempSync(join(tmpdir(), 'drydock-snapbackup-'));
  });
  after(async () => {
    ec2?.destroy();
    await moto?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('snapshots every node of the pool once per key, records them in the manifest, and retention deletes pruned snapshots', async () => {
    const imageId = (await ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
    const provider = new AwsEc2Provider({ region: 'us-east-1', imageId, endpoint: moto.endpoint, zone: 'us-east-1a' }, new PrivateIpAgent(9400), 'pool gpu');
    const nodes = [await provider.provision({ pool: 'gpu', instanceType: 'p4d.24xlarge' }, 'n1'), await provider.provision({ pool: 'gpu', instanceType: 'p4d.24xlarge' }, 'n2')];
    const acts = createBackupActivities({ pools: { get: () => ({ provider }) } });
    const env = new MockActivityEnvironment();
    const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args) as Promise<R>;
    const store = `file://${dir}/store`;
    const source = { name: 'disks', pool: 'gpu' };

    async function backupAt(at: Date, retention = {}) {
      const backupId = `ebs/${backupStamp(at)}`;
      const key = `backup/${backupId}/disks`;
      await run(acts.beginBackup, { store, backupId, workflowId: `backup/${backupId}`, startedAt: at.toISOString() });
      const snaps = await run(acts.snapshotSource, { backupId, idempotencyKey: key, source });
      // A retried activity (same key) finds the same snapshots instead of taking new ones.
      assert.deepEqual((await run(acts.snapshotSource, { backupId, idempotencyKey: key, source })).map((s) => s.snapshotId), snaps.map((s) => s.snapshotId));
      await run(acts.writeManifest, {
        store, backupId, name: 'ebs', workflowId: `backup/${backupId}`, runId: 'r', startedAt: at.toISOString(), phase: 'Completed' as const,
        sources: [{ name: 'disks', type: 'snapshot' as const, origin: 'gpu', snapshots: snaps }], hooks: [],
      });
      assert.equal((await run(acts.verifyBackup, { store, backupId })).ok, true);
      const prune = await run(acts.pruneBackups, { store, name: 'ebs', retention, now: new Date().toISOString() });
      return { backupId, snaps, prune };
    }

    const b1 = await backupAt(new Date(Date.now() - 60_000));
    assert.deepEqual(b1.snaps.map((s) => s.nodeId).sort(), nodes.map((n) => n.id).sort());
    assert.ok(b1.snaps.every((s) => s.provider === 'aws-ec2' && /^snap-/.test(s.snapshotId) && /^vol-/.test(s.volumeId) && s.state === 'ready'));
    const b2 = await backupAt(new Date(), { keepLast: 1 });
    assert.deepEqual(b2.prune.removed.map((r) => r.backupId), [b1.backupId]);

    const left = (await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots!;
    const ids = new Set(left.map((s) => s.SnapshotId));
    assert.ok(b1.snaps.every((s) => !ids.has(s.snapshotId)), 'the pruned backup\'s EBS snapshots were deleted');
    assert.ok(b2.snaps.every((s) => ids.has(s.snapshotId)), 'the kept backup\'s snapshots remain');
    assert.deepEqual((await listBackups(new FileStore(join(dir, 'store')), 'ebs')).map((b) => b.backupId), [b2.backupId]);
  });
});

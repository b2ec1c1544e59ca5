import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AgentClient } from '../../activities/agentClient.ts';
import { agentProcesses, startFleet, type TestFleet } from '../../scripts/lib/fleet.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';

describe('local provider', () => {
  let fleet: TestFleet;
  before(async () => (fleet = await startFleet({ pool: 'lp', nodes: 2 })));
  after(() => fleet.cleanup());

  it('runs each node as a real, reachable gpu-agent process tagged with its pool and node', async () => {
    const nodes = await fleet.provider.list('lp');
    assert.equal(nodes.length, 2);
    for (const n of nodes) {
      assert.equal(n.state, 'running');
      assert.deepEqual(n.tags, { 'drydock-pool': 'lp', 'drydock-node': n.id, 'drydock-managed': 'true' });
      const h = await new AgentClient(n.agentUrl!, fleet.token).health();
      assert.equal(h.nodeId, n.id);
      assert.equal(h.status, 'healthy');
    }
    assert.equal(agentProcesses(fleet.dir).length, 2);
  });

  it('provisioning twice with one key returns the same node and starts one process', async () => {
    const spec = { pool: 'lp', instanceType: 'sim.h100x2' };
    const [a, b] = await Promise.all([fleet.provider.provision(spec, 'key-1'), fleet.provider.provision(spec, 'key-1')]);
    assert.equal(a.id, b.id);
    await waitFor(async () => (await fleet.provider.describe(a.id))?.state === 'running', 20_000, 'the node to run');
    const again = await fleet.provider.provision(spec, 'key-1');
    assert.equal(again.id, a.id);
    assert.equal((await fleet.provider.list('lp')).length, 3);
    // Two racing spawns may both start, but only one may hold the node's lock and stay.
    await waitFor(() => agentProcesses(fleet.dir).length === 3, 30_000, 'exactly 3 agent processes');
  });

  it('terminate stops the process; terminating again or an unknown node succeeds', async () => {
    const [victim] = await fleet.provider.list('lp');
    await fleet.provider.terminate(victim.id);
    await fleet.provider.terminate(victim.id);
    await fleet.provider.terminate('no-such-node');
    assert.equal((await fleet.provider.describe(victim.id))?.state, 'terminated');
    assert.equal((await fleet.provider.list('lp')).some((n) => n.id === victim.id), false);
    await waitFor(() => agentProcesses(fleet.dir).length === 2, 30_000, 'the terminated agent to exit');
  });

  it('lists nodes by pool only', async () => {
    assert.deepEqual(await fleet.provider.list('other-pool'), []);
  });

  it('snapshots a node by copying its data dir; one key gives one snapshot (and one disk made from it); list by tag; delete twice is fine', async () => {
    const [node] = await fleet.provider.list('lp');
    writeFileSync(join(fleet.dir, 'state/nodes', node.id, 'model.bin'), 'weights-v1');
    const req = { source: { nodeId: node.id }, idempotencyKey: 'backup/nightly/1', tags: { 'drydock-backup': 'nightly' } };
    const snap = await fleet.provider.snapshot(req);
    assert.equal(snap.state, 'ready');
    assert.equal(snap.volumeId, node.id);
    writeFileSync(join(fleet.dir, 'state/nodes', node.id, 'model.bin'), 'weights-v2');
    const again = await fleet.provider.snapshot(req);
    assert.equal(again.id, snap.id, 'same key, same snapshot');
    assert.equal(readFileSync(join(fleet.provider.snapshotDataDir(snap.id), 'model.bin'), 'utf8'), 'weights-v1', 'the copy is from the first call');
    assert.equal((await fleet.provider.listSnapshots({ tags: { 'drydock-backup': 'nightly' } })).length, 1);
    assert.deepEqual(await fleet.provider.listSnapshots({ tags: { 'drydock-backup': 'weekly' } }), []);
    // A disk from the snapshot: a new data directory with the snapshot's data; one key, one disk.
    const diskReq = { snapshotId: snap.id, idempotencyKey: 'restore/nightly/1/disks/n', tags: { 'drydock-backup': 'nightly' } };
    const disk = await fleet.provider.createDiskFromSnapshot(diskReq);
    assert.equal(disk.state, 'ready');
    assert.equal(disk.tags['drydock-managed'], 'true');
    assert.equal(readFileSync(join(disk.path!, 'model.bin'), 'utf8'), 'weights-v1');
    writeFileSync(join(disk.path!, 'model.bin'), 'changed on the disk');
    assert.equal((await fleet.provider.createDiskFromSnapshot(diskReq)).id, disk.id, 'same key, same disk');
    assert.equal(readFileSync(join(disk.path!, 'model.bin'), 'utf8'), 'changed on the disk', 'the retry did not copy again');
    assert.notEqual((await fleet.provider.createDiskFromSnapshot({ ...diskReq, idempotencyKey: 'other' })).id, disk.id);
    await assert.rejects(fleet.provider.createDiskFromSnapshot({ ...diskReq, snapshotId: 'snap-0000', idempotencyKey: 'k2' }), /no snapshot 'snap-0000'/);
    await fleet.provider.deleteSnapshot(snap.id);
    await fleet.provider.deleteSnapshot(snap.id);
    assert.deepEqual(await fleet.provider.listSnapshots(), []);
    await assert.rejects(fleet.provider.snapshot({ source: { nodeId: 'nope' }, idempotencyKey: 'k' }), /no node 'nope'/);
  });
});

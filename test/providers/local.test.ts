import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import { AgentClient } from '../../activities/agentClient.ts';
import { createNodeActivities } from '../../activities/nodes.ts';
import { createProbeActivities, DEAD_AT_PROVIDER } from '../../activities/pool/probe.ts';
import { PoolRegistry } from '../../activities/pools.ts';
import { agentPid } from '../../activities/providers/agentProcess.ts';
import { LOCAL_REBOOT_GRACE_MS } from '../../activities/providers/local.ts';
import { nodeIdFor } from '../../activities/providers/naming.ts';
import { agentProcesses, startFleet, type TestFleet } from '../../scripts/lib/fleet.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { assertNotRebootable } from '../helpers/providers.ts';

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

  const agentPost = (url: string, path: string, body: unknown) =>
    fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${fleet.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  /** The XID codes of an agent's health answer (as /health and /sim/faults give it), sorted. */
  const xidCodes = async (res: Response | Promise<Response>) => ((await (await res).json()) as { recentXids?: { code: number }[] }).recentXids?.map((x) => x.code).sort((a, b) => a - b) ?? [];
  const dataDir = (id: string) => join(fleet.dir, 'state/nodes', id);
  const answering = async (id: string) => {
    const n = await fleet.provider.describe(id);
    return n?.state === 'running' && n.agentUrl !== undefined;
  };

  it('reboot restarts the agent process: same node, a new process, only persistent faults survive; once per key', async () => {
    const [node] = await fleet.provider.list('lp');
    assert.equal((await agentPost(node.agentUrl!, '/sim/faults', { kind: 'xid', gpu: 0, code: 48, persistent: true })).status, 200);
    assert.deepEqual(await xidCodes(agentPost(node.agentUrl!, '/sim/faults', { kind: 'xid', gpu: 1, code: 79 })), [48, 79]);
    const before = agentPid(dataDir(node.id));

    await fleet.provider.reboot(node.id, 'remedy/lp/1');
    const rebooted = agentPid(dataDir(node.id));
    assert.ok(rebooted && rebooted !== before, 'a fresh agent process');
    const during = await fleet.provider.describe(node.id);
    assert.equal(during?.dead, undefined, 'a rebooting node is not dead');
    await waitFor(() => answering(node.id), 30_000, 'the rebooted agent to answer');
    const back = await fleet.provider.describe(node.id);
    assert.equal(back?.id, node.id);
    const health = await fetch(`${back!.agentUrl}/health`, { headers: { authorization: `Bearer ${fleet.token}` } });
    assert.deepEqual(await xidCodes(health), [48], 'the persistent fault came back, the other did not');

    await fleet.provider.reboot(node.id, 'remedy/lp/1');
    assert.equal(agentPid(dataDir(node.id)), rebooted, 'a retry with the same key does not reboot again');
    await assertNotRebootable(fleet.provider.reboot('no-such-node'), /no such node.*Replace the node instead/);
    await agentPost(back!.agentUrl!, '/sim/faults/clear', {});
  });

  it('a node whose agent process died is dead at the provider (not provisioning), and the probe says so; a reboot brings it back', async () => {
    const [node] = await fleet.provider.list('lp');
    process.kill(agentPid(dataDir(node.id))!, 'SIGKILL');
    await waitFor(async () => (await fleet.provider.describe(node.id))?.dead !== undefined, 10_000, 'the node to read as dead');
    const dead = (await fleet.provider.list('lp')).find((n) => n.id === node.id);
    assert.deepEqual([dead?.state, dead?.agentUrl, dead?.dead], ['running', undefined, { reason: 'agent process is not alive' }]);
    // A worker that crashed mid-reboot (agent stopped, not yet started) leaves the reboot in the record:
    // the node reads as rebooting for a grace period, then as dead.
    const file = join(dataDir(node.id), 'node.json');
    const rec = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify({ ...rec, rebootStartedAt: new Date().toISOString() }));
    assert.deepEqual([(await fleet.provider.describe(node.id))?.state, (await fleet.provider.describe(node.id))?.dead], ['provisioning', undefined]);
    writeFileSync(file, JSON.stringify({ ...rec, rebootStartedAt: new Date(Date.now() - LOCAL_REBOOT_GRACE_MS - 1000).toISOString() }));
    assert.deepEqual((await fleet.provider.describe(node.id))?.dead, { reason: 'agent process is not alive' });

    const probe = createProbeActivities({ pools: PoolRegistry.fromFile(fleet.poolsFile, fleet.auth) });
    const seen = (await new MockActivityEnvironment().run(probe.probePool, { pool: 'lp', digest: '', timeoutMs: 2000, concurrency: 4 })) as Awaited<ReturnType<typeof probe.probePool>>;
    const change = seen.changes.find((c) => c.id === node.id);
    assert.deepEqual(change, { id: node.id, health: 'unreachable', reasons: [`${DEAD_AT_PROVIDER}agent process is not alive`] });

    await fleet.provider.reboot(node.id);
    await waitFor(() => answering(node.id), 30_000, 'the rebooted agent to answer');
    assert.equal((await fleet.provider.describe(node.id))?.dead, undefined);
  });

  it('provisionNode fails at once, not spinning, when its new node dies before its agent answers', async () => {
    // Replacements boot for 60 s here: long enough to kill the agent before it answers.
    const slow = await startFleet({ pool: 'slow', nodes: 0, bootSeconds: 60 });
    try {
      const acts = createNodeActivities({ pools: PoolRegistry.fromFile(slow.poolsFile, slow.auth) });
      const key = 'replace/slow/x/provision';
      // The SDK logs the expected failure as a warning: keep the test output to what matters.
      const running = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') }).run(acts.provisionNode, { pool: 'slow', idempotencyKey: key }) as Promise<unknown>;
      const dir = join(slow.dir, 'state/nodes', nodeIdFor('slow', key));
      await waitFor(() => agentPid(dir) !== undefined, 10_000, 'the new agent to start booting');
      assert.equal((await slow.provider.describe(nodeIdFor('slow', key)))?.state, 'provisioning', 'booting is provisioning, not dead');
      process.kill(agentPid(dir)!, 'SIGKILL');
      const err = await running.catch((e: unknown) => e);
      assert.ok(err instanceof ApplicationFailure, String(err));
      assert.equal(err.type, 'ProvisionFailed');
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, /is dead at the provider: agent process is not alive/);
    } finally {
      await slow.cleanup();
    }
  });

  it('terminate stops the process; terminating again or an unknown node succeeds', async () => {
    const [victim] = await fleet.provider.list('lp');
    await fleet.provider.terminate(victim.id);
    await fleet.provider.terminate(victim.id);
    await fleet.provider.terminate('no-such-node');
    assert.equal((await fleet.provider.describe(victim.id))?.state, 'terminated');
    assert.equal((await fleet.provider.list('lp')).some((n) => n.id === victim.id), false);
    await waitFor(() => agentProcesses(fleet.dir).length === 2, 30_000, 'the terminated agent to exit');
    await assertNotRebootable(fleet.provider.reboot(victim.id), /it is terminated/);
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

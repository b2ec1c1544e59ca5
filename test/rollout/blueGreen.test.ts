import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import { abortRolloutUpdate, type RolloutResult } from '../../workflows/rollout/api.ts';
import { poolStatus, waitStatus } from '../pool/helpers.ts';
import { allServing, failsWith, rolloutHarness, waitRollout } from './helpers.ts';

const TQ = 'rollout-bluegreen';
const POOL = 'bg';
const NODES = 2;
const quick = { analysis: { intervalSeconds: 0, maxLatencyMs: 120_000 }, drainTimeoutSeconds: 10 };

describe('rollingUpdate blue-green on real agents', () => {
  const spec: FleetPoolSpec = {
    name: POOL,
    minNodes: 1,
    maxNodes: 10,
    health: { probeIntervalSeconds: 1, unhealthyAfter: 3, unreachableAfterSeconds: 60, drainTimeoutSeconds: 10 },
    // adopt: an unclaimed green node would be taken into the pool at once; claims are what prevent it.
    membership: { unknownInstances: 'adopt' },
  };
  const h = rolloutHarness({ taskQueue: TQ, spec, nodes: NODES });

  it('provisions a green set on the new model, switches, then retires blue; the pool keeps its size', async () => {
    const { b } = h.models;
    const blue = [...h.fleet.nodeIds].sort();
    const handle = await h.start('bg-b', { target: { model: { uri: b.path, sha256: b.sha256 } }, strategy: 'blueGreen', scaleDownDelaySeconds: 2, ...quick });
    const during = await waitRollout(handle, (s) => s.phase === 'provisioning' && s.nodes.some((n) => n.role === 'green' && n.state !== 'pending'), 'green to be provisioning');
    const green = during.nodes.filter((n) => n.role === 'green').map((n) => n.id).sort();
    const r = (await handle.result()) as RolloutResult;
    assert.equal(r.outcome, 'succeeded');
    assert.deepEqual(r.status.nodes.filter((n) => n.role === 'blue').map((n) => n.state), ['terminated', 'terminated']);
    const live = Object.keys(await h.served()).sort();
    assert.deepEqual(live, green, 'only green is left running');
    assert.deepEqual(Object.values(await h.served()), Array(NODES).fill(b.sha256));
    await allServing(h);
    const pool = await waitStatus(h.pool, (s) => s.nodes.map((n) => n.id).sort().join() === green.join(), 'the pool to hold green as its members');
    assert.equal(pool.claims.length, 0, 'claims released');
    assert.equal(pool.counts.members, NODES);
    assert.ok(blue.every((id) => !live.includes(id)));
  });

  it('abort after the switch re-admits blue at once and removes green', async () => {
    const { a } = h.models;
    const blue = Object.keys(await h.served()).sort();
    const handle = await h.start('bg-abort', { target: { model: { uri: a.path, sha256: a.sha256 } }, strategy: 'blueGreen', scaleDownDelaySeconds: 600, ...quick });
    const switched = await waitRollout(handle, (s) => s.phase === 'switched', 'the switch', 240_000);
    assert.ok(switched.nodes.filter((n) => n.role === 'blue').every((n) => n.state === 'standby'));
    await handle.executeUpdate(abortRolloutUpdate, { args: [{ reason: 'latency regression' }] });
    const r = await failsWith(handle, 'RolloutAborted');
    assert.match(r.status.reason ?? '', /blue re-admitted/);
    const served = await h.served();
    assert.deepEqual(Object.keys(served).sort(), blue, 'blue is back, green is gone');
    assert.deepEqual(Object.values(served), Array(NODES).fill(h.models.b.sha256));
    await allServing(h);
    const pool = await waitStatus(h.pool, (s) => s.nodes.map((n) => n.id).sort().join() === blue.join(), 'the pool to hold blue again');
    assert.equal(pool.claims.length, 0);
  });
});

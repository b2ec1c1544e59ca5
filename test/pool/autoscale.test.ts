import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import { cordonNodeUpdate } from '../../workflows/pool/api.ts';
import { liveIds, poolHarness, runJob, waitStatus } from './helpers.ts';

const TQ = 'pool-autoscale';
const POOL = 'auto';

describe('fleetPool reactive autoscaling on real agents (utilisation driven by POST /jobs)', () => {
  let load: NodeJS.Timeout | undefined;
  const spec: FleetPoolSpec = {
    name: POOL,
    minNodes: 2,
    maxNodes: 3,
    health: { probeIntervalSeconds: 1, drainTimeoutSeconds: 15 },
    autoscaling: { type: 'reactive', scaleUpAt: 80, scaleDownAt: 20, cooldownSeconds: 3 },
    disruption: { maxUnavailable: 1, minHealthy: 0 },
  };

  /** Keeps every member busy: with no simulated background load, one job in flight is 100 % utilisation. */
  function startLoad(): void {
    const tick = async () => {
      for (const id of await liveIds(h.fleet)) await runJob(h.fleet, id, 3).catch(() => {}); // cordoned nodes answer 503
    };
    void tick();
    load = setInterval(() => void tick(), 1000);
  }
  const stopLoad = () => clearInterval(load);

  const h = poolHarness({ taskQueue: TQ, spec, nodes: 2, fleet: { bootSeconds: 1 } });
  after(() => stopLoad());

  it('scales up under load to max and holds it; scales down when idle, cordoned node first, to min and holds it', async () => {
    startLoad();
    let s = await waitStatus(h.pool, (x) => x.counts.members === 3 && x.counts.healthy === 3, 'a scale-up to 3 nodes');
    assert.ok(s.events.some((e) => e.message.includes(`key pool/${POOL}/scale-up/1`)), 'provisioned with a key from the workflow id and a counter');
    assert.ok(s.events.some((e) => /autoscaler: utilisation \d+ % >= 80 %: up to 3/.test(e.message)), 'the decision came from utilisation');
    // Still busy for several more probes and cooldowns: max holds.
    const probes = s.lastProbe!.at;
    s = await waitStatus(h.pool, (x) => Date.parse(x.lastProbe!.at) - Date.parse(probes) >= 7000, 'seven more seconds of probes under load');
    assert.equal(s.desired, 3, 'max held');
    assert.equal((await liveIds(h.fleet)).length, 3);

    stopLoad();
    const [oldest] = h.fleet.nodeIds;
    await h.pool.executeUpdate(cordonNodeUpdate, { args: [{ nodeId: oldest }] });
    s = await waitStatus(h.pool, (x) => x.counts.members === 2 && x.leases.length === 0, 'a scale-down to 2 nodes', 120_000);
    assert.ok(!s.nodes.some((n) => n.id === oldest), 'the cordoned node was taken first, although it is the oldest');
    assert.ok(s.events.some((e) => e.nodeId === oldest && /scaled down \(drain drained\)/.test(e.message)), 'it was drained before termination');
    assert.equal((await h.fleet.provider.describe(oldest))?.state, 'terminated');
    const at = s.lastProbe!.at;
    s = await waitStatus(h.pool, (x) => Date.parse(x.lastProbe!.at) - Date.parse(at) >= 7000, 'seven more idle seconds');
    assert.equal(s.desired, 2, 'min held');
    assert.deepEqual(await liveIds(h.fleet), s.nodes.map((n) => n.id).sort());
    assert.ok(s.maxDisrupted <= 1);
  });
});

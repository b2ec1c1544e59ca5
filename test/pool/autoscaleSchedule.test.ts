import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import { applySpecUpdate } from '../../workflows/pool/api.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { liveIds, poolHarness, waitStatus } from './helpers.ts';

const TQ = 'pool-autoscale-schedule';
const POOL = 'sched';

/** Local "HH:MM:SS" in UTC at `at`. */
const hms = (at: number) => new Date(at).toISOString().slice(11, 19);

describe('fleetPool scheduled autoscaling on real agents (workflow time, applied with applySpec)', () => {
  const spec: FleetPoolSpec = {
    name: POOL,
    minNodes: 1,
    maxNodes: 3,
    health: { probeIntervalSeconds: 1, drainTimeoutSeconds: 15 },
    disruption: { maxUnavailable: 1, minHealthy: 0 },
  };
  const h = poolHarness({ taskQueue: TQ, spec, nodes: 1, fleet: { bootSeconds: 1 } });

  it('a window opening a few seconds later raises the min to its own (a node joins); its end lowers it again (the node leaves)', async () => {
    // A window must not cross midnight (UTC here): wait out the last seconds of a day.
    await waitFor(async () => Date.now() % 86_400_000 < 86_400_000 - 60_000, 61_000, 'a time well before midnight UTC');
    const opens = Math.ceil((Date.now() + 6000) / 1000) * 1000;
    const closes = opens + 15_000;
    const windows = [{ days: 'daily', start: hms(opens), end: hms(closes), minNodes: 2, maxNodes: 3 }];
    const accepted = await h.pool.executeUpdate(applySpecUpdate, { args: [{ ...spec, autoscaling: { type: 'scheduled', timeZone: 'UTC', windows, downAfterSeconds: 2 } }] });
    assert.equal(accepted.desired, 1, 'before the window: the pool min');
    const label = `daily ${hms(opens)}-${hms(closes)} UTC`;

    let s = await waitStatus(h.pool, (x) => x.counts.members === 2 && x.counts.healthy === 2, 'the window to add a node', 60_000);
    const opened = s.events.find((e) => e.message === `autoscaler: window ${label} open: min 2, max 3`);
    assert.ok(opened, 'the window opening is an event');
    assert.ok(Date.parse(opened.at) >= opens, 'not before the window starts (workflow time)');
    assert.ok(s.events.some((e) => /^autoscaler scheduled: up 1 → 2: outside window .* \[2, 3\]/.test(e.message)), 'the decision names the window');
    assert.deepEqual(s.autoscaler.bounds, { minNodes: 2, maxNodes: 3 });
    assert.equal(s.autoscaler.window, label);
    assert.equal((await liveIds(h.fleet)).length, 2);

    s = await waitStatus(h.pool, (x) => x.counts.members === 1 && x.leases.length === 0, 'the window end to remove the node', 60_000);
    const closed = s.events.find((e) => e.message === `autoscaler: window ${label} closed`);
    assert.ok(closed && Date.parse(closed.at) >= closes, 'closed at its end, not before');
    const down = s.events.find((e) => /^autoscaler scheduled: down 2 → 1: wanted 1 for \d+ s \(down after 2 s/.test(e.message));
    assert.ok(down && Date.parse(down.at) - Date.parse(closed.at) >= 2000, 'down only after downAfterSeconds');
    assert.ok(s.events.some((e) => /scaled down \(drain drained\)/.test(e.message)), 'drained, then terminated');
    assert.deepEqual(await liveIds(h.fleet), s.nodes.map((n) => n.id).sort());
    assert.equal(s.desired, 1);
    assert.deepEqual(s.autoscaler.bounds, { minNodes: 1, maxNodes: 3 });
  });
});

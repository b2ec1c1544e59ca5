// The queue, latency, scheduled and composite autoscalers without a server: the spec's validators,
// each policy's proposals, the timing of decisions, the schedule's zone math, scale-down picks,
// and the probe's load arithmetic (histogram deltas and p95).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bucketDelta, inferenceBuckets, poolLoad, quantileMs } from '../../activities/pool/load.ts';
import { parseFleetPoolSpec, type FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import { decidePolicies } from '../../workflows/pool/autoscale/decide.ts';
import { propose, type PoolLoad } from '../../workflows/pool/autoscale/policies.ts';
import { boundsAt, localTime } from '../../workflows/pool/autoscale/schedule.ts';
import { pickScaleDown, type AutoscalerState } from '../../workflows/pool/autoscaler.ts';
import { size } from '../../workflows/pool/sizing.ts';
import { assertInvalid, START, unitPool } from './unitPool.ts';

const base: FleetPoolSpec = { name: 'gpu', minNodes: 1, maxNodes: 10 };
const parse = (autoscaling: unknown) => parseFleetPoolSpec({ ...base, autoscaling } as FleetPoolSpec).autoscaling;
const rejects = (autoscaling: unknown, field: string, message?: RegExp) => assertInvalid(() => parse(autoscaling), field, message);
const berlinWeekdays = { type: 'scheduled', timeZone: 'Europe/Berlin', windows: [{ days: 'mon-fri', start: '08:00', end: '20:00', minNodes: 4, maxNodes: 12 }] };

describe('autoscaling spec: accepted', () => {
  it('queue with defaults, and with its targets, delays and step', () => {
    const d = parse({ type: 'queue' });
    assert.deepEqual(d.policies, [{ type: 'queue', targetQueuePerNode: 2, targetSlotUtilization: 0.8 }]);
    assert.deepEqual([d.upAfterSeconds, d.downAfterSeconds, d.maxStep], [30, 300, 2]);
    const c = parse({ type: 'queue', targetQueuePerNode: 0, targetSlotUtilization: 1, upAfterSeconds: 0, downAfterSeconds: 1200, maxStep: 5 });
    assert.deepEqual(c.policies, [{ type: 'queue', targetQueuePerNode: 0, targetSlotUtilization: 1 }]);
    assert.deepEqual([c.upAfterSeconds, c.downAfterSeconds, c.maxStep], [0, 1200, 5]);
  });

  it('latency, with scale-down below half the target by default', () => {
    assert.deepEqual(parse({ type: 'latency', targetP95Ms: 5000 }).policies, [{ type: 'latency', targetP95Ms: 5000, scaleDownBelowP95Ms: 2500 }]);
    assert.deepEqual(parse({ type: 'latency', targetP95Ms: 800, scaleDownBelowP95Ms: 100 }).policies, [{ type: 'latency', targetP95Ms: 800, scaleDownBelowP95Ms: 100 }]);
  });

  it('scheduled: days as ranges, lists, names; a window max defaults to the pool max; UTC by default', () => {
    const [p] = parse(berlinWeekdays).policies;
    assert.deepEqual(p, { type: 'scheduled', timeZone: 'Europe/Berlin', windows: [{ days: [1, 2, 3, 4, 5], start: 8 * 3600, end: 20 * 3600, minNodes: 4, maxNodes: 12, label: 'mon-fri 08:00-20:00' }] });
    const [q] = parse({ type: 'scheduled', windows: [{ days: ['sat', 'sun'], start: '00:00', end: '24:00', minNodes: 0 }, { days: 'fri-mon', start: '10:00', end: '11:00', minNodes: 2 }, { start: '12:00', end: '13:00', minNodes: 1 }] }).policies;
    assert.ok(q.type === 'scheduled');
    assert.equal(q.timeZone, 'UTC');
    assert.deepEqual(q.windows.map((w) => [w.days, w.maxNodes]), [[[0, 6], 10], [[0, 1, 5, 6], 10], [[0, 1, 2, 3, 4, 5, 6], 10]]);
    const [r] = parse({ type: 'scheduled', windows: [{ days: 'weekdays', start: '09:00:30', end: '17:30', minNodes: 1 }] }).policies;
    assert.ok(r.type === 'scheduled');
    assert.deepEqual([r.windows[0].days, r.windows[0].start], [[1, 2, 3, 4, 5], 9 * 3600 + 30], 'seconds too, for short windows');
  });

  it('composite: its policies in order, at most one schedule', () => {
    const c = parse({ type: 'composite', policies: [{ type: 'queue', targetQueuePerNode: 1 }, { type: 'latency', targetP95Ms: 2000 }, { type: 'reactive' }, berlinWeekdays], maxStep: 3 });
    assert.deepEqual(c.policies.map((p) => p.type), ['queue', 'latency', 'reactive', 'scheduled']);
    assert.equal(c.maxStep, 3);
  });

  it('none and reactive keep their fields (no policies: they decide as before)', () => {
    const r = parse({ type: 'reactive', scaleUpAt: 90, scaleDownAt: 10, cooldownSeconds: 60 });
    assert.deepEqual([r.type, r.scaleUpAt, r.scaleDownAt, r.cooldownSeconds, r.policies], ['reactive', 90, 10, 60, []]);
    assert.equal(parse(undefined).type, 'none');
  });
});

describe('autoscaling spec: rejected with the field named', () => {
  it('unknown policy types, at the top and inside a composite', () => {
    rejects({ type: 'predictive' }, 'autoscaling.type', /expected one of/);
    rejects({ type: 'composite', policies: [{ type: 'queue' }, { type: 'composite' }] }, 'autoscaling.policies[1].type');
    rejects({ type: 'composite', policies: [{ targetQueuePerNode: 1 }] }, 'autoscaling.policies[0].type');
  });

  it('fields of another policy', () => {
    rejects({ type: 'queue', windows: [] }, 'autoscaling.windows', /unknown field/);
    rejects({ type: 'latency', targetP95Ms: 10, targetQueuePerNode: 1 }, 'autoscaling.targetQueuePerNode', /unknown field/);
    rejects({ type: 'composite', targetQueuePerNode: 1, policies: [{ type: 'queue' }] }, 'autoscaling.targetQueuePerNode', /unknown field/);
    rejects({ type: 'composite', policies: [{ type: 'queue', targetP95Ms: 3 }] }, 'autoscaling.policies[0].targetP95Ms', /unknown field/);
  });

  it('negative or out-of-range targets, delays and steps', () => {
    rejects({ type: 'queue', targetQueuePerNode: -1 }, 'autoscaling.targetQueuePerNode');
    rejects({ type: 'queue', targetSlotUtilization: 0 }, 'autoscaling.targetSlotUtilization', /fraction/);
    rejects({ type: 'queue', targetSlotUtilization: 80 }, 'autoscaling.targetSlotUtilization', /fraction/);
    rejects({ type: 'latency' }, 'autoscaling.targetP95Ms', /is required/);
    rejects({ type: 'latency', targetP95Ms: -5 }, 'autoscaling.targetP95Ms');
    rejects({ type: 'latency', targetP95Ms: 100, scaleDownBelowP95Ms: 100 }, 'autoscaling.scaleDownBelowP95Ms', /below targetP95Ms/);
    rejects({ type: 'queue', upAfterSeconds: -1 }, 'autoscaling.upAfterSeconds');
    rejects({ type: 'queue', downAfterSeconds: 1.5 }, 'autoscaling.downAfterSeconds');
    rejects({ type: 'queue', maxStep: 0 }, 'autoscaling.maxStep');
    rejects({ type: 'composite', policies: [{ type: 'queue', targetQueuePerNode: -2 }] }, 'autoscaling.policies[0].targetQueuePerNode');
  });

  it('windows: end before start, bad times and days, min > max, missing min, unknown zone, empty lists, two schedules', () => {
    const w = (win: object, extra: object = {}) => ({ type: 'scheduled', windows: [win], ...extra });
    rejects(w({ start: '20:00', end: '08:00', minNodes: 1 }), 'autoscaling.windows[0].end', /after start.*crosses midnight/);
    rejects(w({ start: '08:00', end: '08:00', minNodes: 1 }), 'autoscaling.windows[0].end');
    rejects(w({ start: '8:00', end: '09:00', minNodes: 1 }), 'autoscaling.windows[0].start', /HH:MM/);
    rejects(w({ start: '08:00', end: '24:01', minNodes: 1 }), 'autoscaling.windows[0].end');
    rejects(w({ start: '08:61', end: '09:00', minNodes: 1 }), 'autoscaling.windows[0].start');
    rejects(w({ start: '08:00:60', end: '09:00', minNodes: 1 }), 'autoscaling.windows[0].start');
    rejects(w({ end: '09:00', minNodes: 1 }), 'autoscaling.windows[0].start', /is required/);
    rejects(w({ days: 'monday', start: '08:00', end: '09:00', minNodes: 1 }), 'autoscaling.windows[0].days');
    rejects(w({ days: [], start: '08:00', end: '09:00', minNodes: 1 }), 'autoscaling.windows[0].days');
    rejects(w({ start: '08:00', end: '09:00', minNodes: 5, maxNodes: 3 }), 'autoscaling.windows[0].maxNodes', /minNodes/);
    rejects(w({ start: '08:00', end: '09:00' }), 'autoscaling.windows[0].minNodes', /is required/);
    rejects(w({ start: '08:00', end: '09:00', minNodes: -1 }), 'autoscaling.windows[0].minNodes');
    rejects(w({ start: '08:00', end: '09:00', minNodes: 1, label: 'x' }), 'autoscaling.windows[0].label', /unknown field/);
    rejects(w({ start: '08:00', end: '09:00', minNodes: 1 }, { timeZone: 'Europe/Atlantis' }), 'autoscaling.timeZone', /IANA/);
    rejects(w({ start: '08:00', end: '09:00', minNodes: 1 }, { timeZone: 5 }), 'autoscaling.timeZone');
    rejects({ type: 'scheduled', windows: [] }, 'autoscaling.windows');
    rejects({ type: 'scheduled' }, 'autoscaling.windows');
    rejects({ type: 'composite', policies: [] }, 'autoscaling.policies');
    rejects({ type: 'composite', policies: [berlinWeekdays, berlinWeekdays] }, 'autoscaling.policies', /at most one scheduled/);
    rejects({ type: 'composite', policies: [{ type: 'scheduled', windows: [{ start: '09:00', end: '08:00', minNodes: 1 }] }] }, 'autoscaling.policies[0].windows[0].end');
  });
});

describe('scheduled windows: zone math on workflow time', () => {
  it('local day and time in a zone, across daylight saving', () => {
    // 2026-03-29 is the spring change in Europe: 01:00 UTC becomes 03:00 CEST.
    assert.deepEqual(localTime(Date.parse('2026-03-28T07:30:00Z'), 'Europe/Berlin'), { day: 6, seconds: 8 * 3600 + 30 * 60 });
    assert.deepEqual(localTime(Date.parse('2026-03-30T06:30:00Z'), 'Europe/Berlin'), { day: 1, seconds: 8 * 3600 + 30 * 60 });
    assert.deepEqual(localTime(Date.parse('2026-01-01T23:30:00Z'), 'America/New_York'), { day: 4, seconds: 18 * 3600 + 30 * 60 });
    assert.deepEqual(localTime(Date.parse('2026-01-02T00:00:00Z'), 'UTC'), { day: 5, seconds: 0 });
    assert.deepEqual(localTime(Date.parse('2026-01-02T00:00:07Z'), 'Asia/Kolkata'), { day: 5, seconds: 5 * 3600 + 30 * 60 + 7 });
  });

  it('bounds: the open window\'s on its days and hours, the pool\'s outside; overlaps take the larger', () => {
    const { policies } = parse({ ...berlinWeekdays, windows: [...berlinWeekdays.windows, { days: 'mon', start: '12:00', end: '13:00', minNodes: 6, maxNodes: 8 }] });
    const pool = { minNodes: 1, maxNodes: 10 };
    // Monday 2026-01-05: 07:59 Berlin is 06:59 UTC.
    assert.deepEqual(boundsAt(policies, pool, Date.parse('2026-01-05T06:59:00Z')), pool);
    assert.deepEqual(boundsAt(policies, pool, Date.parse('2026-01-05T07:00:00Z')), { minNodes: 4, maxNodes: 12, window: 'mon-fri 08:00-20:00 Europe/Berlin' });
    assert.deepEqual(boundsAt(policies, pool, Date.parse('2026-01-05T11:30:00Z')), { minNodes: 6, maxNodes: 12, window: 'mon-fri 08:00-20:00 + mon 12:00-13:00 Europe/Berlin' });
    assert.deepEqual(boundsAt(policies, pool, Date.parse('2026-01-05T19:00:00Z')), pool, 'the end is exclusive');
    assert.deepEqual(boundsAt(policies, pool, Date.parse('2026-01-10T10:00:00Z')), pool, 'Saturday');
  });
});

const load = (o: Partial<PoolLoad>): PoolLoad => ({ nodes: 2, slotsBusy: 0, slotsTotal: 8, queued: 0, ...o });
const noBounds = { minNodes: 1, maxNodes: 10 };

describe('policy proposals', () => {
  const [queue] = parse({ type: 'queue', targetQueuePerNode: 2, targetSlotUtilization: 0.8 }).policies;
  const [latency] = parse({ type: 'latency', targetP95Ms: 1000 }).policies;
  const [reactive] = parse({ type: 'composite', policies: [{ type: 'reactive', scaleUpAt: 80, scaleDownAt: 20 }] }).policies;

  it('queue: up when waiting requests per node or busy slots exceed their targets, to fit the demand', () => {
    const up = propose(queue, load({ slotsBusy: 8, queued: 12 }), 2, noBounds);
    assert.equal(up.wanted, 4, '20 requests over 5.2 per node (4 slots × 0.8 + 2 waiting)');
    assert.match(up.inputs, /queue 12 on 2 node\(s\) \(6\.0\/node > 2\), slots 8\/8 busy \(100 % > 80 %\)/);
    assert.equal(propose(queue, load({ slotsBusy: 7, queued: 0 }), 2, noBounds).wanted, 3, 'slots 88 % > 80 %: at least one more');
    assert.equal(propose(queue, load({ slotsBusy: 2, queued: 5 }), 2, noBounds).wanted, 3, '2.5 waiting per node > 2');
  });

  it('queue: holds in between, down only when the demand fits fewer nodes under the slot target', () => {
    assert.equal(propose(queue, load({ slotsBusy: 6, queued: 0 }), 2, noBounds).wanted, 2, '75 % on 2 nodes: one node would be 150 %');
    assert.equal(propose(queue, load({ slotsBusy: 3, queued: 0 }), 2, noBounds).wanted, 1, '3 busy fit one node at 80 %');
    assert.equal(propose(queue, load({ nodes: 4, slotsTotal: 16 }), 4, noBounds).wanted, 0, 'no demand at all: as small as the bounds allow');
    assert.equal(propose(queue, load({ nodes: 2, slotsBusy: 2 }), 1, noBounds).wanted, 1, 'never above the current desired size when going down');
  });

  it('queue: counts serving nodes only, so nodes still booting are not asked for twice', () => {
    // desired is already 4 (two nodes booting); the two serving are saturated: it wants 4, not 5.
    assert.equal(propose(queue, load({ slotsBusy: 8, queued: 12 }), 4, noBounds).wanted, 4);
  });

  it('queue: no opinion without serving nodes that report slots', () => {
    assert.equal(propose(queue, undefined, 2, noBounds).wanted, undefined);
    assert.equal(propose(queue, load({ nodes: 0, slotsTotal: 0 }), 2, noBounds).wanted, undefined);
  });

  it('latency: up when p95 exceeds the target (up to double), down below the low mark or with no requests, else hold', () => {
    assert.equal(propose(latency, load({ requests: 40, p95Ms: 1200 }), 2, noBounds).wanted, 3);
    assert.equal(propose(latency, load({ nodes: 4, requests: 40, p95Ms: 9000 }), 4, noBounds).wanted, 8);
    assert.match(propose(latency, load({ requests: 40, p95Ms: 1200 }), 2, noBounds).inputs, /p95 1200 ms over 40 request\(s\) on 2 node\(s\) \(target 1000 ms/);
    assert.equal(propose(latency, load({ requests: 40, p95Ms: 700 }), 2, noBounds).wanted, 2);
    assert.equal(propose(latency, load({ requests: 40, p95Ms: 300 }), 2, noBounds).wanted, 1);
    assert.equal(propose(latency, load({ requests: 0 }), 2, noBounds).wanted, 1);
    assert.equal(propose(latency, load({}), 2, noBounds).wanted, undefined, 'not measured (no earlier histogram on this worker)');
  });

  it('reactive inside a composite: utilisation of accepting nodes', () => {
    assert.equal(propose(reactive, load({ utilization: 90, utilizationNodes: 3 }), 3, noBounds).wanted, 4);
    assert.equal(propose(reactive, load({ utilization: 10, utilizationNodes: 3 }), 3, noBounds).wanted, 2);
    assert.equal(propose(reactive, load({ utilization: 50, utilizationNodes: 3 }), 3, noBounds).wanted, 3);
    assert.equal(propose(reactive, load({}), 3, noBounds).wanted, undefined);
  });
});

describe('decisions: delays, steps, bounds', () => {
  const pool = { minNodes: 1, maxNodes: 10 };
  const queueCfg = parse({ type: 'queue', upAfterSeconds: 10, downAfterSeconds: 30, maxStep: 2 });
  const busy = load({ slotsBusy: 8, queued: 40 }); // wants 10
  const idle = load({ nodes: 6, slotsTotal: 24 });

  it('scales up only once the pool has wanted more for upAfterSeconds, by at most maxStep, with its inputs in the event', () => {
    let s: AutoscalerState = { desired: 2 };
    let d = decidePolicies(s, queueCfg, pool, busy, START);
    assert.equal(d.change, 'none');
    assert.equal(d.state.upSince, START);
    d = decidePolicies(d.state, queueCfg, pool, busy, START + 9_000);
    assert.equal(d.change, 'none');
    d = decidePolicies(d.state, queueCfg, pool, busy, START + 10_000);
    assert.equal(d.change, 'up');
    assert.equal(d.state.desired, 4);
    assert.equal(d.state.lastScaleAt, START + 10_000);
    assert.match(d.events[0], /^autoscaler queue: up 2 → 4: wanted 10 for 10 s \(up after 10 s, step ≤ 2\); queue 40 on 2 node\(s\).*slots 8\/8 busy.*pool bounds \[1, 10\]/);
    // The next step waits another upAfterSeconds from the decision.
    s = d.state;
    d = decidePolicies(s, queueCfg, pool, busy, START + 11_000);
    assert.equal(d.change, 'none');
    d = decidePolicies(d.state, queueCfg, pool, busy, START + 21_000);
    assert.equal(d.state.desired, 6);
  });

  it('a blip resets the delay; scale-down waits downAfterSeconds', () => {
    let d = decidePolicies({ desired: 2 }, queueCfg, pool, busy, START);
    d = decidePolicies(d.state, queueCfg, pool, load({ slotsBusy: 5 }), START + 5_000);
    assert.equal(d.state.upSince, undefined, 'held: the pool no longer wants more');
    d = decidePolicies(d.state, queueCfg, pool, busy, START + 9_000);
    d = decidePolicies(d.state, queueCfg, pool, busy, START + 15_000);
    assert.equal(d.change, 'none', 'only 6 s since the blip');

    let e = decidePolicies({ desired: 6 }, queueCfg, pool, idle, START);
    e = decidePolicies(e.state, queueCfg, pool, idle, START + 29_000);
    assert.equal(e.change, 'none');
    e = decidePolicies(e.state, queueCfg, pool, idle, START + 30_000);
    assert.deepEqual([e.change, e.state.desired], ['down', 4]);
    assert.match(e.events[0], /^autoscaler queue: down 6 → 4: wanted 1 for 30 s \(down after 30 s/);
  });

  it('no opinion holds and clears the delays', () => {
    let d = decidePolicies({ desired: 2 }, queueCfg, pool, busy, START);
    d = decidePolicies(d.state, queueCfg, pool, undefined, START + 60_000);
    assert.deepEqual([d.change, d.state.desired, d.state.upSince], ['none', 2, undefined]);
  });

  it('scheduled: a window raises the min at once, its end lowers it after downAfterSeconds; both are events', () => {
    const cfg = parse({ type: 'scheduled', timeZone: 'Europe/Berlin', windows: [{ start: '08:00', end: '09:00', minNodes: 4, maxNodes: 6 }], downAfterSeconds: 60, maxStep: 10 });
    const open = Date.parse('2026-01-05T07:00:00Z');
    let d = decidePolicies({ desired: 1 }, cfg, pool, undefined, open - 10_000);
    assert.equal(d.change, 'none');
    d = decidePolicies(d.state, cfg, pool, undefined, open);
    assert.deepEqual([d.change, d.state.desired, d.state.window], ['up', 4, 'daily 08:00-09:00 Europe/Berlin']);
    assert.deepEqual(d.state.bounds, { minNodes: 4, maxNodes: 6 });
    assert.match(d.events[0], /window daily 08:00-09:00 Europe\/Berlin open: min 4, max 6/);
    assert.match(d.events[1], /^autoscaler scheduled: up 1 → 4: outside window daily 08:00-09:00 Europe\/Berlin \[4, 6\]/);
    const close = open + 3600_000;
    d = decidePolicies(d.state, cfg, pool, undefined, close);
    assert.deepEqual([d.change, d.state.desired, d.state.window], ['none', 4, undefined]);
    assert.match(d.events[0], /window daily 08:00-09:00 Europe\/Berlin closed/);
    d = decidePolicies(d.state, cfg, pool, undefined, close + 60_000);
    assert.deepEqual([d.change, d.state.desired], ['down', 1]);
  });

  it('composite: the largest wins, and a window clamps it (never below its min, never above its max)', () => {
    const cfg = parse({ type: 'composite', upAfterSeconds: 0, downAfterSeconds: 0, maxStep: 20, policies: [{ type: 'queue' }, { type: 'scheduled', windows: [{ start: '00:00', end: '12:00', minNodes: 3, maxNodes: 5 }] }] });
    const morning = Date.parse('2026-01-05T06:00:00Z');
    const evening = Date.parse('2026-01-05T18:00:00Z');
    assert.equal(decidePolicies({ desired: 3 }, cfg, pool, busy, morning).state.desired, 5, 'queue wants 10, the window allows 5');
    assert.equal(decidePolicies({ desired: 5 }, cfg, pool, idle, morning).state.desired, 3, 'queue wants 1, the window keeps 3');
    assert.equal(decidePolicies({ desired: 3 }, cfg, pool, busy, evening).state.desired, 10, 'no window: the pool max');
    assert.equal(decidePolicies({ desired: 3 }, cfg, pool, load({ slotsBusy: 5 }), morning).state.desired, 3, 'queue holds at 2, the window min is 3: 3');
    const big = decidePolicies({ desired: 3 }, cfg, pool, load({ slotsBusy: 8, queued: 14 }), morning);
    assert.match(big.events.at(-1)!, /queue 14 on 2 node\(s\).*; window daily 00:00-12:00 UTC \[3, 5\]/);
  });
});

describe('scale-down picks and the size step', () => {
  it('cordoned, then idle, then least-loaded, then newest', () => {
    const n = (id: string, o: Partial<{ cordoned: boolean; idle: boolean; joinedAt: number; load: number }> = {}) => ({ id, cordoned: false, idle: false, joinedAt: 0, ...o });
    assert.equal(pickScaleDown([n('a', { load: 0 }), n('b', { cordoned: true, load: 9 })])!.id, 'b');
    assert.equal(pickScaleDown([n('a', { load: 1 }), n('b', { idle: true, load: 0 })])!.id, 'b');
    assert.equal(pickScaleDown([n('a', { load: 3 }), n('b', { load: 1 }), n('c', { load: 2 })])!.id, 'b');
    assert.equal(pickScaleDown([n('a', { load: 3, joinedAt: 5 }), n('b', { joinedAt: 9 })])!.id, 'a', 'a known load goes before an unknown one');
    assert.equal(pickScaleDown([n('a', { joinedAt: 1 }), n('b', { joinedAt: 2 })])!.id, 'b', 'without loads: the newest, as before');
  });

  it('the size step queues scale-downs for the least-loaded nodes, never for more than the decision removed', () => {
    const p = unitPool({ spec: { minNodes: 1, autoscaling: { type: 'queue' } }, nodes: ['n1', 'n2', 'n3', 'n4'] });
    p.ctx.state.loads = { n1: 3, n2: 0, n3: 1, n4: 5 };
    p.ctx.state.idle = [];
    p.ctx.state.autoscaler.desired = 2;
    size(p.ctx);
    assert.deepEqual(p.ctx.state.budget.queue.map((r) => r.nodeId), ['n2', 'n3']);
  });
});

describe('probe load arithmetic', () => {
  const metrics = (c: { le: string; n: number }[], route = 'POST /v1/completions') =>
    [
      '# TYPE drydock_request_duration_seconds histogram',
      ...c.map(({ le, n }) => `drydock_request_duration_seconds_bucket{le="${le}",route="${route}",status="200"} ${n}`),
      'drydock_request_duration_seconds_bucket{le="+Inf",route="GET /health",status="200"} 999',
    ].join('\n');

  it('reads the inference routes\' buckets only, summed over routes and statuses', () => {
    const text = `${metrics([{ le: '0.5', n: 3 }, { le: '1', n: 5 }, { le: '+Inf', n: 6 }])}\n${metrics([{ le: '0.5', n: 1 }, { le: '1', n: 1 }, { le: '+Inf', n: 1 }], 'POST /v1/chat/completions')}`;
    assert.deepEqual([...inferenceBuckets(text)], [[0.5, 4], [1, 6], [Infinity, 7]]);
  });

  it('deltas between probes; a restarted agent starts over', () => {
    const a = new Map([[1, 5], [Infinity, 6]]);
    assert.deepEqual([...bucketDelta(new Map([[1, 9], [Infinity, 12]]), a)], [[1, 4], [Infinity, 6]]);
    assert.deepEqual([...bucketDelta(new Map([[1, 2], [Infinity, 2]]), a)], [[1, 2], [Infinity, 2]]);
  });

  it('p95 interpolated inside its bucket; none without requests', () => {
    assert.equal(quantileMs(new Map([[0.1, 0], [1, 100], [Infinity, 100]]), 0.95), 955);
    assert.equal(quantileMs(new Map([[0.5, 90], [2.5, 100], [Infinity, 100]]), 0.95), 1500);
    assert.equal(quantileMs(new Map([[1, 0], [Infinity, 10]]), 0.95), 1000, 'beyond the last bound: that bound');
    assert.equal(quantileMs(new Map([[1, 0], [Infinity, 0]]), 0.95), undefined);
  });

  it('pool load over accepting nodes with slots; least-loaded list; latency from the second probe on', () => {
    const previous = new Map<string, Map<number, number>>();
    const node = (id: string, accepting: boolean, busy: number, queued: number, inFlight: number, b?: [number, number][]) => ({
      id,
      load: { accepting, inFlight, slots: { busy, total: 4, queued }, ...(b ? { buckets: new Map(b) } : {}) },
    });
    const first = poolLoad([node('a', true, 4, 3, 7, [[1, 10], [Infinity, 10]]), node('b', true, 1, 0, 1, [[1, 0], [Infinity, 0]]), node('c', false, 2, 0, 2), { id: 'd' }], previous, true);
    assert.deepEqual(first.load, { nodes: 2, slotsBusy: 5, slotsTotal: 8, queued: 3 }, 'no latency yet: no earlier counts');
    assert.deepEqual(first.leastLoaded, [{ id: 'b', inFlight: 1 }, { id: 'a', inFlight: 7 }]);
    const second = poolLoad([node('a', true, 0, 0, 0, [[1, 10], [Infinity, 30]]), node('b', true, 0, 0, 0, [[1, 0], [Infinity, 0]])], previous, true);
    assert.deepEqual([second.load.requests, second.load.p95Ms], [20, 1000]);
  });
});

// The pool's pure policies: the spec, the breaker, the autoscaler and the probe digest
// (the budget: budget.test.ts; handlers and validators: handlers.test.ts, validators.test.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyChanges, diffViews, viewDigest } from '../../workflows/common/digest.ts';
import { decide, pickScaleDown } from '../../workflows/pool/autoscaler.ts';
import { closedBreaker, evaluate, recordBad, reset } from '../../workflows/pool/breaker.ts';
import { FLEET_POOL_DEFAULTS, parseFleetPoolSpec, resolveAmount } from '../../workflows/inputs/fleetPool.ts';
import { assertInvalid } from './unitPool.ts';

function rejects(spec: unknown, field: string, message?: RegExp): void {
  assertInvalid(() => parseFleetPoolSpec(spec), field, message);
}

describe('pool spec', () => {
  const base = { name: 'gpu-a', minNodes: 2, maxNodes: 5 };
  it('fills every default from one place', () => {
    const c = parseFleetPoolSpec(base);
    assert.deepEqual(c.health, FLEET_POOL_DEFAULTS.health);
    assert.deepEqual(c.disruption, FLEET_POOL_DEFAULTS.disruption);
    assert.equal(c.autoscaling.type, 'none');
    assert.equal(c.health.unhealthyAfter, 2);
    assert.equal(c.disruption.breaker.maxUnhealthyFraction, 0.3);
  });
  it('rejects bad fields, naming them', () => {
    rejects({ ...base, disruption: { maxUnavailable: '150%' } }, 'disruption.maxUnavailable');
    rejects({ ...base, disruption: { maxUnavailable: 0 } }, 'disruption.maxUnavailable');
    rejects({ ...base, disruption: { breaker: { maxUnhealthyFraction: 2 } } }, 'disruption.breaker.maxUnhealthyFraction');
    rejects({ ...base, disruption: { breaker: 'x' } }, 'disruption.breaker');
    rejects({ ...base, health: { unhealthyAfter: 0 } }, 'health.unhealthyAfter');
    rejects({ ...base, health: { degraded: 'replace' } }, 'health.degraded');
    rejects({ ...base, health: { bogus: 1 } }, 'health.bogus');
    rejects({ ...base, maxNodes: 1 }, 'maxNodes');
    rejects({ name: 'gpu-a', maxNodes: 3 }, 'minNodes');
    rejects({ ...base, name: 'Bad_Name' }, 'name');
    rejects({ ...base, autoscaling: { type: 'predictive' } }, 'autoscaling.type', /expected one of 'none', 'reactive', 'queue', 'latency', 'scheduled', 'composite'/);
    rejects({ ...base, autoscaling: { type: 'reactive', scaleUpAt: 20, scaleDownAt: 30 } }, 'autoscaling.scaleDownAt');
    rejects({ ...base, membership: { unknownInstances: 'kill' } }, 'membership.unknownInstances');
  });
  it('resolves counts and percentages', () => {
    assert.equal(resolveAmount({ count: 3 }, 10, 'down-min-1'), 3);
    assert.equal(resolveAmount({ percent: 25 }, 10, 'down-min-1'), 2);
    assert.equal(resolveAmount({ percent: 5 }, 10, 'down-min-1'), 1);
    assert.equal(resolveAmount({ percent: 51 }, 5, 'up'), 3);
  });
});

describe('circuit breaker', () => {
  const cfg = { maxUnhealthyFraction: 0.3, windowSeconds: 60 };
  it('opens when the bad fraction in the window passes the limit and stays open until reset', () => {
    let b = recordBad(closedBreaker(), 'n1', 0);
    b = evaluate(b, cfg, { size: 10, healthy: 9, minHealthy: 0 }, 1000);
    assert.equal(b.open, false);
    for (const n of ['n2', 'n3', 'n4']) b = recordBad(b, n, 2000);
    b = evaluate(b, cfg, { size: 10, healthy: 6, minHealthy: 0 }, 3000);
    assert.equal(b.open, true);
    assert.match(b.reason!, /4 of 10/);
    b = evaluate(b, cfg, { size: 10, healthy: 10, minHealthy: 0 }, 999_000);
    assert.equal(b.open, true, 'only an operator closes it');
    assert.equal(reset().open, false);
  });
  it('never opens on a single failure, even in a small pool', () => {
    const b = evaluate(recordBad(closedBreaker(), 'n1', 0), cfg, { size: 3, healthy: 2, minHealthy: 0 }, 1);
    assert.equal(b.open, false);
    assert.equal(evaluate(recordBad(b, 'n2', 2), cfg, { size: 3, healthy: 1, minHealthy: 0 }, 3).open, true);
  });
  it('forgets failures outside the window, and opens below minHealthy', () => {
    let b = recordBad(recordBad(recordBad(recordBad(closedBreaker(), 'a', 0), 'b', 0), 'c', 0), 'd', 0);
    b = evaluate(b, cfg, { size: 10, healthy: 10, minHealthy: 0 }, 61_000);
    assert.equal(b.open, false);
    assert.equal(b.recent.length, 0);
    b = evaluate(b, cfg, { size: 10, healthy: 4, minHealthy: 6 }, 62_000);
    assert.equal(b.open, true);
    assert.match(b.reason!, /minHealthy/);
  });
});

describe('reactive autoscaler', () => {
  const cfg = { type: 'reactive' as const, scaleUpAt: 80, scaleDownAt: 20, cooldownSeconds: 60, minNodes: 2, maxNodes: 4 };
  it('scales up and down with a cooldown, within min and max', () => {
    let d = decide({ desired: 2 }, cfg, 90, 0);
    assert.equal(d.change, 'up');
    assert.equal(d.state.desired, 3);
    d = decide(d.state, cfg, 95, 30_000);
    assert.equal(d.change, 'none', 'cooling down');
    d = decide(d.state, cfg, 95, 61_000);
    assert.equal(d.state.desired, 4);
    d = decide(d.state, cfg, 100, 200_000);
    assert.equal(d.state.desired, 4, 'max held');
    d = decide(d.state, cfg, 5, 300_000);
    assert.equal(d.state.desired, 3);
    d = decide(d.state, cfg, 5, 400_000);
    d = decide(d.state, cfg, 5, 500_000);
    assert.equal(d.state.desired, 2, 'min held');
    assert.equal(decide({ desired: 3 }, { ...cfg, type: 'none' }, 100, 0).change, 'none');
  });
  it('takes cordoned, then idle, then newest nodes first', () => {
    const n = (id: string, cordoned: boolean, idle: boolean, joinedAt: number) => ({ id, cordoned, idle, joinedAt });
    assert.equal(pickScaleDown([n('a', false, true, 5), n('b', true, false, 1), n('c', false, false, 9)])!.id, 'b');
    assert.equal(pickScaleDown([n('a', false, true, 5), n('c', false, false, 9)])!.id, 'a');
    assert.equal(pickScaleDown([n('a', false, false, 5), n('c', false, false, 9)])!.id, 'c');
  });
});

describe('probe view digest', () => {
  it('round-trips changes and digests order-independently', () => {
    const a = { n1: 'healthy', n2: 'unhealthy' } as const;
    const b = { n2: 'healthy', n3: 'unreachable' } as const;
    assert.deepEqual(applyChanges(a, diffViews(a, b)), b);
    assert.equal(viewDigest({ x: 'healthy', y: 'degraded' }), viewDigest({ y: 'degraded', x: 'healthy' }));
    assert.notEqual(viewDigest(a), viewDigest(b));
  });
});

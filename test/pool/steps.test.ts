import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProbePoolResult } from '../../activities/pool/probe.ts';
import { viewDigest } from '../../workflows/common/digest.ts';
import * as budget from '../../workflows/pool/budget.ts';
import { reconcile } from '../../workflows/pool/membership.ts';
import { applyProbe, probeFailed, probeInput } from '../../workflows/pool/probe.ts';
import { remediate } from '../../workflows/pool/remediation.ts';
import { size } from '../../workflows/pool/sizing.ts';
import { START, unitPool } from './unitPool.ts';

/** The steps of the pool's loop (probe, reconcile, remediate, size) on plain state, without a server. */

function answer(changes: ProbePoolResult['changes'], extra: Partial<ProbePoolResult> = {}): ProbePoolResult {
  return { full: false, changes, digest: '', activeNodes: 0, idle: [], probed: 3, tookMs: 12, ...extra };
}

describe('probe', () => {
  it('asks with the digest of its view and the health settings', () => {
    const p = unitPool({ spec: { health: { probeTimeoutMs: 500, probeConcurrency: 7 } }, nodes: ['n1', 'n2'] });
    assert.deepEqual(probeInput(p.ctx), { pool: 'gpu', digest: viewDigest({ n1: 'healthy', n2: 'healthy' }), timeoutMs: 500, concurrency: 7 });
  });

  it('counts unhealthy probes, tells each transition once, and records nodes gone bad for the breaker', () => {
    const p = unitPool({ nodes: ['n1', 'n2', 'n3'] });
    const s = p.ctx.state;
    const at = p.ctx.now();
    applyProbe(p.ctx, at, answer([{ id: 'n1', health: 'unhealthy', reasons: ['xid 79'] }, { id: 'n2', health: 'degraded', reasons: ['hot'] }]));
    assert.deepEqual(s.lastProbe, { at, probed: 3, tookMs: 12, full: false });
    assert.deepEqual([s.nodes.n1.health, s.nodes.n1.badProbes, s.nodes.n1.reasons], ['unhealthy', 1, ['xid 79']]);
    assert.deepEqual(p.events(), ['unhealthy: xid 79', 'degraded (reported, not replaced): hot']);
    assert.deepEqual(s.breaker.recent.map((r) => r.nodeId), ['n1']);
    applyProbe(p.ctx, at, answer([]));
    assert.equal(s.nodes.n1.badProbes, 2, 'the view still says unhealthy');
    assert.equal(p.events().length, 2, 'no new transition');
    applyProbe(p.ctx, at, answer([{ id: 'n1', health: 'healthy' }, { id: 'n3', health: 'unreachable' }]));
    assert.deepEqual([s.nodes.n1.health, s.nodes.n1.badProbes, s.nodes.n1.reasons], ['healthy', 0, undefined]);
    assert.equal(s.nodes.n3.unreachableSince, p.ctx.now());
    assert.deepEqual(p.events().slice(2), ['recovered (was unhealthy)', 'unreachable: ']);
    p.advance(5000);
    applyProbe(p.ctx, at, answer([]));
    assert.equal(s.nodes.n3.unreachableSince, p.ctx.now() - 5000, 'unreachable since the first probe that said so');
  });

  it('a full answer replaces the view; members it does not list keep their last health', () => {
    const p = unitPool({ nodes: ['n1', 'n2'] });
    applyProbe(p.ctx, p.ctx.now(), answer([{ id: 'n1', health: 'healthy' }, { id: 'x9', health: 'healthy' }], { full: true, idle: ['n1'] }));
    assert.deepEqual(p.ctx.state.view, { n1: 'healthy', x9: 'healthy' });
    assert.deepEqual(p.ctx.state.idle, ['n1']);
    assert.equal(p.ctx.state.nodes.n2.health, 'healthy');
  });

  it('drives the autoscaler from the utilisation it reports', () => {
    const p = unitPool({ spec: { autoscaling: { type: 'reactive', scaleUpAt: 80 } }, nodes: ['n1', 'n2'] });
    applyProbe(p.ctx, p.ctx.now(), answer([], { utilization: 91 }));
    assert.equal(p.ctx.state.autoscaler.desired, 3);
    assert.equal(p.events().at(-1), 'autoscaler: utilisation 91 % >= 80 %: up to 3');
  });

  it('a failed probe is an event, and the next one is due an interval later', () => {
    const p = unitPool({ nodes: ['n1'] });
    const at = p.ctx.now();
    p.advance(250);
    probeFailed(p.ctx, at, new Error('agent list timed out'));
    assert.deepEqual(p.ctx.state.lastProbe, { at, probed: 0, tookMs: 250, full: false });
    assert.deepEqual(p.events(), ['probe failed: agent list timed out']);
  });
});

describe('stray cordons', () => {
  it('a member cordoned at the agent with nothing of the pool holding it is uncordoned after two probes; held ones never', () => {
    const p = unitPool({ nodes: ['stray', { id: 'quar', quarantinedAt: START }, { id: 'op', phase: 'cordoned' }, 'leased', 'sick', 'busy'] });
    p.ctx.run.uncordonStrays = true;
    const s = p.ctx.state;
    s.nodes.sick.health = s.view.sick = 'unhealthy';
    s.budget = budget.grant(budget.request(s.budget, { holder: 'rollout/r1/leased', kind: 'external', nodeId: 'leased', requestedAt: START }), 2, START).budget;
    p.ctx.run.tasks.set('uncordon/busy', Promise.resolve());
    const all = answer([], { cordoned: ['stray', 'quar', 'op', 'leased', 'sick', 'busy', 'gone'] });
    applyProbe(p.ctx, p.ctx.now(), all);
    assert.deepEqual(p.work, [], 'one probe is not enough: an uncordon may be on its way');
    applyProbe(p.ctx, p.ctx.now(), all);
    assert.deepEqual(p.work, [{ kind: 'uncordon', nodeId: 'stray' }], 'only the stray: quarantined, operator-cordoned, leased, sick and busy nodes are held');
    assert.match(p.events().at(-1)!, /cordoned at the agent with nothing of the pool holding it \(2 probes\): uncordoned/);
    // A probe that no longer sees it cordoned starts the count again.
    const q = unitPool({ nodes: ['n1'] });
    q.ctx.run.uncordonStrays = true;
    applyProbe(q.ctx, q.ctx.now(), answer([], { cordoned: ['n1'] }));
    applyProbe(q.ctx, q.ctx.now(), answer([]));
    applyProbe(q.ctx, q.ctx.now(), answer([], { cordoned: ['n1'] }));
    assert.deepEqual(q.work, []);
  });

  it('pools replaying a history from before the patch do nothing about them', () => {
    const p = unitPool({ nodes: ['stray'] });
    for (let i = 0; i < 3; i++) applyProbe(p.ctx, p.ctx.now(), answer([], { cordoned: ['stray'] }));
    assert.deepEqual(p.work, []);
  });
});

describe('membership', () => {
  it('the first reconcile adopts every live instance and sets desired (clamped to min/max, or desiredNodes)', () => {
    const p = unitPool({ spec: { minNodes: 1, maxNodes: 2 } });
    p.ctx.state.view = { a: 'healthy', b: 'unreachable', c: 'healthy' };
    reconcile(p.ctx);
    assert.deepEqual(Object.keys(p.ctx.state.nodes), ['a', 'b', 'c']);
    assert.equal(p.ctx.state.nodes.b.unreachableSince, p.ctx.now());
    assert.equal(p.ctx.state.autoscaler.desired, 2);
    assert.equal(p.ctx.state.initialized, true);
    assert.deepEqual(p.events(), ['reconciled with the provider: 3 live instance(s) adopted; desired 2']);
    const q = unitPool({ spec: { desiredNodes: 4 } });
    q.ctx.state.view = { a: 'healthy' };
    reconcile(q.ctx);
    assert.equal(q.ctx.state.autoscaler.desired, 4);
  });

  it('drops members the provider no longer lists, except ones being replaced, leaving, or that joined after the probe', () => {
    const p = unitPool({ nodes: ['gone', { id: 'swap', phase: 'replacing' }, { id: 'down', phase: 'leaving' }, 'new', 'here'] });
    const s = p.ctx.state;
    s.nodes.new.joinedAt = s.lastProbe!.at;
    s.budget = budget.grant(budget.request(s.budget, { holder: 'cordon/gone', kind: 'cordon', nodeId: 'gone', requestedAt: 0 }), 1, 0).budget;
    s.view = { here: 'healthy' };
    reconcile(p.ctx);
    assert.deepEqual(Object.keys(s.nodes).sort(), ['down', 'here', 'new', 'swap']);
    assert.deepEqual(s.budget.leases, [], "the missing node's cordon lease is given back");
    assert.deepEqual(p.events(), ['missing at the provider: removed; the pool will provision a replacement to hold its size']);
  });

  it('adopts unknown instances once no replacement or scale-up runs, never claimed ones', () => {
    const p = unitPool({ nodes: ['n1'] });
    const s = p.ctx.state;
    s.view = { n1: 'healthy', stray: 'healthy', green: 'healthy' };
    s.claims = { green: 'rollout/gpu/bg' };
    p.ctx.run.tasks.set('pool/gpu/scale-up/1', Promise.resolve());
    reconcile(p.ctx);
    assert.deepEqual(Object.keys(s.nodes), ['n1'], 'a scale-up may be bringing it in');
    p.ctx.run.tasks.clear();
    s.budget = budget.grant(budget.request(s.budget, { holder: 'replace/gpu/n1', kind: 'external', nodeId: 'n1', requestedAt: 0 }), 1, 0).budget;
    reconcile(p.ctx);
    assert.deepEqual(Object.keys(s.nodes), ['n1'], 'an outside replacement may be bringing it in');
    s.budget = budget.emptyBudget();
    reconcile(p.ctx);
    assert.deepEqual(Object.keys(s.nodes), ['n1', 'stray']);
    assert.deepEqual(p.events(), ['unknown drydock-tagged instance adopted']);
  });

  it('with unknownInstances: report, tells each unknown instance once and forgets it when gone', () => {
    const p = unitPool({ spec: { membership: { unknownInstances: 'report' } }, nodes: ['n1'] });
    const s = p.ctx.state;
    s.view = { n1: 'healthy', stray: 'healthy' };
    reconcile(p.ctx);
    reconcile(p.ctx);
    assert.deepEqual(Object.keys(s.nodes), ['n1']);
    assert.deepEqual(s.reportedUnknown, ['stray']);
    assert.deepEqual(p.events(), ['unknown drydock-tagged instance (reported, not adopted)']);
    s.view = { n1: 'healthy' };
    reconcile(p.ctx);
    assert.deepEqual(s.reportedUnknown, []);
  });
});

describe('remediation', () => {
  it('requests a replacement after unhealthyAfter probes or unreachableAfterSeconds, not before', () => {
    const p = unitPool({
      spec: { health: { unhealthyAfter: 3, unreachableAfterSeconds: 30 }, disruption: { maxUnavailable: 5, minHealthy: 0 } },
      nodes: [
        { id: 'sick', health: 'unhealthy', badProbes: 3, reasons: ['xid 79'] },
        { id: 'early', health: 'unhealthy', badProbes: 2 },
        { id: 'lost', health: 'unreachable', unreachableSince: Date.parse('2025-12-31T23:59:29Z') },
        { id: 'brief', health: 'unreachable', unreachableSince: Date.parse('2025-12-31T23:59:50Z') },
        { id: 'waits', health: 'unhealthy', badProbes: 9, retryAfter: Date.parse('2026-01-01T00:01:00Z') },
        { id: 'fine' }, { id: 'ok2' }, { id: 'ok3' }, { id: 'ok4' }, { id: 'ok5' }, { id: 'ok6' }, { id: 'ok7' }, { id: 'ok8' }, { id: 'ok9' },
      ],
    });
    remediate(p.ctx);
    assert.deepEqual(p.work.map((w) => [w.nodeId, w.reason]), [['sick', 'unhealthy for 3 probes: xid 79'], ['lost', 'unreachable for 31 s']]);
    remediate(p.ctx);
    assert.equal(p.work.length, 2, 'one request per node');
  });

  it('does nothing while paused, with autoReplace off, or before the first reconcile', () => {
    for (const setup of [
      (p: ReturnType<typeof unitPool>) => void (p.ctx.state.paused = { reason: 'x', at: 0 }),
      (p: ReturnType<typeof unitPool>) => void (p.ctx.cfg = { ...p.ctx.cfg, health: { ...p.ctx.cfg.health, autoReplace: false } }),
      (p: ReturnType<typeof unitPool>) => void (p.ctx.state.initialized = false),
    ]) {
      const p = unitPool({ spec: { disruption: { minHealthy: 0 } }, nodes: [{ id: 'sick', health: 'unhealthy', badProbes: 5 }, 'a', 'b', 'c', 'd'] });
      setup(p);
      remediate(p.ctx);
      assert.deepEqual(p.work, []);
      assert.deepEqual(p.ctx.state.budget.queue, []);
    }
  });

  it('opens the breaker when too many nodes went bad at once, and drops queued automatic requests', () => {
    const p = unitPool({ spec: { disruption: { minHealthy: 0 } }, nodes: ['a', 'b', 'c', 'd'] });
    const s = p.ctx.state;
    s.budget = budget.grant(budget.request(s.budget, { holder: 'rollout/x', kind: 'external', requestedAt: 0 }), 1, 0).budget;
    s.budget = budget.request(s.budget, { holder: 'replace/gpu/a', kind: 'replace', nodeId: 'a', requestedAt: 0, origin: 'auto' });
    for (const id of ['a', 'b']) s.breaker.recent.push({ nodeId: id, at: p.ctx.now() });
    for (const id of ['a', 'b']) Object.assign(s.nodes[id], { health: 'unhealthy', badProbes: 5 });
    remediate(p.ctx);
    assert.equal(s.breaker.open, true);
    assert.deepEqual(s.budget.queue, []);
    assert.match(p.events()[0], /^circuit breaker opened: 2 of 4 nodes \(50 %\)/);
    assert.equal(p.events()[1], '1 queued automatic replacement(s) dropped: breaker open');
    assert.deepEqual(p.work, []);
  });
});

describe('sizing', () => {
  it('provisions up to desired under fresh keys, counting scale-ups in flight', () => {
    const p = unitPool({ nodes: ['n1'] });
    p.ctx.state.autoscaler.desired = 3;
    size(p.ctx);
    assert.deepEqual(p.work.map((w) => w.key), ['pool/gpu/scale-up/1', 'pool/gpu/scale-up/2']);
    assert.equal(p.ctx.run.provisioning, 2);
    size(p.ctx);
    assert.equal(p.work.length, 2, 'in-flight scale-ups count toward the size');
    assert.equal(p.ctx.state.provisionCounter, 2);
  });

  it('queues scale-downs through the budget: cordoned first, then idle, then newest; a cordon lease becomes the scale-down', () => {
    const p = unitPool({ nodes: [{ id: 'old', joinedAt: 1 }, { id: 'idle', joinedAt: 2 }, { id: 'new', joinedAt: 3 }, { id: 'cord', joinedAt: 0, phase: 'cordoned' }, { id: 'mid', joinedAt: 2 }] });
    const s = p.ctx.state;
    s.idle = ['idle'];
    s.budget = budget.grant(budget.request(s.budget, { holder: 'cordon/cord', kind: 'cordon', nodeId: 'cord', requestedAt: 0 }), 1, 0).budget;
    s.autoscaler.desired = 2;
    size(p.ctx);
    assert.deepEqual(s.budget.leases.map((l) => [l.holder, l.kind]), [['scale-down/cord', 'scale-down']]);
    assert.deepEqual(p.work, [{ kind: 'scaleDown', nodeId: 'cord', holder: 'scale-down/cord' }]);
    assert.equal(s.nodes.cord.phase, 'leaving');
    assert.deepEqual(s.budget.queue.map((r) => r.holder), ['scale-down/idle', 'scale-down/new']);
  });

  it('cancels queued scale-downs first when desired goes back up, and does nothing while stopping', () => {
    const p = unitPool({ nodes: ['a', 'b', 'c'] });
    const s = p.ctx.state;
    s.budget = budget.grant(budget.request(s.budget, { holder: 'rollout/x', kind: 'external', requestedAt: 0 }), 1, 0).budget;
    s.autoscaler.desired = 1;
    size(p.ctx);
    assert.equal(s.budget.queue.length, 2);
    s.autoscaler.desired = 3;
    p.ctx.run.stopping = true;
    size(p.ctx);
    assert.equal(s.budget.queue.length, 2, 'stopping: left for the next run');
    p.ctx.run.stopping = false;
    size(p.ctx);
    assert.deepEqual(s.budget.queue, []);
    assert.deepEqual(p.work, [], 'nothing provisioned: cancelling was enough');
  });
});

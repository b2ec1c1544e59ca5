import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as budget from '../../workflows/pool/budget.ts';
import { poolDetails, poolStatus } from '../../workflows/pool/status.ts';
import { START, unitPool } from './unitPool.ts';

/** The status query and the Web UI details: what operators and the CLI read. */
describe('pool status projection', () => {
  function sample() {
    const p = unitPool({
      spec: { minNodes: 2, maxNodes: 6, autoscaling: { type: 'reactive' } },
      nodes: [
        'n1',
        { id: 'n2', health: 'degraded', reasons: ['thermal'] },
        { id: 'n3', health: 'unhealthy', badProbes: 2, retryAfter: START + 5000, failures: 1 },
        { id: 'n4', health: 'unreachable', unreachableSince: START - 42_400 },
      ],
    });
    const s = p.ctx.state;
    s.budget = budget.grant(budget.request(s.budget, { holder: 'replace/gpu/n3', kind: 'replace', nodeId: 'n3', requestedAt: START }), 1, START).budget;
    s.budget = budget.request(s.budget, { holder: 'rollout/gpu/r', kind: 'external', requestedAt: START });
    s.autoscaler = { desired: 4, utilization: 87, lastDecision: 'utilisation 87 % >= 80 %: up to 4' };
    s.claims = { g1: 'rollout/gpu/bg' };
    s.replacements = { started: 3, succeeded: 2, failed: 1 };
    p.ctx.run.provisioning = 1;
    for (let i = 0; i < 40; i++) p.ctx.event(`event ${i}`, i % 2 ? 'n1' : undefined);
    return p;
  }

  it('counts members by health, shows the budget, and hides internal timers', () => {
    const p = sample();
    const st = poolStatus(p.ctx);
    assert.equal(st.name, 'gpu');
    assert.equal(st.phase, 'running');
    assert.equal(st.phaseReason, undefined);
    assert.deepEqual([st.minNodes, st.maxNodes, st.desired], [2, 6, 4]);
    assert.deepEqual(st.counts, { members: 4, healthy: 1, degraded: 1, unhealthy: 1, unreachable: 1, disrupted: 1, provisioning: 1 });
    const n3 = st.nodes.find((n) => n.id === 'n3')!;
    assert.ok(!('retryAfter' in n3) && !('unreachableSince' in n3), 'internal timers are not shown');
    assert.equal(n3.failures, 1);
    assert.equal(st.nodes.find((n) => n.id === 'n4')!.unreachableForSeconds, 42);
    assert.equal(st.nodes.find((n) => n.id === 'n1')!.unreachableForSeconds, undefined);
    assert.deepEqual([st.maxUnavailable, st.minHealthy], [1, 3]);
    assert.deepEqual(st.leases.map((l) => l.holder), ['replace/gpu/n3']);
    assert.deepEqual(st.queue.map((l) => l.holder), ['rollout/gpu/r']);
    assert.deepEqual(st.claims, [{ nodeId: 'g1', holder: 'rollout/gpu/bg' }]);
    assert.equal(st.lastProbe?.at, new Date(START - 1000).toISOString());
    assert.equal(st.events.length, 30, 'the last 30 events');
    assert.equal(st.events.at(-1)?.message, 'event 39');
    assert.deepEqual(st.replacements, { started: 3, succeeded: 2, failed: 1 });
    assert.equal(JSON.stringify(st), JSON.stringify(JSON.parse(JSON.stringify(st))), 'plain JSON');
  });

  it('says why the pool is paused or its breaker open, and starting before the first probe', () => {
    const p = sample();
    p.ctx.state.breaker = { open: true, reason: '3 of 4 nodes went bad', openedAt: START, recent: [] };
    assert.deepEqual([poolStatus(p.ctx).phase, poolStatus(p.ctx).phaseReason], ['breaker-open', '3 of 4 nodes went bad']);
    p.ctx.state.paused = { reason: 'driver push', at: START };
    assert.deepEqual([poolStatus(p.ctx).phase, poolStatus(p.ctx).phaseReason], ['paused', 'driver push'], 'a pause shows over an open breaker');
    const fresh = unitPool();
    assert.equal(poolStatus(fresh.ctx).phase, 'starting');
    assert.equal(poolStatus(fresh.ctx).lastProbe, undefined);
    assert.deepEqual(poolStatus(fresh.ctx).claims, []);
  });

  it('the Web UI details: phase, sizes, budget, autoscaler and the last five events', () => {
    const p = sample();
    const lines = poolDetails(poolStatus(p.ctx), p.ctx.cfg).split('\n');
    assert.deepEqual(lines.slice(0, 4), [
      '**pool gpu** — **running**',
      'nodes 4 (desired 4, min 2, max 6) · healthy 1 · degraded 1 · unhealthy 1 · unreachable 1 · provisioning 1',
      'budget 1/1 disrupted, 1 waiting · replacements 2 done, 1 failed',
      'autoscaler reactive · utilisation 87 % · utilisation 87 % >= 80 %: up to 4',
    ]);
    assert.equal(lines[4], '');
    assert.deepEqual(lines.slice(5), ['- 00:00:00 `n1` event 35', '- 00:00:00 event 36', '- 00:00:00 `n1` event 37', '- 00:00:00 event 38', '- 00:00:00 `n1` event 39']);
    p.ctx.state.paused = { reason: 'driver push', at: START };
    assert.equal(poolDetails(poolStatus(p.ctx), p.ctx.cfg).split('\n')[0], '**pool gpu** — **paused**: driver push');
  });
});

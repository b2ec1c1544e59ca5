import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as budget from '../../workflows/pool/budget.ts';
import { maxUnavailable, poolPhase } from '../../workflows/pool/context.ts';
import * as handle from '../../workflows/pool/handlers.ts';
import { unitPool } from './unitPool.ts';

/** What each pool update does to the pool's state (after its validator accepted it), without a server. */

const holders = (b: budget.BudgetState) => ({ leases: b.leases.map((l) => l.holder), queue: b.queue.map((r) => r.holder) });

describe('pool update handlers: spec and size', () => {
  it('applySpec replaces the config at once, keeps the spec for the next run, and sets desired when given', () => {
    const p = unitPool({ spec: { maxNodes: 8 }, nodes: ['n1', 'n2', 'n3', 'n4'] });
    assert.equal(maxUnavailable(p.ctx), 1);
    p.ctx.run.dirty = false;
    const spec = { name: 'gpu', minNodes: 1, maxNodes: 8, desiredNodes: 6, disruption: { maxUnavailable: '50%' } };
    assert.deepEqual(handle.applySpec(p.ctx, spec), { desired: 6 });
    assert.equal(p.ctx.state.spec, spec);
    assert.deepEqual(p.ctx.cfg.disruption.maxUnavailable, { percent: 50 });
    assert.equal(maxUnavailable(p.ctx), 3, '50 % of desired 6');
    assert.equal(p.ctx.run.dirty, true);
    assert.deepEqual(p.events(), ['spec applied']);
    // Without desiredNodes the current desired is kept, clamped to the new bounds.
    assert.deepEqual(handle.applySpec(p.ctx, { name: 'gpu', minNodes: 1, maxNodes: 5 }), { desired: 5 });
  });

  it('resize edits min, max and desired in the spec and clamps desired', () => {
    const p = unitPool({ nodes: ['n1', 'n2', 'n3'] });
    assert.deepEqual(handle.resize(p.ctx, { desiredNodes: 5 }), { desired: 5, minNodes: 1, maxNodes: 10 });
    assert.equal(p.ctx.state.spec.desiredNodes, 5);
    assert.deepEqual(handle.resize(p.ctx, { maxNodes: 6, desiredNodes: 6 }), { desired: 6, minNodes: 1, maxNodes: 6 });
    assert.deepEqual({ max: p.ctx.state.spec.maxNodes, desired: p.ctx.state.spec.desiredNodes }, { max: 6, desired: 6 });
    assert.equal(p.events().at(-1), 'resized: min 1, max 6, desired 6');
    const q = unitPool({ nodes: ['n1', 'n2', 'n3'] });
    assert.deepEqual(handle.resize(q.ctx, { minNodes: 4 }), { desired: 4, minNodes: 4, maxNodes: 10 }, 'desired 3 raised to the new minimum');
    assert.equal(q.ctx.state.spec.desiredNodes, undefined);
  });
});

describe('pool update handlers: remediation', () => {
  it('pauseRemediation sets the phase and drops queued automatic replacements, not the operator\'s', () => {
    const p = unitPool({ nodes: ['n1', 'n2', 'n3'] });
    const b = p.ctx.state;
    b.budget = budget.grant(budget.request(b.budget, { holder: 'rollout/x', kind: 'external', requestedAt: 0 }), 1, 0).budget;
    b.budget = budget.request(b.budget, { holder: 'replace/gpu/n1', kind: 'replace', nodeId: 'n1', requestedAt: 0, origin: 'auto' });
    b.budget = budget.request(b.budget, { holder: 'replace/gpu/n2', kind: 'replace', nodeId: 'n2', requestedAt: 0, origin: 'operator' });
    assert.deepEqual(handle.pauseRemediation(p.ctx), { phase: 'paused' });
    assert.equal(b.paused?.reason, 'paused by operator');
    assert.deepEqual(holders(b.budget), { leases: ['rollout/x'], queue: ['replace/gpu/n2'] });
    assert.deepEqual(p.events(), ['1 queued automatic replacement(s) dropped: remediation paused', 'remediation paused: paused by operator']);
    handle.pauseRemediation(p.ctx, { reason: 'driver push' });
    assert.equal(b.paused?.reason, 'driver push');
  });

  it('resumeRemediation unpauses, closes an open breaker and lifts every wait after a failed replacement', () => {
    const p = unitPool({ nodes: [{ id: 'n1', retryAfter: Number.MAX_SAFE_INTEGER, failures: 2 }, 'n2'] });
    p.ctx.state.breaker = { open: true, reason: 'too many', openedAt: 1, recent: [{ nodeId: 'n1', at: 1 }] };
    assert.equal(poolPhase(p.ctx), 'breaker-open');
    assert.deepEqual(handle.resumeRemediation(p.ctx), { phase: 'running' });
    assert.deepEqual(p.ctx.state.breaker, { open: false, recent: [] });
    assert.equal(p.ctx.state.nodes.n1.retryAfter, undefined);
    assert.equal(p.events().at(-1), 'remediation resumed by operator (was breaker-open)');
    handle.pauseRemediation(p.ctx);
    assert.deepEqual(handle.resumeRemediation(p.ctx), { phase: 'running' });
    assert.equal(p.ctx.state.paused, undefined);
  });
});

describe('pool update handlers: cordon, uncordon, replace', () => {
  it('cordonNode takes a budget slot and cordons the node, or queues behind a full budget', () => {
    const p = unitPool({ nodes: ['n1', 'n2', 'n3'] });
    assert.deepEqual(handle.cordonNode(p.ctx, { nodeId: 'n1' }), { holder: 'cordon/n1', granted: true, position: 0 });
    assert.equal(p.ctx.state.nodes.n1.phase, 'cordoned');
    assert.deepEqual(p.work, [{ kind: 'cordon', nodeId: 'n1', holder: 'cordon/n1' }]);
    assert.deepEqual(handle.cordonNode(p.ctx, { nodeId: 'n2' }), { holder: 'cordon/n2', granted: false, position: 1 });
    assert.equal(p.ctx.state.nodes.n2.phase, 'active', 'not touched while it waits');
    assert.equal(p.work.length, 1);
    assert.deepEqual(handle.cordonNode(p.ctx, { nodeId: 'n2' }), { holder: 'cordon/n2', granted: false, position: 1 }, 'asking again is idempotent');
  });

  it('uncordonNode gives the lease back and uncordons the agent; a queued cordon is only dropped', () => {
    const p = unitPool({ nodes: ['n1', 'n2'] });
    handle.cordonNode(p.ctx, { nodeId: 'n1' });
    handle.cordonNode(p.ctx, { nodeId: 'n2' });
    p.work.length = 0;
    assert.deepEqual(handle.uncordonNode(p.ctx, { nodeId: 'n2' }), { nodeId: 'n2' });
    assert.deepEqual(p.work, [], 'the queued cordon never touched the agent');
    assert.deepEqual(handle.uncordonNode(p.ctx, { nodeId: 'n1' }), { nodeId: 'n1' });
    assert.equal(p.ctx.state.nodes.n1.phase, 'active');
    assert.deepEqual(p.work, [{ kind: 'uncordon', nodeId: 'n1' }]);
    assert.deepEqual(holders(p.ctx.state.budget), { leases: [], queue: [] });
    assert.equal(p.events().filter((e) => e === 'uncordoned by operator').length, 2);
  });

  it('replaceNode starts a replacement through the budget with the operator\'s reason and force', () => {
    const p = unitPool({ nodes: ['n1', 'n2', 'n3'] });
    assert.deepEqual(handle.replaceNode(p.ctx, { nodeId: 'n1', reason: 'fan noise', force: true }), { holder: 'replace/gpu/n1', granted: true, position: 0 });
    const n1 = p.ctx.state.nodes.n1;
    assert.equal(n1.phase, 'replacing');
    assert.equal(p.ctx.state.replacements.started, 1);
    assert.deepEqual(p.work, [{ kind: 'replace', nodeId: 'n1', holder: 'replace/gpu/n1', reason: 'fan noise' }]);
    assert.deepEqual(budget.leaseOf(p.ctx.state.budget, 'replace/gpu/n1')?.force, true);
    assert.equal(p.events().at(-1), 'replacing (operator): fan noise');
    // The budget (1) is full: the next one waits in line.
    assert.deepEqual(handle.replaceNode(p.ctx, { nodeId: 'n2' }), { holder: 'replace/gpu/n2', granted: false, position: 1 });
    assert.equal(p.ctx.state.budget.queue[0].reason, 'manual (pool update)');
    assert.equal(p.ctx.state.nodes.n2.phase, 'active');
  });

  it('replaceNode on a node the operator cordoned hands the cordon lease over (no second slot)', () => {
    const p = unitPool({ nodes: ['n1', 'n2'] });
    handle.cordonNode(p.ctx, { nodeId: 'n1' });
    const answer = handle.replaceNode(p.ctx, { nodeId: 'n1' });
    assert.deepEqual(answer, { holder: 'replace/gpu/n1', granted: true, position: 0 });
    assert.deepEqual(holders(p.ctx.state.budget), { leases: ['replace/gpu/n1'], queue: [] });
    assert.equal(budget.leaseOf(p.ctx.state.budget, 'replace/gpu/n1')?.kind, 'replace');
    assert.deepEqual(p.work.map((w) => w.kind), ['cordon', 'replace']);
    assert.equal(p.ctx.state.nodes.n1.phase, 'replacing');
  });
});

describe('pool update handlers: other workflows\' leases', () => {
  it('acquireLease grants an external lease with a ttl (default 30 min), renews on re-send, queues when full', () => {
    const p = unitPool({ nodes: ['n1', 'n2'] });
    assert.deepEqual(handle.acquireLease(p.ctx, { holder: 'rollout/gpu/a', nodeId: 'n1' }), { holder: 'rollout/gpu/a', granted: true, position: 0 });
    const lease = budget.leaseOf(p.ctx.state.budget, 'rollout/gpu/a')!;
    assert.deepEqual({ kind: lease.kind, origin: lease.origin, ttl: lease.ttlSeconds, expiresAt: lease.expiresAt }, { kind: 'external', origin: 'workflow', ttl: 1800, expiresAt: p.ctx.now() + 1_800_000 });
    assert.equal(p.ctx.state.nodes.n1.phase, 'active', 'an external lease does not change a node by itself');
    assert.equal(p.events().at(-1), 'lease granted to rollout/gpu/a');
    p.advance(60_000);
    handle.acquireLease(p.ctx, { holder: 'rollout/gpu/a', nodeId: 'n1' });
    assert.equal(budget.leaseOf(p.ctx.state.budget, 'rollout/gpu/a')!.expiresAt, p.ctx.now() + 1_800_000, 'renewed');
    assert.deepEqual(handle.acquireLease(p.ctx, { holder: 'rollout/gpu/b', ttlSeconds: 10 }), { holder: 'rollout/gpu/b', granted: false, position: 1 });
    assert.equal(p.ctx.state.budget.queue[0].ttlSeconds, 10);
    assert.deepEqual(p.work, []);
  });

  it('acquireLease by an outside replaceNode marks its node replacing; it takes the place of a replacement the pool had queued', () => {
    const p = unitPool({ nodes: ['n1', 'n2', 'n3'] });
    handle.acquireLease(p.ctx, { holder: 'rollout/gpu/busy' }); // fills the budget of 1
    handle.replaceNode(p.ctx, { nodeId: 'n2' }); // the pool's own request, queued
    assert.deepEqual(handle.acquireLease(p.ctx, { holder: 'replace/gpu/n2', nodeId: 'n2', ttlSeconds: 600 }), { holder: 'replace/gpu/n2', granted: false, position: 1 });
    const q = p.ctx.state.budget.queue[0];
    assert.deepEqual({ kind: q.kind, origin: q.origin, ttl: q.ttlSeconds }, { kind: 'external', origin: 'workflow', ttl: 600 });
    handle.releaseLease(p.ctx, { holder: 'rollout/gpu/busy' });
    handle.acquireLease(p.ctx, { holder: 'replace/gpu/n2', nodeId: 'n2' });
    assert.equal(budget.leaseOf(p.ctx.state.budget, 'replace/gpu/n2')?.kind, 'external');
    assert.equal(p.ctx.state.nodes.n2.phase, 'replacing');
    assert.equal(p.events().at(-1), 'a replaceNode started outside the pool took a lease (replace/gpu/n2)');
    assert.deepEqual(p.work, [], 'the pool starts no replacement of its own');
  });

  it('releaseLease frees the slot; an outside replacement that gives its lease back leaves its node active, waiting two probes', () => {
    const p = unitPool({ spec: { health: { probeIntervalSeconds: 5 } }, nodes: ['n1', 'n2'] });
    handle.acquireLease(p.ctx, { holder: 'replace/gpu/n1', nodeId: 'n1' });
    assert.equal(p.ctx.state.nodes.n1.phase, 'replacing');
    assert.deepEqual(handle.releaseLease(p.ctx, { holder: 'replace/gpu/n1' }), { released: true });
    const n1 = p.ctx.state.nodes.n1;
    assert.deepEqual({ phase: n1.phase, badProbes: n1.badProbes, retryAfter: n1.retryAfter }, { phase: 'active', badProbes: 0, retryAfter: p.ctx.now() + 10_000 });
    assert.deepEqual(holders(p.ctx.state.budget), { leases: [], queue: [] });
    assert.equal(p.events().at(-1), 'lease released by replace/gpu/n1');
    const events = p.events().length;
    assert.deepEqual(handle.releaseLease(p.ctx, { holder: 'replace/gpu/n1' }), { released: false });
    assert.equal(p.events().length, events, 'releasing nothing says nothing');
    handle.acquireLease(p.ctx, { holder: 'a' });
    handle.acquireLease(p.ctx, { holder: 'b' });
    assert.deepEqual(handle.releaseLease(p.ctx, { holder: 'b' }), { released: true }, 'a queued request can be withdrawn');
  });
});

describe('pool update handlers: claims (blue-green)', () => {
  it('claimNodes holds instances for a workflow; a repeated claim is quiet', () => {
    const p = unitPool({ nodes: ['n1'] });
    assert.equal(p.ctx.state.claims, undefined);
    assert.deepEqual(handle.claimNodes(p.ctx, { holder: 'bg', nodeIds: ['g1', 'g2'] }), { claimed: ['g1', 'g2'] });
    assert.deepEqual(p.ctx.state.claims, { g1: 'bg', g2: 'bg' });
    handle.claimNodes(p.ctx, { holder: 'bg', nodeIds: ['g2', 'g3'] });
    assert.deepEqual(p.events(), ['2 instance(s) claimed by bg: g1, g2', '1 instance(s) claimed by bg: g3']);
    assert.deepEqual(Object.keys(p.ctx.state.nodes), ['n1'], 'claimed instances are not members');
  });

  it('swapMembers admits claimed instances and removes members in one step; a retried swap changes nothing', () => {
    const p = unitPool({ nodes: ['b1', 'b2', 'keep'] });
    handle.claimNodes(p.ctx, { holder: 'bg', nodeIds: ['g1', 'g2'] });
    p.ctx.state.view.g1 = 'degraded';
    assert.deepEqual(handle.swapMembers(p.ctx, { holder: 'bg', admit: ['g1', 'g2'], remove: ['b1', 'b2'] }), { members: 3 });
    assert.deepEqual(Object.keys(p.ctx.state.nodes).sort(), ['g1', 'g2', 'keep']);
    assert.deepEqual({ g1: p.ctx.state.nodes.g1.health, g2: p.ctx.state.nodes.g2.health }, { g1: 'degraded', g2: 'healthy' }, "the last probe's view, else healthy");
    assert.equal(p.ctx.state.nodes.g1.joinedAt, p.ctx.now());
    assert.deepEqual(p.ctx.state.claims, { b1: 'bg', b2: 'bg' }, 'removed members stay claimed until released');
    const before = JSON.stringify(p.ctx.state.nodes);
    assert.deepEqual(handle.swapMembers(p.ctx, { holder: 'bg', admit: ['g1', 'g2'], remove: ['b1', 'b2'] }), { members: 3 });
    assert.equal(JSON.stringify(p.ctx.state.nodes), before);
    assert.deepEqual(p.ctx.state.claims, { b1: 'bg', b2: 'bg' });
  });

  it("releaseClaims drops the holder's claims (all, or the ones named), never another holder's", () => {
    const p = unitPool({ nodes: ['n1'] });
    p.ctx.state.claims = { a: 'bg', b: 'bg', c: 'other' };
    assert.deepEqual(handle.releaseClaims(p.ctx, { holder: 'bg', nodeIds: ['a', 'c'] }), { released: ['a'] });
    assert.deepEqual(p.ctx.state.claims, { b: 'bg', c: 'other' });
    assert.deepEqual(handle.releaseClaims(p.ctx, { holder: 'bg' }), { released: ['b'] });
    assert.deepEqual(handle.releaseClaims(p.ctx, { holder: 'bg' }), { released: [] });
    assert.deepEqual(p.ctx.state.claims, { c: 'other' });
    assert.deepEqual(p.events(), ['1 claim(s) released by bg', '1 claim(s) released by bg']);
  });
});

describe('every pool update marks the state dirty', () => {
  it('so the main loop acts on it before the next probe', () => {
    const calls: [string, (p: ReturnType<typeof unitPool>) => unknown][] = [
      ['applySpec', (p) => handle.applySpec(p.ctx, { name: 'gpu', minNodes: 1, maxNodes: 10 })],
      ['resize', (p) => handle.resize(p.ctx, {})],
      ['pauseRemediation', (p) => handle.pauseRemediation(p.ctx)],
      ['resumeRemediation', (p) => handle.resumeRemediation(p.ctx)],
      ['cordonNode', (p) => handle.cordonNode(p.ctx, { nodeId: 'n1' })],
      ['uncordonNode', (p) => handle.uncordonNode(p.ctx, { nodeId: 'n1' })],
      ['replaceNode', (p) => handle.replaceNode(p.ctx, { nodeId: 'n1' })],
      ['acquireLease', (p) => handle.acquireLease(p.ctx, { holder: 'x' })],
      ['releaseLease', (p) => handle.releaseLease(p.ctx, { holder: 'x' })],
      ['claimNodes', (p) => handle.claimNodes(p.ctx, { holder: 'x', nodeIds: [] })],
      ['swapMembers', (p) => handle.swapMembers(p.ctx, { holder: 'x', admit: [], remove: [] })],
      ['releaseClaims', (p) => handle.releaseClaims(p.ctx, { holder: 'x' })],
    ];
    for (const [name, call] of calls) {
      const p = unitPool({ nodes: ['n1'] });
      p.ctx.run.dirty = false;
      call(p);
      assert.equal(p.ctx.run.dirty, true, name);
    }
  });
});

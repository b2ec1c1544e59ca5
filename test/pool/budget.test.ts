import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as budget from '../../workflows/pool/budget.ts';
import { dropAutomaticRequests, expireLeases, grantPass, requestReplace } from '../../workflows/pool/disruption.ts';
import { unitPool } from './unitPool.ts';

const req = (holder: string, extra: Partial<budget.LeaseRequest> = {}): budget.LeaseRequest => ({ holder, kind: 'replace', requestedAt: 0, ...extra });
const holders = (b: budget.BudgetState) => ({ leases: b.leases.map((l) => l.holder), queue: b.queue.map((r) => r.holder) });

describe('disruption budget (pure)', () => {
  it('grants at most the limit, strictly in FIFO order, and a release lets the next in', () => {
    let b = budget.emptyBudget();
    for (const h of ['a', 'b', 'c', 'd']) b = budget.request(b, req(h));
    b = budget.request(b, req('a')); // idempotent while queued
    assert.deepEqual([budget.queuePosition(b, 'a'), budget.queuePosition(b, 'd'), budget.queuePosition(b, 'zz')], [1, 4, 0]);
    let g = budget.grant(b, 2, 1);
    assert.deepEqual(g.granted.map((l) => l.holder), ['a', 'b']);
    assert.deepEqual(g.granted.map((l) => l.grantedAt), [1, 1]);
    assert.equal(budget.queuePosition(g.budget, 'c'), 1);
    assert.equal(budget.queuePosition(g.budget, 'a'), 0, 'a lease is no longer queued');
    assert.equal(budget.request(g.budget, req('a')), g.budget, 'idempotent while leased');
    g = budget.grant(g.budget, 2, 2);
    assert.equal(g.granted.length, 0, 'a full budget grants nothing');
    b = budget.release(g.budget, 'b');
    g = budget.grant(b, 2, 3);
    assert.deepEqual(g.granted.map((l) => l.holder), ['c']);
    assert.deepEqual(holders(g.budget), { leases: ['a', 'c'], queue: ['d'] });
    assert.equal(budget.grant(b, 0, 4).granted.length, 0, 'a limit of 0 grants nothing');
  });

  it('nodes out of service without a lease (quarantined) count toward the limit; a request for one of them adds nothing', () => {
    let b = budget.emptyBudget();
    for (const h of ['a', 'b']) b = budget.request(b, req(h));
    const sick = new Set(['n9']);
    let g = budget.grant(b, 2, 1, sick);
    assert.deepEqual(g.granted.map((l) => l.holder), ['a'], 'one sick node and one disruption fill a limit of 2');
    g = budget.grant(budget.request(g.budget, req('replace/n9', { nodeId: 'n9' })), 2, 2, sick);
    assert.deepEqual(g.granted.map((l) => l.holder), ['replace/n9'], 'the sick node\'s own replacement adds nothing: granted past b, which waits');
    assert.deepEqual(holders(g.budget), { leases: ['a', 'replace/n9'], queue: ['b'] });
    g = budget.grant(budget.request(g.budget, req('c')), 2, 3, sick);
    assert.deepEqual(g.granted, [], 'a and the replacement hold the whole limit');
    g = budget.grant(budget.release(g.budget, 'a'), 2, 4, sick);
    assert.deepEqual(g.granted.map((l) => l.holder), ['b'], 'n9 is leased now and counts once: b, at the head, fits');
    assert.deepEqual(holders(g.budget), { leases: ['replace/n9', 'b'], queue: ['c'] });
    // A limit of 1: a rollout's next node waits behind the sick node, whose replacement goes first (no deadlock).
    let one = budget.request(budget.request(budget.emptyBudget(), req('rollout/next', { kind: 'external', nodeId: 'n2' })), req('replace/q', { nodeId: 'q' }));
    const q = new Set(['q']);
    let o = budget.grant(one, 1, 5, q);
    assert.deepEqual(o.granted.map((l) => l.holder), ['replace/q']);
    assert.deepEqual(holders(o.budget), { leases: ['replace/q'], queue: ['rollout/next'] });
    one = budget.release(o.budget, 'replace/q');
    o = budget.grant(one, 1, 6, new Set());
    assert.deepEqual(o.granted.map((l) => l.holder), ['rollout/next'], 'once the sick node is gone, the rollout goes on');
    const many = budget.grant(budget.request(budget.request(budget.emptyBudget(), req('r1', { nodeId: 'q1' })), req('r2', { nodeId: 'q2' })), 1, 5, new Set(['q1', 'q2', 'q3']));
    assert.deepEqual(many.granted.map((l) => l.holder), ['r1'], 'sick nodes\' own requests still hold at most the limit of leases');
  });

  it('releases leases and queued requests alike; releasing something unknown changes nothing', () => {
    let b = budget.grant(budget.request(budget.request(budget.emptyBudget(), req('a')), req('b')), 1, 0).budget;
    b = budget.release(b, 'b');
    assert.deepEqual(holders(b), { leases: ['a'], queue: [] });
    assert.deepEqual(budget.release(b, 'nobody'), b);
  });

  it('finds a lease by holder and by node', () => {
    const b = budget.grant(budget.request(budget.emptyBudget(), req('replace/p/n1', { nodeId: 'n1' })), 1, 0).budget;
    assert.equal(budget.leaseOf(b, 'replace/p/n1')?.nodeId, 'n1');
    assert.equal(budget.leaseForNode(b, 'n1')?.holder, 'replace/p/n1');
    assert.equal(budget.leaseForNode(b, 'n2'), undefined);
  });

  it('external leases expire ttlSeconds after the grant unless renewed; leases without a ttl never expire', () => {
    let b = budget.request(budget.emptyBudget(), { holder: 'rollout/x', kind: 'external', requestedAt: 0, ttlSeconds: 10 });
    b = budget.request(b, req('replace/p/n1'));
    b = budget.grant(b, 2, 0).budget;
    assert.equal(budget.leaseOf(b, 'rollout/x')?.expiresAt, 10_000);
    assert.equal(budget.leaseOf(b, 'replace/p/n1')?.expiresAt, undefined);
    b = budget.renew(b, 'rollout/x', 5_000);
    b = budget.renew(b, 'replace/p/n1', 5_000);
    assert.equal(budget.leaseOf(b, 'replace/p/n1')?.expiresAt, undefined, 'renew leaves a lease without ttl alone');
    assert.equal(budget.expire(b, 14_999).expired.length, 0);
    assert.equal(budget.expire(b, 14_999).budget, b, 'nothing expired: the same state');
    const e = budget.expire(b, 15_000);
    assert.deepEqual(e.expired.map((l) => l.holder), ['rollout/x'], 'expires at the deadline');
    assert.deepEqual(holders(e.budget), { leases: ['replace/p/n1'], queue: [] });
    assert.equal(budget.expire(b, 999_999_999).expired.length, 1, 'only the one with a ttl');
  });

  it('transfers a lease to a new holder and kind without a new slot', () => {
    let c = budget.grant(budget.request(budget.emptyBudget(), { holder: 'cordon/n1', kind: 'cordon', nodeId: 'n1', requestedAt: 0 }), 1, 7).budget;
    c = budget.request(c, req('other'));
    c = budget.transfer(c, 'cordon/n1', { holder: 'replace/p/n1', kind: 'replace' });
    assert.deepEqual(c.leases.map((l) => [l.holder, l.kind, l.nodeId, l.grantedAt]), [['replace/p/n1', 'replace', 'n1', 7]]);
    assert.deepEqual(holders(c).queue, ['other'], 'the queue did not move');
    assert.equal(budget.leaseOf(c, 'cordon/n1'), undefined);
  });
});

describe("the pool's use of the budget (disruption.ts)", () => {
  it('grantPass starts the granted work, tracks the most leases held, and grants nothing while stopping', () => {
    const p = unitPool({ spec: { disruption: { maxUnavailable: 2 } }, nodes: ['n1', 'n2', 'n3'] });
    const s = p.ctx.state;
    for (const id of ['n1', 'n2', 'n3']) s.budget = budget.request(s.budget, req(`replace/gpu/${id}`, { nodeId: id, reason: `r-${id}` }));
    p.ctx.run.stopping = true;
    grantPass(p.ctx);
    assert.deepEqual(holders(s.budget).leases, [], 'continue-as-new is pending');
    p.ctx.run.stopping = false;
    grantPass(p.ctx);
    assert.deepEqual(holders(s.budget), { leases: ['replace/gpu/n1', 'replace/gpu/n2'], queue: ['replace/gpu/n3'] });
    assert.deepEqual(p.work.map((w) => [w.kind, w.nodeId, w.reason]), [['replace', 'n1', 'r-n1'], ['replace', 'n2', 'r-n2']]);
    assert.equal(s.maxDisrupted, 2);
    s.budget = budget.release(s.budget, 'replace/gpu/n1');
    grantPass(p.ctx);
    assert.equal(s.maxDisrupted, 2, 'never above maxUnavailable');
  });

  it('grantPass counts quarantined members toward maxUnavailable once the pool runs with quarantine-counts', () => {
    const p = unitPool({ spec: { disruption: { maxUnavailable: 2 } }, nodes: ['n1', 'n2', 'n3', { id: 'n4', health: 'unhealthy', quarantinedAt: 0 }] });
    const s = p.ctx.state;
    s.budget = budget.request(budget.request(s.budget, req('rollout/a', { kind: 'external' })), req('rollout/b', { kind: 'external' }));
    p.ctx.run.quarantineCounts = true;
    grantPass(p.ctx);
    assert.deepEqual(holders(s.budget), { leases: ['rollout/a'], queue: ['rollout/b'] }, 'the quarantined n4 and one rollout lease make 2');
    s.budget = budget.release(s.budget, 'rollout/a');
    s.budget = budget.request(s.budget, req('replace/gpu/n4', { nodeId: 'n4' }));
    grantPass(p.ctx);
    assert.deepEqual(holders(s.budget), { leases: ['rollout/b', 'replace/gpu/n4'], queue: [] }, 'n4 is out already: its replacement adds nothing');
    const old = unitPool({ spec: { disruption: { maxUnavailable: 2 } }, nodes: ['n1', 'n2', { id: 'n3', health: 'unhealthy', quarantinedAt: 0 }] });
    old.ctx.state.budget = budget.request(budget.request(old.ctx.state.budget, req('rollout/a', { kind: 'external' })), req('rollout/b', { kind: 'external' }));
    grantPass(old.ctx);
    assert.equal(old.ctx.state.budget.leases.length, 2, 'a pool replaying a history from before the patch grants as it did');
  });

  it('grantPass voids requests for nodes that left the pool', () => {
    const p = unitPool({ nodes: ['n1', 'n2'] });
    const s = p.ctx.state;
    s.budget = budget.request(s.budget, req('scale-down/gone', { kind: 'scale-down', nodeId: 'gone' }));
    s.budget = budget.request(s.budget, req('replace/gpu/n2', { nodeId: 'n2' }));
    grantPass(p.ctx);
    assert.deepEqual(holders(s.budget), { leases: ['replace/gpu/n2'], queue: [] });
    assert.equal(s.nodes.n2.phase, 'replacing');
  });

  it('requestReplace queues behind a full budget, and an operator cordon becomes the replacement', () => {
    const p = unitPool({ nodes: ['n1', 'n2', 'n3'] });
    const s = p.ctx.state;
    s.budget = budget.grant(budget.request(s.budget, { holder: 'cordon/n2', kind: 'cordon', nodeId: 'n2', requestedAt: 0 }), 1, 0).budget;
    assert.deepEqual(requestReplace(p.ctx, s.nodes.n1, 'auto', 'sick'), { holder: 'replace/gpu/n1', granted: false, position: 1 });
    assert.deepEqual(requestReplace(p.ctx, s.nodes.n2, 'operator', 'swap it', true), { holder: 'replace/gpu/n2', granted: true, position: 0 });
    const l = budget.leaseOf(s.budget, 'replace/gpu/n2')!;
    assert.deepEqual([l.kind, l.origin, l.reason, l.force], ['replace', 'operator', 'swap it', true]);
    assert.deepEqual(holders(s.budget), { leases: ['replace/gpu/n2'], queue: ['replace/gpu/n1'] });
    assert.deepEqual(p.work.map((w) => [w.kind, w.nodeId]), [['replace', 'n2']]);
  });

  it('a queued cordon is withdrawn when a replacement is requested for its node', () => {
    const p = unitPool({ nodes: ['n1', 'n2'] });
    const s = p.ctx.state;
    s.budget = budget.grant(budget.request(s.budget, { holder: 'rollout/x', kind: 'external', requestedAt: 0 }), 1, 0).budget;
    s.budget = budget.request(s.budget, { holder: 'cordon/n1', kind: 'cordon', nodeId: 'n1', requestedAt: 0 });
    requestReplace(p.ctx, s.nodes.n1, 'auto', 'sick');
    assert.deepEqual(holders(s.budget).queue, ['replace/gpu/n1']);
  });

  it('expireLeases drops unrenewed external leases, says so, and hands an outside replacement\'s node back', () => {
    const p = unitPool({ spec: { disruption: { maxUnavailable: 3 } }, nodes: ['n1', 'n2'] });
    const s = p.ctx.state;
    s.budget = budget.request(s.budget, { holder: 'rollout/x', kind: 'external', requestedAt: 0, ttlSeconds: 30 });
    s.budget = budget.request(s.budget, { holder: 'replace/gpu/n1', kind: 'external', nodeId: 'n1', requestedAt: 0, ttlSeconds: 60 });
    grantPass(p.ctx);
    assert.equal(s.nodes.n1.phase, 'replacing');
    p.advance(30_000);
    expireLeases(p.ctx);
    assert.deepEqual(holders(s.budget).leases, ['replace/gpu/n1']);
    assert.equal(p.events().at(-1), 'lease of rollout/x expired after 30 s without renewal');
    p.advance(30_000);
    expireLeases(p.ctx);
    assert.deepEqual(holders(s.budget).leases, []);
    assert.equal(s.nodes.n1.phase, 'active');
    assert.equal(s.nodes.n1.retryAfter, p.ctx.now() + 2 * 10_000, 'two probe intervals before the pool may try itself');
  });

  it('dropAutomaticRequests removes only queued automatic requests', () => {
    const p = unitPool({ nodes: ['n1', 'n2', 'n3'] });
    const s = p.ctx.state;
    s.budget = budget.grant(budget.request(s.budget, req('replace/gpu/n1', { nodeId: 'n1', origin: 'auto' })), 1, 0).budget;
    s.budget = budget.request(s.budget, req('replace/gpu/n2', { nodeId: 'n2', origin: 'auto' }));
    s.budget = budget.request(s.budget, req('scale-down/n3', { kind: 'scale-down', nodeId: 'n3', origin: 'auto' }));
    s.budget = budget.request(s.budget, req('cordon/n3', { kind: 'cordon', nodeId: 'n3', origin: 'operator' }));
    dropAutomaticRequests(p.ctx, 'breaker open');
    assert.deepEqual(holders(s.budget), { leases: ['replace/gpu/n1'], queue: ['cordon/n3'] });
    assert.deepEqual(p.events(), ['2 queued automatic replacement(s) dropped: breaker open']);
    dropAutomaticRequests(p.ctx, 'again');
    assert.equal(p.events().length, 1, 'nothing dropped: no event');
  });
});

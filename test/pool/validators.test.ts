import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as budget from '../../workflows/pool/budget.ts';
import type { PoolContext } from '../../workflows/pool/context.ts';
import * as validate from '../../workflows/pool/validators.ts';
import { assertInvalid, unitPool } from './unitPool.ts';

/** Every update validator of the pool, without a server: accepted input passes, bad input names its field. */

function hold(ctx: PoolContext, req: Omit<budget.LeaseRequest, 'requestedAt'>): void {
  ctx.state.budget = budget.grant(budget.request(ctx.state.budget, { ...req, requestedAt: ctx.now() }), 100, ctx.now()).budget;
}
function queue(ctx: PoolContext, req: Omit<budget.LeaseRequest, 'requestedAt'>): void {
  ctx.state.budget = budget.request(ctx.state.budget, { ...req, requestedAt: ctx.now() });
}
const spec = { name: 'gpu', minNodes: 1, maxNodes: 10 };

describe('pool update validators', () => {
  it('every update input must be a JSON object', () => {
    const { ctx } = unitPool({ nodes: ['n1'] });
    for (const bad of [null, 'n1', 3, ['n1']]) {
      assertInvalid(() => validate.resize(ctx, bad), 'input', /expected a JSON object/);
      assertInvalid(() => validate.cordonNode(ctx, bad), 'input');
      assertInvalid(() => validate.uncordonNode(ctx, bad), 'input');
      assertInvalid(() => validate.replaceNode(ctx, bad), 'input');
      assertInvalid(() => validate.acquireLease(ctx, bad), 'input');
      assertInvalid(() => validate.releaseLease(ctx, bad), 'input');
      assertInvalid(() => validate.claimNodes(ctx, bad), 'input');
      assertInvalid(() => validate.swapMembers(ctx, bad), 'input');
      assertInvalid(() => validate.releaseClaims(bad), 'input');
    }
    assertInvalid(() => validate.pauseRemediation('x'), 'input');
  });

  it('applySpec: a valid spec for this pool; another pool or a bad spec is rejected', () => {
    const { ctx } = unitPool({ nodes: ['n1'] });
    validate.applySpec(ctx, { ...spec, maxNodes: 4, disruption: { maxUnavailable: '50%' } });
    assertInvalid(() => validate.applySpec(ctx, { ...spec, name: 'other' }), 'name', /belongs to workflow pool\/other/);
    assertInvalid(() => validate.applySpec(ctx, { ...spec, maxNodes: 0 }), 'maxNodes');
    assertInvalid(() => validate.applySpec(ctx, { ...spec, health: { unhealthyAfter: 0 } }), 'health.unhealthyAfter');
  });

  it('resize: min, max and desired within the spec; unknown fields and impossible sizes are rejected', () => {
    const { ctx } = unitPool({ nodes: ['n1'] });
    validate.resize(ctx, {});
    validate.resize(ctx, { minNodes: 2, maxNodes: 6, desiredNodes: 4 });
    assertInvalid(() => validate.resize(ctx, { desired: 3 }), 'desired', /unknown field/);
    assertInvalid(() => validate.resize(ctx, { minNodes: 5, maxNodes: 3 }), 'maxNodes');
    assertInvalid(() => validate.resize(ctx, { desiredNodes: 11 }), 'desiredNodes');
    assertInvalid(() => validate.resize(ctx, { minNodes: 1.5 }), 'minNodes');
  });

  it('pauseRemediation: no input, or a reason of at most 500 characters', () => {
    validate.pauseRemediation(undefined);
    validate.pauseRemediation({});
    validate.pauseRemediation({ reason: 'driver push' });
    validate.pauseRemediation({ reason: 'x'.repeat(500) });
    assertInvalid(() => validate.pauseRemediation({ reason: 'x'.repeat(501) }), 'reason');
    assertInvalid(() => validate.pauseRemediation({ reason: 7 }), 'reason');
  });

  it('cordonNode: only an active member', () => {
    const { ctx } = unitPool({ nodes: ['n1', { id: 'n2', phase: 'cordoned' }, { id: 'n3', phase: 'replacing' }] });
    validate.cordonNode(ctx, { nodeId: 'n1' });
    assertInvalid(() => validate.cordonNode(ctx, {}), 'nodeId', /expected a node id/);
    assertInvalid(() => validate.cordonNode(ctx, { nodeId: 'bad id!' }), 'nodeId', /expected a node id/);
    assertInvalid(() => validate.cordonNode(ctx, { nodeId: 'n9' }), 'nodeId', /'n9' is not a member of pool 'gpu' \(members: n1, n2, n3\)/);
    assertInvalid(() => validate.cordonNode(ctx, { nodeId: 'n2' }), 'nodeId', /is cordoned; only an active node/);
    assertInvalid(() => validate.cordonNode(ctx, { nodeId: 'n3' }), 'nodeId', /is replacing/);
  });

  it('uncordonNode: only a node cordoned (or queued to be) through the pool', () => {
    const { ctx } = unitPool({ nodes: [{ id: 'n1', phase: 'cordoned' }, 'n2', 'n3'] });
    hold(ctx, { holder: 'cordon/n1', kind: 'cordon', nodeId: 'n1' });
    queue(ctx, { holder: 'cordon/n2', kind: 'cordon', nodeId: 'n2' });
    validate.uncordonNode(ctx, { nodeId: 'n1' });
    validate.uncordonNode(ctx, { nodeId: 'n2' });
    assertInvalid(() => validate.uncordonNode(ctx, { nodeId: 'n3' }), 'nodeId', /was not cordoned through this pool \(phase active\)/);
    assertInvalid(() => validate.uncordonNode(ctx, { nodeId: 'zz' }), 'nodeId', /not a member/);
  });

  it('replaceNode: a member not already replacing, leaving or queued; reason and force typed', () => {
    const { ctx } = unitPool({ nodes: ['n1', { id: 'n2', phase: 'replacing' }, { id: 'n3', phase: 'leaving' }, 'n4', { id: 'n5', phase: 'cordoned' }] });
    queue(ctx, { holder: 'replace/gpu/n4', kind: 'replace', nodeId: 'n4' });
    validate.replaceNode(ctx, { nodeId: 'n1' });
    validate.replaceNode(ctx, { nodeId: 'n5', reason: 'fan noise', force: true });
    assertInvalid(() => validate.replaceNode(ctx, { nodeId: 'n2' }), 'nodeId', /already replacing/);
    assertInvalid(() => validate.replaceNode(ctx, { nodeId: 'n3' }), 'nodeId', /already leaving/);
    assertInvalid(() => validate.replaceNode(ctx, { nodeId: 'n4' }), 'nodeId', /already queued for replacement/);
    assertInvalid(() => validate.replaceNode(ctx, { nodeId: 'n1', reason: 'x'.repeat(501) }), 'reason');
    assertInvalid(() => validate.replaceNode(ctx, { nodeId: 'n1', force: 'yes' }), 'force');
    assertInvalid(() => validate.replaceNode(ctx, { nodeId: 'n0' }), 'nodeId', /not a member/);
  });

  it("acquireLease: another workflow's holder id, an optional member, a ttl of 1..86400 s", () => {
    const { ctx } = unitPool({ nodes: ['n1', 'n2'] });
    validate.acquireLease(ctx, { holder: 'rollout/gpu/r1' });
    validate.acquireLease(ctx, { holder: 'rollout/gpu/r1', nodeId: 'n1', ttlSeconds: 1 });
    validate.acquireLease(ctx, { holder: 'ci:job-7', ttlSeconds: 86_400 });
    assertInvalid(() => validate.acquireLease(ctx, {}), 'holder');
    assertInvalid(() => validate.acquireLease(ctx, { holder: '-starts-with-dash' }), 'holder');
    assertInvalid(() => validate.acquireLease(ctx, { holder: `r/${'x'.repeat(200)}` }), 'holder');
    for (const holder of ['cordon/n1', 'scale-down/n1', 'replace/other/n1']) {
      assertInvalid(() => validate.acquireLease(ctx, { holder }), 'holder', /reserved for the pool's own leases/);
    }
    assertInvalid(() => validate.acquireLease(ctx, { holder: 'rollout/gpu/r1', nodeId: 'n7' }), 'nodeId', /not a member/);
    for (const ttlSeconds of [0, 1.5, 86_401, '60']) {
      assertInvalid(() => validate.acquireLease(ctx, { holder: 'rollout/gpu/r1', ttlSeconds }), 'ttlSeconds', /between 1 and 86400/);
    }
  });

  it('acquireLease by a replaceNode started outside the pool: its own node, not one the pool is already replacing', () => {
    const { ctx } = unitPool({ nodes: ['n1', { id: 'n2', phase: 'cordoned' }, { id: 'n3', phase: 'leaving' }, 'n4'] });
    validate.acquireLease(ctx, { holder: 'replace/gpu/n1', nodeId: 'n1' });
    validate.acquireLease(ctx, { holder: 'replace/gpu/n2', nodeId: 'n2' });
    assertInvalid(() => validate.acquireLease(ctx, { holder: 'replace/gpu/n1', nodeId: 'n2' }), 'holder', /must be 'replace\/gpu\/n2' for node n2/);
    assertInvalid(() => validate.acquireLease(ctx, { holder: 'replace/gpu/n1' }), 'nodeId', /expected a node id/);
    assertInvalid(() => validate.acquireLease(ctx, { holder: 'replace/gpu/n3', nodeId: 'n3' }), 'nodeId', /'n3' is leaving/);
    hold(ctx, { holder: 'replace/gpu/n4', kind: 'replace', nodeId: 'n4' });
    assertInvalid(() => validate.acquireLease(ctx, { holder: 'replace/gpu/n4', nodeId: 'n4' }), 'holder', /the pool itself is already replacing n4/);
    // Re-sending to renew its own granted lease is fine even though the node is now `replacing`.
    hold(ctx, { holder: 'replace/gpu/n1', kind: 'external', nodeId: 'n1', ttlSeconds: 60 });
    ctx.state.nodes.n1.phase = 'replacing';
    validate.acquireLease(ctx, { holder: 'replace/gpu/n1', nodeId: 'n1' });
  });

  it("releaseLease: an outside holder's lease (or an unknown one); never the pool's own", () => {
    const { ctx } = unitPool({ nodes: ['n1'] });
    hold(ctx, { holder: 'rollout/gpu/r1', kind: 'external', ttlSeconds: 60 });
    hold(ctx, { holder: 'cordon/n1', kind: 'cordon', nodeId: 'n1' });
    queue(ctx, { holder: 'scale-down/n1', kind: 'scale-down', nodeId: 'n1' });
    validate.releaseLease(ctx, { holder: 'rollout/gpu/r1' });
    validate.releaseLease(ctx, { holder: 'never-held' });
    assertInvalid(() => validate.releaseLease(ctx, { holder: 5 }), 'holder', /the holder id used in acquireLease/);
    assertInvalid(() => validate.releaseLease(ctx, { holder: 'cordon/n1' }), 'holder', /held by the pool itself and released when its work ends/);
    assertInvalid(() => validate.releaseLease(ctx, { holder: 'scale-down/n1' }), 'holder', /held by the pool itself/);
  });

  it('claimNodes: instances outside the pool that no other workflow holds', () => {
    const { ctx } = unitPool({ nodes: ['n1'] });
    ctx.state.claims = { g2: 'rollout/gpu/other' };
    validate.claimNodes(ctx, { holder: 'rollout/gpu/bg', nodeIds: ['g1'] });
    validate.claimNodes(ctx, { holder: 'rollout/gpu/other', nodeIds: ['g2'] });
    validate.claimNodes(ctx, { holder: 'rollout/gpu/bg', nodeIds: [] });
    assertInvalid(() => validate.claimNodes(ctx, { holder: 'cordon/x', nodeIds: ['g1'] }), 'holder', /reserved for the pool's own work/);
    assertInvalid(() => validate.claimNodes(ctx, { nodeIds: ['g1'] }), 'holder', /caller's workflow id/);
    assertInvalid(() => validate.claimNodes(ctx, { holder: 'rollout/gpu/bg' }), 'nodeIds', /list of node ids/);
    assertInvalid(() => validate.claimNodes(ctx, { holder: 'rollout/gpu/bg', nodeIds: ['ok', 'not ok'] }), 'nodeIds');
    assertInvalid(() => validate.claimNodes(ctx, { holder: 'rollout/gpu/bg', nodeIds: Array.from({ length: 1001 }, (_, i) => `g${i}`) }), 'nodeIds', /at most 1000/);
    assertInvalid(() => validate.claimNodes(ctx, { holder: 'rollout/gpu/bg', nodeIds: ['n1'] }), 'nodeIds', /member of pool 'gpu'; take members out with swapMembers/);
    assertInvalid(() => validate.claimNodes(ctx, { holder: 'rollout/gpu/bg', nodeIds: ['g2'] }), 'nodeIds', /claimed by rollout\/gpu\/other/);
  });

  it('swapMembers: admit what the holder claimed, remove active or cordoned members without a lease', () => {
    const { ctx } = unitPool({ nodes: ['n1', { id: 'n2', phase: 'cordoned' }, { id: 'n3', phase: 'replacing' }, 'n4'] });
    const h = 'rollout/gpu/bg';
    ctx.state.claims = { g1: h, g2: 'rollout/gpu/other', old: h };
    hold(ctx, { holder: 'rollout/gpu/r1', kind: 'external', nodeId: 'n4', ttlSeconds: 60 });
    validate.swapMembers(ctx, { holder: h, admit: ['g1'], remove: ['n1', 'n2'] });
    validate.swapMembers(ctx, { holder: h, admit: ['n1'], remove: ['old'] }); // a retried swap: already in, already out
    assertInvalid(() => validate.swapMembers(ctx, { holder: h, admit: ['g2'], remove: [] }), 'admit', /not claimed by rollout\/gpu\/bg; claim it with claimNodes first/);
    assertInvalid(() => validate.swapMembers(ctx, { holder: h, admit: ['g9'], remove: [] }), 'admit');
    assertInvalid(() => validate.swapMembers(ctx, { holder: h, admit: 'g1', remove: [] }), 'admit', /list of node ids/);
    assertInvalid(() => validate.swapMembers(ctx, { holder: h, admit: [] }), 'remove', /list of node ids/);
    assertInvalid(() => validate.swapMembers(ctx, { holder: h, admit: [], remove: ['g2'] }), 'remove', /not a member of pool 'gpu'/);
    assertInvalid(() => validate.swapMembers(ctx, { holder: h, admit: [], remove: ['n3'] }), 'remove', /'n3' is replacing/);
    assertInvalid(() => validate.swapMembers(ctx, { holder: h, admit: [], remove: ['n4'] }), 'remove', /holds a disruption lease \(rollout\/gpu\/r1\)/);
    assertInvalid(() => validate.swapMembers(ctx, { holder: 'scale-down/x', admit: [], remove: [] }), 'holder');
  });

  it('releaseClaims: a holder, and optionally which of its ids', () => {
    validate.releaseClaims({ holder: 'rollout/gpu/bg' });
    validate.releaseClaims({ holder: 'rollout/gpu/bg', nodeIds: ['g1'] });
    assertInvalid(() => validate.releaseClaims({ holder: 'rollout/gpu/bg', nodeIds: 'g1' }), 'nodeIds');
    assertInvalid(() => validate.releaseClaims({ holder: 'replace/gpu/n1' }), 'holder', /reserved/);
    assertInvalid(() => validate.releaseClaims({}), 'holder');
  });

  it('validators change nothing', () => {
    const { ctx } = unitPool({ nodes: ['n1', 'n2'] });
    const before = JSON.stringify(ctx.state);
    validate.claimNodes(ctx, { holder: 'rollout/gpu/bg', nodeIds: ['g1'] });
    validate.swapMembers(ctx, { holder: 'rollout/gpu/bg', admit: ['n1'], remove: ['n2'] });
    validate.acquireLease(ctx, { holder: 'rollout/gpu/r1', nodeId: 'n1' });
    validate.resize(ctx, { desiredNodes: 5 });
    assert.throws(() => validate.claimNodes(ctx, { holder: 'rollout/gpu/bg', nodeIds: ['n1'] }));
    assert.equal(JSON.stringify(ctx.state), before);
  });
});

// The pool's desired serving state without a server: the spec, drift, convergence, rollouts' hold,
// and the agent's readiness reasons.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseFleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import { applyServingProbe, converge, servingStatus, setServing, validateSetServing } from '../../workflows/pool/serving.ts';
import { grantPass } from '../../workflows/pool/disruption.ts';
import { poolStatus } from '../../workflows/pool/status.ts';
import { onlyWaitsForModel, servingReasons } from '../../gpu-agent/readiness.ts';
import type { ProbePoolResult } from '../../activities/pool/probe.ts';
import { assertInvalid, unitPool } from '../pool/unitPool.ts';

const A = { uri: '/models/a.gguf', sha256: 'a'.repeat(64) };
const B = { uri: '/models/b.gguf', sha256: 'b'.repeat(64) };
const base = { name: 'gpu', minNodes: 1, maxNodes: 5 };

function probe(drift: { id: string; model: typeof A | null }[]): ProbePoolResult {
  return { full: false, changes: [], digest: '', activeNodes: 0, idle: [], probed: 0, tookMs: 1, drift };
}

describe('serving spec', () => {
  it('defaults reconcile to converge and keeps the model', () => {
    const c = parseFleetPoolSpec({ ...base, serving: { model: A } });
    assert.deepEqual(c.serving, { model: A, reconcile: 'converge' });
    assert.equal(parseFleetPoolSpec(base).serving, undefined);
  });
  it('rejects bad serving fields, naming them', () => {
    assertInvalid(() => parseFleetPoolSpec({ ...base, serving: {} }), 'serving.model');
    assertInvalid(() => parseFleetPoolSpec({ ...base, serving: 'a.gguf' }), 'serving');
    assertInvalid(() => parseFleetPoolSpec({ ...base, serving: { model: { uri: '/m.gguf', sha256: 'xyz' } } }), 'serving.model.sha256');
    assertInvalid(() => parseFleetPoolSpec({ ...base, serving: { model: { uri: 'm.gguf', sha256: A.sha256 } } }), 'serving.model.uri');
    assertInvalid(() => parseFleetPoolSpec({ ...base, serving: { model: A, reconcile: 'fix' } }), 'serving.reconcile');
    assertInvalid(() => parseFleetPoolSpec({ ...base, serving: { model: A, extra: 1 } }), 'serving.extra');
  });
});

describe('drift', () => {
  it('a member serving another model (or none) queues a converge lease; the others are recorded as serving the desired model', () => {
    const p = unitPool({ spec: { serving: { model: A } }, nodes: ['n1', 'n2', 'n3'] });
    applyServingProbe(p.ctx, probe([{ id: 'n2', model: B }, { id: 'n3', model: null }]));
    assert.deepEqual(p.ctx.state.nodes.n1.model, A);
    converge(p.ctx);
    grantPass(p.ctx);
    // maxUnavailable 1: one converges at a time, the other waits in the budget's queue.
    assert.deepEqual(p.work, [{ kind: 'converge', nodeId: 'n2', holder: 'converge/n2' }]);
    assert.deepEqual(p.ctx.state.budget.queue.map((q) => q.holder), ['converge/n3']);
    assert.equal(p.ctx.state.nodes.n2.phase, 'cordoned');
    const st = servingStatus(p.ctx)!;
    assert.deepEqual(st.drifted.map((d) => [d.nodeId, d.serves?.sha256 ?? null, d.converging]), [['n2', B.sha256, true], ['n3', null, false]]);
    assert.deepEqual(poolStatus(p.ctx).serving?.desired, A);
    assert.equal(p.events().filter((e) => e.startsWith('drift:')).length, 2);
    converge(p.ctx); // reported once per drift
    assert.equal(p.events().filter((e) => e.startsWith('drift:')).length, 2);
  });
  it('the desired model changed while the probe ran: members it found on the model it was asked about are recorded as serving that one, and converge', () => {
    const p = unitPool({ spec: { serving: { model: A } }, nodes: ['n1', 'n2'] });
    p.ctx.run.servingProbed = true;
    setServing(p.ctx, { holder: 'pool/gpu/applySpec', model: B, hold: false }); // while a probe asked about A
    applyServingProbe(p.ctx, probe([]), A); // every member serves A: no drift from A
    assert.deepEqual([p.ctx.state.nodes.n1.model, p.ctx.state.nodes.n2.model], [A, A]);
    converge(p.ctx);
    assert.deepEqual(p.ctx.state.budget.queue.map((q) => q.holder).concat(p.work.map((w) => w.holder ?? '')).sort(), ['converge/n1', 'converge/n2']);
  });
  it('reconcile report only reports; a sick member is left to remediation', () => {
    const p = unitPool({ spec: { serving: { model: A, reconcile: 'report' } }, nodes: ['n1', { id: 'n2', health: 'unhealthy' }] });
    applyServingProbe(p.ctx, probe([{ id: 'n1', model: B }]));
    converge(p.ctx);
    assert.equal(p.ctx.state.budget.queue.length, 0);
    assert.match(p.events().join('\n'), /reconcile: report/);
    p.ctx.cfg = parseFleetPoolSpec({ ...base, serving: { model: A } });
    p.ctx.state.nodes.n2.model = B;
    converge(p.ctx);
    assert.deepEqual(p.ctx.state.budget.queue.map((q) => q.holder), ['converge/n1']);
  });
  it('pools without serving never converge', () => {
    const p = unitPool({ nodes: ['n1'] });
    p.ctx.state.nodes.n1.model = B;
    converge(p.ctx);
    assert.equal(poolStatus(p.ctx).serving, undefined);
    assert.deepEqual(p.ctx.state.budget.queue, []);
  });
});

describe('setServingModel (rollouts)', () => {
  it('moves the desired model, holds convergence while the rollout walks, and restores', () => {
    const p = unitPool({ spec: { serving: { model: A } }, nodes: ['n1', 'n2'] });
    const a = setServing(p.ctx, { holder: 'rollout/gpu/v2', model: B, hold: true });
    assert.deepEqual(a, { serving: true, previous: A });
    assert.deepEqual(p.ctx.cfg.serving?.model, B);
    assert.deepEqual(p.ctx.state.spec.serving?.model, B, 'carried across continue-as-new in the spec');
    // n1 still serves A: drift, but the rollout converges it, not the pool.
    applyServingProbe(p.ctx, probe([{ id: 'n1', model: A }]));
    converge(p.ctx);
    assert.deepEqual(p.ctx.state.budget.queue, []);
    assert.equal(servingStatus(p.ctx)?.hold?.holder, 'rollout/gpu/v2');
    assertInvalid(() => validateSetServing(p.ctx, { holder: 'rollout/gpu/other', model: A, hold: true }), 'holder', /held by rollout\/gpu\/v2/);
    assertInvalid(() => validateSetServing(p.ctx, { holder: 'rollout/gpu/v2', model: { uri: '/m', sha256: 'x' }, hold: false }), 'sha256');
    assertInvalid(() => validateSetServing(p.ctx, { holder: 'rollout/gpu/v2', model: A }), 'hold');
    // Abort: the previous model again, hold released; once the rollback walked n2 back to A, nothing drifts.
    setServing(p.ctx, { holder: 'rollout/gpu/v2', model: A, hold: false });
    assert.equal(p.ctx.state.servingHold, undefined);
    applyServingProbe(p.ctx, probe([]));
    assert.deepEqual(servingStatus(p.ctx)?.drifted, []);
  });
  it('a pool without serving answers serving: false and changes nothing', () => {
    const p = unitPool({ nodes: ['n1'] });
    assert.deepEqual(setServing(p.ctx, { holder: 'rollout/gpu/v2', model: B, hold: true }), { serving: false });
    assert.equal(p.ctx.state.servingHold, undefined);
    assert.equal(p.ctx.cfg.serving, undefined);
  });
});

describe('agent readiness reasons', () => {
  it('an agent told what to serve is not ready while it serves none or another; --require-model: not while none', () => {
    assert.deepEqual(servingReasons(undefined, null, false), []);
    assert.match(servingReasons(undefined, null, true)[0], /^model: this node must serve a model and serves none/);
    assert.deepEqual(servingReasons(undefined, B, true), []);
    assert.match(servingReasons(A, null, false)[0], /^model: must serve \/models\/a.gguf .*serves none yet/);
    assert.match(servingReasons(A, B, true, 'sha256 mismatch')[0], /serves bbbbbbbbbbbb….*last load failed: sha256 mismatch/);
    assert.deepEqual(servingReasons(A, A, true), []);
    assert.equal(onlyWaitsForModel(['model: x']), true);
    assert.equal(onlyWaitsForModel(['model: x', 'node is cordoned']), false);
    assert.equal(onlyWaitsForModel([]), false);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEAD_AT_PROVIDER } from '../../workflows/common/health.ts';
import { parseFleetPoolSpec, type FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import { evaluate, recordBad, closedBreaker } from '../../workflows/pool/breaker.ts';
import { resumeRemediation } from '../../workflows/pool/handlers.ts';
import { closeIncident } from '../../workflows/pool/incidents.ts';
import { actionAt, classify, REMEDIATION_DEFAULTS, startRung } from '../../workflows/pool/ladder.ts';
import { remediate } from '../../workflows/pool/remediation.ts';
import { applyWatch } from '../../workflows/pool/watch.ts';
import { assertInvalid, unitPool, type UnitPool } from './unitPool.ts';

/** A unit pool with health events on, recording quarantines and reboots too. */
function healthPool(nodes: number, spec: Partial<FleetPoolSpec> = {}): UnitPool {
  const p = unitPool({ spec: { minNodes: 1, maxNodes: 10, health: { unhealthyAfter: 2 }, disruption: { maxUnavailable: 2, minHealthy: '25%' }, ...spec }, nodes: Array.from({ length: nodes }, (_, i) => `n${i}`) });
  p.ctx.run.health = true;
  Object.assign(p.ctx.work, {
    quarantine: (_c: unknown, nodeId: string) => void p.work.push({ kind: 'quarantine', nodeId }),
    reboot: (_c: unknown, node: { id: string }, l: { holder: string }) => void p.work.push({ kind: 'reboot', nodeId: node.id, holder: l.holder }),
    recordIncident: () => {},
  });
  return p;
}
const sick = (id: string, reasons = ['gpu 0: xid 79 (fatal): fell off the bus']) => ({ changes: [{ id, health: 'unhealthy' as const, reasons, at: 0 }] });

describe('remediation ladder (pure)', () => {
  it('classifies faults from the agent reasons, replace-only classes first', () => {
    assert.equal(classify('unhealthy', ['gpu 0: xid 79 (fatal): x']), 'xid-bus');
    assert.equal(classify('unhealthy', ['gpu 0: xid 79 (fatal): x', 'gpu 1: 2 uncorrected ECC errors']), 'ecc');
    assert.equal(classify('unhealthy', ['gpu 0: xid 48 (fatal): dbe']), 'ecc');
    assert.equal(classify('unhealthy', ['gpu 0: xid 13 (fatal): x']), 'xid');
    assert.equal(classify('unhealthy', ['gpu 0: temperature 97 C >= 95 C']), 'thermal');
    assert.equal(classify('unhealthy', ['gpu 0: row remapping failed']), 'row-remap-failure');
    assert.equal(classify('unreachable', [`${DEAD_AT_PROVIDER}agent process is not alive`]), 'dead');
    assert.equal(classify('unreachable', ['agent did not answer: ECONNREFUSED']), 'unreachable');
  });

  it('climbs a rung when the same class comes back within the window, and repeats the last rung', () => {
    const cfg = REMEDIATION_DEFAULTS;
    assert.equal(startRung('xid-bus', undefined, 0, cfg), 0);
    assert.equal(startRung('xid-bus', { class: 'xid-bus', rung: 0, endedAt: 0 }, 60_000, cfg), 1);
    assert.equal(startRung('xid-bus', { class: 'xid-bus', rung: 0, endedAt: 0 }, 3_601_000, cfg), 0);
    assert.equal(startRung('thermal', { class: 'xid-bus', rung: 0, endedAt: 0 }, 60_000, cfg), 0);
    assert.deepEqual([0, 1, 2, 5].map((r) => actionAt('thermal', r, cfg)), ['wait', 'reboot', 'replace', 'replace']);
    assert.equal(actionAt('ecc', 0, cfg), 'replace');
  });

  it('validates health.remediation, naming the field', () => {
    const base = { name: 'gpu', minNodes: 1, maxNodes: 3 };
    assertInvalid(() => parseFleetPoolSpec({ ...base, health: { remediation: { ladders: { xid: ['reboot', 'explode'] } } } }), 'health.remediation.ladders.xid[1]');
    assertInvalid(() => parseFleetPoolSpec({ ...base, health: { remediation: { ladders: { dead: ['reboot'] } } } }), 'health.remediation.ladders.dead');
    assertInvalid(() => parseFleetPoolSpec({ ...base, health: { remediation: { ladders: { nope: ['replace'] } } } }), 'health.remediation.ladders.nope');
    const c = parseFleetPoolSpec({ ...base, health: { remediation: { ladders: { 'xid-bus': ['replace'] } } } });
    assert.deepEqual(c.health.remediation.ladders['xid-bus'], ['replace']);
    assert.deepEqual(c.health.remediation.ladders.thermal, ['wait', 'reboot', 'replace']);
  });
});

describe('quarantine, ladder and outage rules on the pool state', () => {
  it('quarantines a fatal fault at once from the watch, then reboots after unhealthyAfter; a recurrence is replaced', () => {
    const p = healthPool(4);
    applyWatch(p.ctx, sick('n1'));
    remediate(p.ctx);
    assert.deepEqual(p.work.map((w) => [w.kind, w.nodeId]), [['quarantine', 'n1']], 'cordoned before unhealthyAfter');
    p.ctx.state.nodes.n1.badProbes = 2; // a probe saw it too
    remediate(p.ctx);
    assert.deepEqual(p.work.at(-1), { kind: 'reboot', nodeId: 'n1', holder: 'reboot/gpu/n1' });
    assert.equal(p.ctx.state.nodes.n1.phase, 'rebooting');
    // The reboot task ends: healthy, lease released, incident back in service.
    const n = p.ctx.state.nodes.n1;
    Object.assign(n, { phase: 'active', health: 'healthy', badProbes: 0, reasons: undefined });
    p.ctx.state.budget = { leases: [], queue: [] };
    closeIncident(p.ctx, 'n1', 'back-in-service', 'rebooted and passed health');
    assert.equal(p.ctx.state.incidents!.closed[0].action, 'reboot');
    p.advance(60_000);
    applyWatch(p.ctx, sick('n1'));
    p.ctx.state.nodes.n1.badProbes = 2;
    remediate(p.ctx);
    assert.deepEqual(p.work.at(-1)?.kind, 'replace');
    assert.match(p.events().join('\n'), /rung 2/);
  });

  it('a burst in one batch opens the breaker before anything is quarantined', () => {
    const p = healthPool(4);
    applyWatch(p.ctx, { changes: ['n0', 'n1', 'n2', 'n3'].map((id) => sick(id).changes[0]) });
    remediate(p.ctx);
    assert.equal(p.ctx.state.breaker.open, true);
    assert.deepEqual(p.work, []);
  });

  it('dead nodes are out of service: the floor does not block replacing them once resumed; the breaker latches', () => {
    const p = healthPool(4);
    const dead = { health: 'unreachable' as const, reasons: [`${DEAD_AT_PROVIDER}agent process is not alive`], at: 0 };
    applyWatch(p.ctx, { changes: ['n0', 'n1', 'n2', 'n3'].map((id) => ({ ...dead, id })) });
    remediate(p.ctx);
    assert.equal(p.ctx.state.breaker.open, true);
    resumeRemediation(p.ctx);
    assert.equal(p.ctx.state.breaker.latched?.bad, 4);
    p.advance(1000);
    remediate(p.ctx);
    assert.equal(p.ctx.state.breaker.open, false, 'the same condition does not re-open it');
    assert.deepEqual(p.work.filter((w) => w.kind === 'replace').map((w) => w.nodeId), ['n0', 'n1'], 'two at a time (maxUnavailable 2)');
  });

  it('the latched breaker opens again when more nodes go bad than at the resume', () => {
    const b0 = recordBad(recordBad(closedBreaker(), 'a', 0), 'b', 0);
    const latched = { ...closedBreaker(), latched: { at: 0, reason: 'x', bad: 2, healthy: 0 } };
    const cfg = { maxUnhealthyFraction: 1, windowSeconds: 60 };
    assert.equal(evaluate(latched, cfg, { size: 4, healthy: 1, minHealthy: 2, bad: 2 }, 1).open, false);
    assert.equal(evaluate(latched, cfg, { size: 4, healthy: 1, minHealthy: 2, bad: 3 }, 1).open, true);
    assert.equal(evaluate(latched, cfg, { size: 4, healthy: 4, minHealthy: 2, bad: 0 }, 1).latched, undefined);
    assert.equal(evaluate(b0, cfg, { size: 4, healthy: 1, minHealthy: 2 }, 1).open, true, 'without a latch the floor opens it');
  });
});

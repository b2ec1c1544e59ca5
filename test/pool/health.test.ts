import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import { resumeRemediationUpdate } from '../../workflows/pool/api.ts';
import { agentProcesses } from '../../scripts/lib/fleet.ts';
import { clearFaults, drainState, injectFatal, poolHarness, poolStatus, waitStatus } from './helpers.ts';

const TQ = 'pool-health';
const POOL = 'hl';
const NODES = 4;

/**
 * Health events on a real local fleet: the watch, quarantine, the remediation ladder and recovery
 * from a total outage. Tests run in order on one pool (each leaves it at NODES healthy nodes).
 */
describe(`fleetPool health events on a real local fleet of ${NODES} agents`, () => {
  const spec: FleetPoolSpec = {
    name: POOL,
    minNodes: NODES,
    maxNodes: NODES,
    health: { probeIntervalSeconds: 2, unhealthyAfter: 1, unreachableAfterSeconds: 5, drainTimeoutSeconds: 5, forceDrain: true, probeTimeoutMs: 1500, remediation: { rebootTimeoutSeconds: 30 } },
    disruption: { maxUnavailable: 2, minHealthy: '25%', breaker: { maxUnhealthyFraction: 0.3, windowSeconds: 60 } },
  };
  const h = poolHarness({ taskQueue: TQ, spec, nodes: NODES, fleet: { bootSeconds: 1 } });
  const allHealthy = (s: Awaited<ReturnType<typeof poolStatus>>) => s.counts.members === NODES && s.counts.healthy === NODES && s.counts.disrupted === 0;

  it('systemic: every agent unhealthy at once opens the breaker, and nothing is quarantined or replaced', async () => {
    const ids = (await poolStatus(h.pool)).nodes.map((n) => n.id);
    await Promise.all(ids.map((id) => injectFatal(h.fleet, id)));
    const open = await waitStatus(h.pool, (s) => s.breaker.open && s.counts.unhealthy === NODES, 'the breaker to open with every node unhealthy');
    assert.match(open.breaker.reason ?? '', /went bad within/);
    // Two more probe intervals: still nothing cordoned, nothing replaced.
    const settled = await waitStatus(h.pool, (s) => s.lastProbe !== undefined && Date.parse(s.lastProbe.at) > Date.now() - 500 && Date.parse(s.lastProbe.at) > Date.parse(open.lastProbe!.at) + 3000, 'two more probes');
    assert.equal(settled.quarantined, 0);
    assert.equal(settled.replacements.started, 0);
    assert.equal(settled.leases.length, 0);
    for (const id of ids) assert.equal(await drainState(h.fleet, id), 'active', `${id} is not cordoned`);
    await Promise.all(ids.map((id) => clearFaults(h.fleet, id)));
    await waitStatus(h.pool, (s) => s.counts.healthy === NODES, 'the nodes to recover');
    await h.pool.executeUpdate(resumeRemediationUpdate, { args: [] });
    await waitStatus(h.pool, (s) => s.phase === 'running' && allHealthy(s) && (s.incidents?.open.length ?? 0) === 0, 'the pool back to running');
  });

  it('quarantines a fatal fault at once, reboots first, and replaces when the fault comes back within the window', async () => {
    const before = await poolStatus(h.pool);
    const victim = before.nodes[0].id;
    const t0 = Date.now();
    await injectFatal(h.fleet, victim, 79); // fallen off the bus: the ladder is reboot, then replace
    // Quarantine: cordoned at the agent within a few seconds (the watch, not the 2 s probe plus unhealthyAfter).
    let cordonedAt = 0;
    await waitStatus(h.pool, (s) => {
      if (!cordonedAt && s.events.some((e) => e.nodeId === victim && /quarantined/.test(e.message))) cordonedAt = Date.now();
      return cordonedAt > 0;
    }, 'the victim to be quarantined', 20_000);
    assert.ok(cordonedAt - t0 < 5000, `quarantined ${cordonedAt - t0} ms after the fault`);
    const back = await waitStatus(
      h.pool,
      (s) => s.incidents!.recent.some((i) => i.nodeId === victim && i.outcome === 'back-in-service'),
      'the victim rebooted and back in service',
      60_000,
    );
    const first = back.incidents!.recent.find((i) => i.nodeId === victim && i.outcome === 'back-in-service')!;
    assert.equal(first.action, 'reboot');
    assert.equal(first.class, 'xid-bus');
    assert.deepEqual(first.stages.map((x) => x.stage), ['detected', 'quarantined', 'remediation', 'back-in-service']);
    assert.ok(back.nodes.some((n) => n.id === victim && n.health === 'healthy' && n.phase === 'active'), 'the same node serves again');
    assert.equal(await drainState(h.fleet, victim), 'active');
    assert.equal(back.replacements.started, 0);

    // The same fault again within the window: the next rung, a replacement.
    await injectFatal(h.fleet, victim, 79);
    const replaced = await waitStatus(h.pool, (s) => s.incidents!.recent.some((i) => i.nodeId === victim && i.outcome === 'replaced') && allHealthy(s), 'the victim replaced', 90_000);
    const second = replaced.incidents!.recent.filter((i) => i.nodeId === victim).at(-1)!;
    assert.equal(second.action, 'replace');
    assert.equal(second.rung, 1);
    assert.ok(!replaced.nodes.some((n) => n.id === victim));
  });

  it('total outage: every agent killed opens the breaker; after resumeRemediation the pool replaces them and ends at its size, all healthy', async () => {
    const ids = (await poolStatus(h.pool)).nodes.map((n) => n.id);
    for (const pid of agentProcesses(h.fleet.dir)) process.kill(pid, 'SIGKILL');
    const open = await waitStatus(h.pool, (s) => s.breaker.open, 'the breaker to open', 30_000);
    assert.equal(open.phase, 'breaker-open');
    const dead = await waitStatus(h.pool, (s) => (s.dead ?? 0) === NODES, 'every node reported dead at the provider (not provisioning)', 30_000);
    assert.ok(dead.nodes.every((n) => n.reasons?.some((r) => r.startsWith('dead at the provider'))), JSON.stringify(dead.nodes));
    await h.pool.executeUpdate(resumeRemediationUpdate, { args: [] });
    const latched = await poolStatus(h.pool);
    assert.notEqual(latched.phase, 'breaker-open', 'the breaker does not re-open on the same condition');
    assert.match(latched.phaseReason ?? '', /latched/);
    const done = await waitStatus(h.pool, (s) => allHealthy(s) && ids.every((id) => !s.nodes.some((n) => n.id === id)), 'every dead node replaced', 120_000);
    assert.equal(done.phase, 'running');
    assert.ok(done.maxDisrupted <= 2);
  });
});

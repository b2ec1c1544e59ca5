import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import {
  acquireLeaseUpdate,
  applySpecUpdate,
  cordonNodeUpdate,
  releaseLeaseUpdate,
  replaceNodeUpdate,
  resizeUpdate,
  resumeRemediationUpdate,
  uncordonNodeUpdate,
} from '../../workflows/pool/api.ts';
import { rejectsNaming } from '../helpers/failures.ts';
import { agentProcesses } from '../../scripts/lib/fleet.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { clearFaults, injectFatal, liveIds, poolHarness, poolStatus, startPool, waitStatus } from './helpers.ts';

const TQ = 'pool-remediation';
const POOL = 'rem';
const NODES = 10;

describe(`fleetPool remediation on a real local fleet of ${NODES} agents`, () => {
  const spec: FleetPoolSpec = {
    name: POOL,
    minNodes: 1,
    maxNodes: 10,
    health: { probeIntervalSeconds: 1, unhealthyAfter: 4, unreachableAfterSeconds: 30, drainTimeoutSeconds: 10, probeTimeoutMs: 2000 },
    // The budget test makes the whole pool sick at once on purpose: breaker and floor are off here
    // (a short window, so nodes replaced by earlier tests do not count on top of all ten).
    disruption: { maxUnavailable: 2, minHealthy: 0, breaker: { maxUnhealthyFraction: 1, windowSeconds: 5 } },
  };

  const h = poolHarness({ taskQueue: TQ, spec, nodes: NODES, fleet: { bootSeconds: 1 } });

  // Each test starts from the same pool, whatever ran before it: a running manager with this spec,
  // every member healthy and no lease held. Counters are read relative to the test's start.
  beforeEach(async () => {
    if ((await h.pool.describe()).status.name !== 'RUNNING') h.pool = await startAgain(spec);
    await h.pool.executeUpdate(applySpecUpdate, { args: [spec] });
    // A breaker a failed test above left open is closed, as an operator would.
    const was = await poolStatus(h.pool);
    if (was.breaker.open || was.phase === 'paused') await h.pool.executeUpdate(resumeRemediationUpdate);
    // At rest: and no node that went bad before (a test above) still inside the breaker's window,
    // where it would count on top of this test's faults (seen: "11 of 10 nodes went bad within 5 s").
    // Plus two probe intervals: the pool's clock (workflows/pool/clock.ts) may lag the wall clock by one.
    const windowMs = spec.disruption!.breaker!.windowSeconds! * 1000 + 2 * spec.health!.probeIntervalSeconds! * 1000;
    await waitStatus(
      h.pool,
      (s) => s.phase === 'running' && s.counts.members === NODES && s.counts.healthy === NODES && s.leases.length === 0 && s.breaker.recent.every((r) => Date.now() - r.at > windowMs),
      'the pool at rest, past the breaker window',
      120_000,
    );
  });
  /** Starts a manager for the pool again (the server refuses to reuse an id within a second of its last close). */
  const startAgain = async (s: FleetPoolSpec) => {
    for (let i = 0; ; i++) {
      try {
        return await startPool(h.env.client, TQ, s);
      } catch (err) {
        if (i < 20 && err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError') await new Promise((r) => setTimeout(r, 500));
        else throw err;
      }
    }
  };

  it('does not replace a node that recovers before unhealthyAfter; replaces one that crosses it exactly once', async () => {
    const [flaky, sick] = (await poolStatus(h.pool)).nodes.map((n) => n.id);
    const before = (await poolStatus(h.pool)).replacements;
    await injectFatal(h.fleet, flaky);
    await waitStatus(h.pool, (s) => s.nodes.find((n) => n.id === flaky)!.badProbes >= 1, 'the flaky node to be seen unhealthy');
    await clearFaults(h.fleet, flaky);
    await waitStatus(h.pool, (s) => s.nodes.find((n) => n.id === flaky)!.health === 'healthy', 'the flaky node to recover');
    let s = await poolStatus(h.pool);
    assert.equal(s.replacements.started, before.started, 'a node that recovered in time is not replaced');
    assert.ok(s.events.some((e) => e.nodeId === flaky && /recovered/.test(e.message)));

    await injectFatal(h.fleet, sick);
    s = await waitStatus(h.pool, (x) => x.replacements.succeeded === before.succeeded + 1 && x.counts.members === NODES && x.counts.healthy === NODES, 'the sick node to be replaced');
    assert.ok(!s.nodes.some((n) => n.id === sick), 'the sick node left the pool');
    assert.equal(s.replacements.started, before.started + 1, 'replaced exactly once');
    assert.equal(s.leases.length, 0, 'the lease was released');
    assert.equal((await h.fleet.provider.describe(sick))?.state, 'terminated');
    assert.deepEqual(await liveIds(h.fleet), s.nodes.map((n) => n.id).sort(), 'the pool and the provider agree');
    const children = [];
    for await (const w of h.env.client.workflow.list({ query: `WorkflowId = 'replace/${POOL}/${sick}'` })) children.push(w);
    assert.equal(children.length, 1, 'one replaceNode child for the node');
    assert.equal(children[0].type, 'replaceNode');
  });

  it(`with maxUnavailable 2, ten simultaneous fatal faults are replaced at most two at a time, all in the end`, async () => {
    const victims = (await poolStatus(h.pool)).nodes.slice(0, 10).map((n) => n.id);
    const before = (await poolStatus(h.pool)).replacements.succeeded;
    await Promise.all(victims.map((id) => injectFatal(h.fleet, id)));
    let seenMax = 0;
    let seenTwo = false;
    const s = await waitStatus(
      h.pool,
      (x) => x.replacements.succeeded === before + victims.length && x.counts.healthy === NODES && x.leases.length === 0,
      'all ten to be replaced',
      240_000,
      (x) => {
        seenMax = Math.max(seenMax, x.leases.length);
        if (x.leases.length === 2) seenTwo = true;
      },
    );
    assert.ok(seenMax <= 2, `never more than 2 disrupted at once (saw ${seenMax})`);
    assert.ok(seenTwo, 'the budget was used in full: two replacements ran side by side');
    assert.equal(s.maxDisrupted, 2, "the pool's own high-water mark is the budget");
    assert.ok(victims.every((v) => !s.nodes.some((n) => n.id === v)));
    assert.equal((await liveIds(h.fleet)).length, NODES, 'no extra or missing instance');
    await waitFor(() => agentProcesses(h.fleet.dir).length === NODES, 20_000, 'exactly one agent process per node');
  });

  it('breaker: 4 of 10 nodes (40 %) fatal at once opens it; replacements stop; manual replaceNode still works; resumeRemediation restarts them', async () => {
    // A short window, so the failures of the tests above (also within the last minutes) do not count.
    await h.pool.executeUpdate(applySpecUpdate, { args: [{ ...spec, disruption: { maxUnavailable: 2, minHealthy: 0, breaker: { maxUnhealthyFraction: 0.3, windowSeconds: 5 } } }] });
    const before = (await poolStatus(h.pool)).replacements.started;
    const victims = (await poolStatus(h.pool)).nodes.slice(0, 4).map((n) => n.id);
    await Promise.all(victims.map((id) => injectFatal(h.fleet, id)));
    let s = await waitStatus(h.pool, (x) => x.phase === 'breaker-open', 'the breaker to open');
    assert.match(s.phaseReason ?? '', /4 of 10 nodes/);
    // Well past unhealthyAfter, nothing is replaced automatically.
    s = await waitStatus(h.pool, (x) => victims.every((v) => x.nodes.find((n) => n.id === v)!.badProbes >= 6), 'several more probes');
    assert.equal(s.replacements.started, before, 'no automatic replacement while the breaker is open');
    await waitFor(async () => (await h.pool.describe()).searchAttributes.DrydockPhase?.[0] === 'breaker-open', 10_000, 'DrydockPhase breaker-open');

    const manual = await h.pool.executeUpdate(replaceNodeUpdate, { args: [{ nodeId: victims[0], reason: 'operator says so' }] });
    assert.equal(manual.granted, true);
    s = await waitStatus(h.pool, (x) => x.replacements.succeeded === before + 1 && !x.nodes.some((n) => n.id === victims[0]), 'the manual replacement');
    assert.equal(s.phase, 'breaker-open', 'a manual replacement does not close the breaker');

    await h.pool.executeUpdate(resumeRemediationUpdate);
    s = await waitStatus(h.pool, (x) => x.replacements.succeeded === before + 4 && x.counts.healthy === NODES && x.leases.length === 0, 'the rest to be replaced after resume', 120_000);
    assert.equal(s.phase, 'running');
    assert.equal((await liveIds(h.fleet)).length, NODES);
  });

  it('external leases share the budget in FIFO order; cordon goes through it too', async () => {
    const a = await h.pool.executeUpdate(acquireLeaseUpdate, { args: [{ holder: 'rollout/r1/a' }] });
    const [n0] = (await poolStatus(h.pool)).nodes.map((n) => n.id);
    const c = await h.pool.executeUpdate(cordonNodeUpdate, { args: [{ nodeId: n0 }] });
    assert.equal(a.granted, true);
    assert.equal(c.granted, true);
    const b = await h.pool.executeUpdate(acquireLeaseUpdate, { args: [{ holder: 'rollout/r1/b' }] });
    assert.deepEqual([b.granted, b.position], [false, 1], 'the budget of 2 is full: queued first');
    await waitStatus(h.pool, (x) => x.nodes.find((n) => n.id === n0)!.phase === 'cordoned', 'the cordon');
    await h.pool.executeUpdate(uncordonNodeUpdate, { args: [{ nodeId: n0 }] });
    const b2 = await h.pool.executeUpdate(acquireLeaseUpdate, { args: [{ holder: 'rollout/r1/b' }] });
    assert.equal(b2.granted, true, 'granted once the cordon gave its slot back');
    assert.deepEqual(await h.pool.executeUpdate(releaseLeaseUpdate, { args: [{ holder: 'rollout/r1/a' }] }), { released: true });
    assert.deepEqual(await h.pool.executeUpdate(releaseLeaseUpdate, { args: [{ holder: 'rollout/r1/b' }] }), { released: true });
    assert.equal((await poolStatus(h.pool)).leases.length, 0);
  });

  it('rejects bad updates and bad specs, naming the field', async () => {
    await rejectsNaming(h.pool.executeUpdate(cordonNodeUpdate, { args: [{ nodeId: 'no-such-node' }] }), 'nodeId');
    await rejectsNaming(h.pool.executeUpdate(replaceNodeUpdate, { args: [{ nodeId: 'no-such-node' }] }), 'nodeId');
    await rejectsNaming(h.pool.executeUpdate(applySpecUpdate, { args: [{ ...spec, disruption: { maxUnavailable: '0%' } }] }), 'disruption.maxUnavailable');
    await rejectsNaming(h.pool.executeUpdate(applySpecUpdate, { args: [{ ...spec, name: 'other' }] }), 'name');
    // The workflow sandbox knows the time zones (Intl): an unknown one is refused there too.
    await rejectsNaming(h.pool.executeUpdate(applySpecUpdate, { args: [{ ...spec, autoscaling: { type: 'scheduled', timeZone: 'Mars/Olympus', windows: [{ start: '08:00', end: '20:00', minNodes: 1 }] } }] }), 'autoscaling.timeZone');
    await rejectsNaming(h.pool.executeUpdate(resizeUpdate, { args: [{ minNodes: 5, maxNodes: 3 }] }), 'maxNodes');
    await rejectsNaming(h.pool.executeUpdate(acquireLeaseUpdate, { args: [{ holder: 'replace/x' }] }), 'holder');
    await rejectsNaming(h.pool.executeUpdate(acquireLeaseUpdate, { args: [{ holder: 'ok', ttlSeconds: -1 }] }), 'ttlSeconds');
    await rejectsNaming(h.pool.executeUpdate(uncordonNodeUpdate, { args: [{ nodeId: (await poolStatus(h.pool)).nodes[0].id }] }), 'nodeId');
    assert.equal((await poolStatus(h.pool)).phase, 'running', 'rejected updates change nothing');

    const start = (s: unknown, id?: string) => startPool(h.env.client, TQ, s as FleetPoolSpec, id).then((h) => h.result());
    await rejectsNaming(start({ name: 'bad', minNodes: 1, maxNodes: 2, disruption: { maxUnavailable: 'lots' } }), 'disruption.maxUnavailable');
    await rejectsNaming(start({ name: 'bad-2', minNodes: 1, maxNodes: 2, autoscaling: { type: 'scheduled', windows: [{ start: '20:00', end: '08:00', minNodes: 1 }] } }), 'autoscaling.windows[0].end');
    await rejectsNaming(start({ name: 'bad-3', minNodes: 1, maxNodes: 2 }, 'pool/not-bad'), 'workflowId');
    await rejectsNaming(start({ name: 'nowhere', minNodes: 1, maxNodes: 2 }), 'name');
    // A spec naming another provider than the worker's pools file is refused at start (after the manager is gone).
    await h.pool.terminate('test: start a mismatched manager');
    await rejectsNaming(startAgain({ name: POOL, provider: 'aws-ec2', minNodes: 1, maxNodes: 2 }).then((p) => p.result()), 'provider');
  });
});

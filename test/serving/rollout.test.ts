// Rollouts and a serving pool's desired model, on a real dev server with real agents: a fatal XID
// on the node being updated is a hardware fault for remediation (no rollback, no long wait), its
// replacement serves the target; abort restores the previous desired model for nodes joining later.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { rollingUpdateWorkflowId } from '../../workflows/common/ids.ts';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import type { RollingUpdateInput } from '../../workflows/inputs/rollingUpdate.ts';
import type { RolloutResult } from '../../workflows/rollout/api.ts';
import { injectFatal, poolHarness, waitStatus } from '../pool/helpers.ts';
import { failsWith, rolloutStatus, waitRollout } from '../rollout/helpers.ts';
import { agentCall, allServe, ref, servedBy, tinyModels } from './helpers.ts';

const TQ = 'serving-rollout';
const POOL = 'serveroll';
const models = tinyModels();
after(() => rmSync(models.dir, { recursive: true, force: true }));
const quick = { analysis: { intervalSeconds: 0, maxLatencyMs: 120_000 }, drainTimeoutSeconds: 10, maxUnavailable: 1 };

describe('rollouts move a serving pool\'s desired model', () => {
  const spec: FleetPoolSpec = {
    name: POOL,
    minNodes: 1,
    maxNodes: 4,
    health: { probeIntervalSeconds: 1, unhealthyAfter: 1, unreachableAfterSeconds: 30, drainTimeoutSeconds: 10 },
    // Two nodes: one broken node must not open the breaker or hit the healthy floor.
    disruption: { maxUnavailable: 1, minHealthy: 0, breaker: { maxUnhealthyFraction: 1 } },
    serving: { model: ref(models.a) },
  };
  const h = poolHarness({ taskQueue: TQ, spec, nodes: 2, fleet: { modelDirs: [models.dir] } });
  const start = (id: string, input: Omit<RollingUpdateInput, 'pool'>) =>
    h.env.client.workflow.start('rollingUpdate', { taskQueue: TQ, workflowId: rollingUpdateWorkflowId(POOL, id), args: [{ pool: POOL, ...input }] });

  it('a fatal XID on the node being updated: handed to remediation at once, no rollback; its replacement serves the target', async () => {
    await waitStatus(h.pool, allServe(models.a.sha256, 2), 'the pool to serve A', 120_000);
    const handle = await start('to-b', { target: { model: ref(models.b) }, ...quick });
    // The first node to walk gets a fatal XID (79: fell off the bus) while cordoned.
    let victim: string | undefined;
    await waitRollout(handle, (s) => {
      victim = s.nodes.find((n) => ['cordoning', 'draining', 'swapping'].includes(n.state))?.id;
      return victim !== undefined;
    }, 'a node to start its walk', 60_000);
    await injectFatal(h.fleet, victim!);
    const pool = await waitStatus(h.pool, (s) => s.serving?.desired.sha256 === models.b.sha256, 'the target to be the pool model');
    assert.equal(pool.serving?.hold?.holder, rollingUpdateWorkflowId(POOL, 'to-b'));
    const result = (await handle.result()) as RolloutResult;
    assert.equal(result.outcome, 'succeeded', JSON.stringify(result.status.events.slice(-10)));
    const broken = result.status.nodes.find((n) => n.id === victim)!;
    assert.equal(broken.state, 'handedToRemediation', JSON.stringify(broken));
    assert.doesNotMatch(broken.error ?? '', /not ready after/);
    assert.ok(Date.parse(broken.finishedAt!) - Date.parse(broken.startedAt!) < 120_000, 'no step waited out its 300 s timeout');
    assert.equal(result.status.counts.rolledBack, 0);
    assert.equal(result.status.poolServing?.previous.sha256, models.a.sha256);
    // The pool replaces the broken node; the replacement gets the pool's model, now the target.
    const s = await waitStatus(h.pool, (st) => !st.nodes.some((n) => n.id === victim) && st.replacements.succeeded >= 1 && allServe(models.b.sha256, 2)(st), 'the broken node replaced, all on B', 180_000);
    assert.equal(s.serving?.hold, undefined, 'the rollout let go of the pool');
    for (const n of s.nodes) {
      assert.equal(await servedBy(h.fleet, n.id), models.b.sha256);
      assert.equal((await agentCall(h.fleet, n.id, 'GET', '/ready')).status, 200);
    }
  });

  it('blue-green makes the target the pool model at the switch', async () => {
    const handle = await start('bg-c', { target: { model: ref(models.c) }, ...quick, strategy: 'blueGreen', maxSurge: '100%', scaleDownDelaySeconds: 0 });
    const result = (await handle.result()) as RolloutResult;
    assert.equal(result.outcome, 'succeeded', JSON.stringify(result.status.events.slice(-10)));
    assert.equal(result.status.poolServing?.previous.sha256, models.b.sha256);
    const s = await waitStatus(h.pool, allServe(models.c.sha256, 2), 'green members serving C, desired C', 120_000);
    assert.equal(s.serving?.desired.sha256, models.c.sha256);
    assert.equal(s.serving?.hold, undefined);
    // Back to B for the next test, through the pool's own convergence.
    await h.pool.executeUpdate('applySpec', { args: [{ ...spec, serving: { model: ref(models.b) } }] });
    await waitStatus(h.pool, allServe(models.b.sha256, 2), 'converged back to B', 180_000);
  });

  it('abort restores the previous desired model; a node that joins afterwards gets it', async () => {
    const handle = await start('to-c', { target: { model: ref(models.c) }, ...quick, steps: [{ batch: 1 }, { pause: {} }] });
    await waitRollout(handle, (s) => s.phase === 'paused' && s.counts.done === 1, 'the pause after batch 1', 120_000);
    assert.equal((await waitStatus(h.pool, (s) => s.serving?.desired.sha256 === models.c.sha256, 'desired C')).serving?.hold?.holder, rollingUpdateWorkflowId(POOL, 'to-c'));
    await handle.executeUpdate('abort', { args: [{ reason: 'test' }] });
    const r = await failsWith(handle, 'RolloutAborted');
    assert.equal(r.outcome, 'aborted');
    assert.ok((await rolloutStatus(handle)).events.some((e) => /desired model is restored/.test(e.message)));
    let s = await waitStatus(h.pool, (st) => st.serving?.desired.sha256 === models.b.sha256 && !st.serving.hold, 'desired B again, no hold');
    s = await waitStatus(h.pool, allServe(models.b.sha256, 2), 'every node on B again');
    const before = s.nodes.map((n) => n.id);
    await h.pool.executeUpdate('resize', { args: [{ desiredNodes: 3 }] });
    s = await waitStatus(h.pool, allServe(models.b.sha256, 3), 'the new node to join on B', 180_000);
    const fresh = s.nodes.find((n) => !before.includes(n.id))!;
    assert.equal(await servedBy(h.fleet, fresh.id), models.b.sha256);
  });
});

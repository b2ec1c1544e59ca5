import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import { abortRolloutUpdate, pauseRolloutUpdate, promoteRolloutUpdate, resumeRolloutUpdate, setMaxUnavailableUpdate } from '../../workflows/rollout/api.ts';
import type { RolloutResult } from '../../workflows/rollout/api.ts';
import { waitIdle } from '../helpers/history.ts';
import { poolStatus } from '../pool/helpers.ts';
import { allServing, failsWith, rejectsNaming, rolloutHarness, rolloutStatus, waitRollout } from './helpers.ts';

const TQ = 'rollout-rolling';
const POOL = 'roll';
const NODES = 5;
// Generous latency: tests share 2 cores with agents loading models.
const quick = { analysis: { intervalSeconds: 0, maxLatencyMs: 120_000 }, drainTimeoutSeconds: 20 };

describe(`rollingUpdate on ${NODES} real agents serving tiny GGUF models`, () => {
  const spec: FleetPoolSpec = {
    name: POOL,
    minNodes: 1,
    maxNodes: 10,
    health: { probeIntervalSeconds: 1, unhealthyAfter: 3, unreachableAfterSeconds: 30, drainTimeoutSeconds: 20 },
    disruption: { maxUnavailable: 2, minHealthy: 1 },
  };
  const h = rolloutHarness({ taskQueue: TQ, spec, nodes: NODES });

  it('rolls model B across the pool in batches through the pool budget; every node serves B at the end', async () => {
    const { b } = h.models;
    const handle = await h.start('to-b', { target: { model: { uri: b.path, sha256: b.sha256 } }, maxUnavailable: 2, ...quick });
    const result = (await handle.result()) as RolloutResult;
    assert.equal(result.outcome, 'succeeded');
    assert.equal(result.status.counts.done, NODES);
    assert.ok(result.status.nodes.every((n) => n.state === 'done' && n.previous?.sha256 === h.models.a.sha256), JSON.stringify(result.status.nodes));
    assert.ok(result.status.maxDisrupted <= 2 && result.status.maxDisrupted >= 1, `maxDisrupted ${result.status.maxDisrupted}`);
    assert.ok(result.status.poolBudget, 'leases went through the pool');
    assert.ok(result.status.batches.length >= 3, `batches of at most 2: ${JSON.stringify(result.status.batches)}`);
    assert.ok(result.status.analyses.every((a) => a.ok));
    assert.deepEqual(Object.values(await h.served()), Array(NODES).fill(b.sha256));
    await allServing(h);
    const pool = await poolStatus(h.pool);
    assert.equal(pool.leases.length, 0, 'every lease was released');
    assert.ok(pool.maxDisrupted <= 2);
  });

  it('a model whose sha256 does not match is refused and rolled back: every node still serves B', async () => {
    const { c, a } = h.models;
    await h.loadEverywhere(h.models.b); // set-up: every node serves B, whatever ran before
    const handle = await h.start('bad-sha', { target: { model: { uri: c.path, sha256: a.sha256 } }, maxUnavailable: 2, ...quick });
    const r = await failsWith(handle, 'RolloutRolledBack');
    assert.equal(r.outcome, 'rolled-back');
    assert.match(r.status.reason ?? '', /refused the model/);
    assert.deepEqual(Object.values(await h.served()), Array(NODES).fill(h.models.b.sha256));
    await allServing(h);
  });

  it('a model that fails the smoke test (expected text missing) is rolled back', async () => {
    const { c } = h.models;
    await h.loadEverywhere(h.models.b);
    const handle = await h.start('smoke-fails', { target: { model: { uri: c.path, sha256: c.sha256 } }, ...quick, analysis: { ...quick.analysis, expect: 'never-generated-text' } });
    const r = await failsWith(handle, 'RolloutRolledBack');
    assert.match(r.status.reason ?? '', /smoke test failed.*does not contain/);
    assert.deepEqual(Object.values(await h.served()), Array(NODES).fill(h.models.b.sha256));
    await allServing(h);
  });

  it('controls: promote skips a pause step, pause holds new nodes back, resume and setMaxUnavailable continue, abort rolls back', async () => {
    const { a, b } = h.models;
    await h.loadEverywhere(b);
    const handle = await h.start('controls', {
      target: { model: { uri: a.path, sha256: a.sha256 } },
      steps: [{ batch: 1 }, { pause: {} }, { batch: 2 }, { pause: { seconds: 3600 } }],
      maxUnavailable: 1,
      ...quick,
    });
    await waitRollout(handle, (s) => s.phase === 'paused' && s.step === 1, 'the first pause step');
    await rejectsNaming(handle.executeUpdate(resumeRolloutUpdate), 'phase'); // a pause step wants promote
    await handle.executeUpdate(promoteRolloutUpdate, { args: [{}] });

    // An operator pause while the first node of batch 2 walks (one node at a time): it finishes, the next waits.
    await waitRollout(handle, (s) => s.counts.done === 1 && s.counts.inProgress === 1, 'the first node of batch 2 to walk');
    await handle.executeUpdate(pauseRolloutUpdate, { args: [{ reason: 'look at the dashboards' }] });
    const atPause = await rolloutStatus(handle);
    await rejectsNaming(handle.executeUpdate(pauseRolloutUpdate, { args: [{}] }), 'phase');
    await rejectsNaming(handle.executeUpdate(promoteRolloutUpdate, { args: [{}] }), 'phase');
    await waitRollout(handle, (s) => s.counts.inProgress === 0, 'in-flight nodes to finish');
    // Idle: nothing left that could start a node without an update, so what it holds now is final.
    await waitIdle(handle, 'the paused rollout to settle');
    const held = await rolloutStatus(handle);
    assert.equal(held.phase, 'paused');
    assert.equal(held.counts.inProgress, 0, 'no node walks while paused');
    assert.equal(held.counts.done, atPause.counts.done + atPause.counts.inProgress, 'only the nodes walking at the pause finished');
    assert.equal(held.counts.pending, atPause.counts.pending, 'no node started while paused');
    await rejectsNaming(handle.executeUpdate(setMaxUnavailableUpdate, { args: [{ maxUnavailable: '0%' }] }), 'maxUnavailable');
    await handle.executeUpdate(setMaxUnavailableUpdate, { args: [{ maxUnavailable: 2 }] });
    await handle.executeUpdate(resumeRolloutUpdate);

    const second = await waitRollout(handle, (s) => s.phase === 'paused' && s.step === 3, 'the second pause step');
    assert.equal(second.counts.done, 3);
    assert.equal(second.maxUnavailable, 2);
    await rejectsNaming(handle.executeUpdate(abortRolloutUpdate, { args: [{ reason: 7 as unknown as string }] }), 'reason');
    await handle.executeUpdate(abortRolloutUpdate, { args: [{ reason: 'test abort' }] });
    const r = await failsWith(handle, 'RolloutAborted');
    assert.equal(r.status.counts.rolledBack, 3);
    assert.match(r.status.reason ?? '', /test abort/);
    assert.deepEqual(Object.values(await h.served()), Array(NODES).fill(b.sha256));
    await allServing(h);
  });

  it('rejects bad input naming the field', async () => {
    const { b } = h.models;
    const model = { uri: b.path, sha256: b.sha256 };
    const cases: [Record<string, unknown>, string][] = [
      [{}, 'target'],
      [{ target: { model: { uri: 'relative.gguf', sha256: b.sha256 } } }, 'target.model.uri'],
      [{ target: { model: { uri: b.path, sha256: 'abc' } } }, 'target.model.sha256'],
      [{ target: { model }, strategy: 'canary' }, 'strategy'],
      [{ target: { model }, maxUnavailable: '150%' }, 'maxUnavailable'],
      [{ target: { model }, steps: [{ batch: 0 }] }, 'steps[0].batch'],
      [{ target: { model }, steps: [{ pause: { seconds: -1 } }] }, 'steps[0].pause.seconds'],
      [{ target: { model }, analysis: { failureLimit: -1 } }, 'analysis.failureLimit'],
      [{ target: { model }, analysis: { maxErrorRate: 'low' } }, 'analysis.maxErrorRate'],
      [{ target: { model }, onFailure: 'ignore' }, 'onFailure'],
      [{ target: { model }, strategy: 'blueGreen', steps: [{ batch: 1 }] }, 'steps'],
      [{ target: { model }, colour: 'blue' }, 'colour'],
    ];
    for (const [input, field] of cases) {
      const handle = await h.start(`bad-${field.replace(/[^a-z]/gi, '')}`, input as never);
      await rejectsNaming(handle.result(), field);
    }
    const wrongId = await h.env.client.workflow.start('rollingUpdate', { taskQueue: TQ, workflowId: `rollouts/${POOL}/x`, args: [{ pool: POOL, target: { model } }] });
    await rejectsNaming(wrongId.result(), 'workflowId');
    const unknownPool = await h.env.client.workflow.start('rollingUpdate', { taskQueue: TQ, workflowId: 'rollout/nosuch/x', args: [{ pool: 'nosuch', target: { model } }] });
    await rejectsNaming(unknownPool.result(), 'pool');
  });
});

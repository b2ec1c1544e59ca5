import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import type { WorkerDeploymentVersion } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { createTrainingActivities } from '../../activities/training/activities.ts';
import { workflowBundle } from '../../scripts/lib/bundle.ts';
import { deploymentReport, setCurrentVersion, type DeploymentReport } from '../../scripts/lib/versioning.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { spawnWorker, type WorkerProcess } from '../../scripts/lib/workers.ts';
import { deploymentOptions } from '../../workers/versioning.ts';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import { promoteRolloutUpdate, type RolloutResult } from '../../workflows/rollout/api.ts';
import { DRYDOCK_TRAIN_LOSS, pauseSignal, resumeSignal, type TrainingJobResult, type TrainingProgress } from '../../workflows/trainingJob.ts';
import { runCli } from '../helpers/cli.ts';
import { bundleEditedCopy } from '../helpers/workflowBundles.ts';
import { poolStatus, waitStatus } from '../pool/helpers.ts';
import { rolloutHarness, waitRollout } from '../rollout/helpers.ts';

/**
 * An upgrade across two real builds on a real dev server. Build A is today's code (the checkout's
 * build). Build B is a copy of today's workflows/ with two changes, bundled on its own and run by a
 * second control worker with its own DRYDOCK_BUILD_ID:
 * - rollingUpdate (pinned) writes a memo first: a new command, so not replay-safe; allowed, because
 *   a pinned rollout never replays on another build;
 * - fleetPool (auto-upgrade) writes a memo and an event once, behind patched(), so a pool started on A
 *   replays on B and takes the new branch only from where B runs it.
 * B is made current; what A started finishes on A, what starts now runs on B, the pool moves to B,
 * A drains and stops, and no history holds a workflow task failure.
 */
const TQ = 'upgrade';
const TRAINER_TQ = 'upgrade-trainers';
const POOL = 'upg';
const MARKER = 'drydockUpgradeTest';
const POOL_PATCH = 'upgrade-test-build-b';

const B_EDITS: Record<string, (t: string) => string> = {
  'rollingUpdate.ts': (t) =>
    t
      .replace('upsertSearchAttributes, workflowInfo }', 'upsertMemo, upsertSearchAttributes, workflowInfo }')
      .replace('  // ---- plan ----', `  upsertMemo({ ${MARKER}: 'build-b' }); // build B: a new first command, not behind a patch\n  // ---- plan ----`),
  'fleetPool.ts': (t) =>
    t
      .replace('  let lastPhase: PoolPhase | undefined;', '  let lastPhase: PoolPhase | undefined;\n  let upgradeMarked = false;')
      .replace(
        '    grantPass(ctx);\n    publish();\n',
        `    grantPass(ctx);\n    publish();\n    if (!upgradeMarked && patched('${POOL_PATCH}')) {\n      upgradeMarked = true;\n      upsertMemo({ ${MARKER}: 'build-b' });\n      ctx.event('build B: patched branch');\n    }\n`,
      ),
};

/** The build ids of the workers that completed each of the run's workflow tasks, in order. */
async function taskBuildIds(handle: WorkflowHandle): Promise<string[]> {
  const ids: string[] = [];
  for (const e of (await handle.fetchHistory()).events ?? []) {
    const c = e.workflowTaskCompletedEventAttributes;
    if (c) ids.push(c.deploymentVersion?.buildId ?? c.workerDeploymentVersion?.split(/[:.]/).slice(1).join('.') ?? 'unversioned');
  }
  return ids;
}

/** Worker identities that started the run's activities. */
async function activityWorkers(handle: WorkflowHandle): Promise<Set<string>> {
  const out = new Set<string>();
  for (const e of (await handle.fetchHistory()).events ?? []) {
    const id = e.activityTaskStartedEventAttributes?.identity;
    if (id) out.add(id);
  }
  return out;
}

const buildOf = async (handle: WorkflowHandle) => (await handle.describe()).raw.workflowExecutionInfo?.versioningInfo?.deploymentVersion?.buildId ?? undefined;
const identityOf = (w: WorkerProcess) => `${w.child.pid}@${hostname()}`;

describe('an upgrade from build A to build B on a real dev server: pinned runs finish on A, new ones and the pool run on B', () => {
  const spec: FleetPoolSpec = {
    name: POOL,
    minNodes: 1,
    maxNodes: 4,
    health: { probeIntervalSeconds: 1, unhealthyAfter: 3, unreachableAfterSeconds: 30, drainTimeoutSeconds: 10 },
    disruption: { maxUnavailable: 1, minHealthy: 1 },
  };
  const h = rolloutHarness({ taskQueue: TQ, spec, nodes: 2, extraSearchAttributes: [DRYDOCK_TRAIN_LOSS] });
  const quick = { analysis: { intervalSeconds: 0, maxLatencyMs: 120_000 }, drainTimeoutSeconds: 10 };

  it('A: pool, paused rollout, paused training job; B current; rollout and job finish on A, a new rollout and the pool run on B; A drains', async () => {
    const bundleB = bundleEditedCopy(B_EDITS); // bundling takes a while: beside A's work
    const { client } = h.env;
    const A: WorkerDeploymentVersion = h.worker.version;
    const B: WorkerDeploymentVersion = { deploymentName: A.deploymentName, buildId: 'upgrade-test-b' };
    const trainer = (v: WorkerDeploymentVersion, identity: string) =>
      Worker.create({ connection: h.env.nativeConnection, taskQueue: TRAINER_TQ, identity, activities: createTrainingActivities({ identity }), maxConcurrentActivityTaskExecutions: 1, workerDeploymentOptions: deploymentOptions(v) });
    const trainerA = await trainer(A, 'trainer-a');
    const trainerARun = trainerA.run();
    let trainerB: Worker | undefined;
    let trainerBRun: Promise<void> | undefined;
    let workerB: WorkerProcess | undefined;
    try {
      // ---- 1. build A runs: the pool (harness), a rollout at a pause step, a training job held paused
      assert.equal(await buildOf(h.pool), A.buildId);
      const job = await client.workflow.signalWithStart('trainingJob', {
        taskQueue: TQ,
        workflowId: 'train/upgrade',
        args: [{ name: 'upgrade', workers: 1, rounds: 2, innerSteps: 5, evalEvery: 2, checkpoint: { uri: `file://${join(h.fleet.dir, 'ckpt')}`, keepLast: 1 }, trainerQueue: TRAINER_TQ }],
        signal: pauseSignal,
      });
      const { b, c } = h.models;
      const before = await h.start('before', { target: { model: { uri: b.path, sha256: b.sha256 } }, steps: [{ batch: 1 }, { pause: {} }], maxUnavailable: 1, ...quick });
      await waitRollout(before, (s) => s.phase === 'paused' && s.step === 1, 'the rollout to hold at its pause step');
      await waitFor(async () => (await job.query<TrainingProgress>('progress')).phase === 'paused', 60_000, 'the job to be prepared and held paused');
      assert.equal(await buildOf(before), A.buildId);
      assert.equal(await buildOf(job), A.buildId);

      // ---- 2. build B starts beside A (control worker with B's bundle and build id, and a trainer)
      workerB = await spawnWorker(h.fleet, h.env.address, TQ, { workflowBundle: await bundleB, env: { DRYDOCK_BUILD_ID: B.buildId }, makeCurrent: false });
      assert.deepEqual(workerB.version, B);
      trainerB = await trainer(B, 'trainer-b');
      trainerBRun = trainerB.run();
      await waitFor(async () => (await deploymentReport(client, A.deploymentName))?.versions.some((v) => v.buildId === B.buildId) ?? false, 30_000, 'B to be known to the server');
      const beforeSwitch = (await deploymentReport(client, A.deploymentName))!;
      assert.equal(beforeSwitch.current, A.buildId, 'B gets no traffic until it is made current');

      // ---- 3. B current
      await setCurrentVersion(client, B);

      // The pool auto-upgrades at its next task (it probes every second) and takes B's patched branch.
      await waitFor(async () => (await buildOf(h.pool)) === B.buildId, 30_000, 'the pool to move to B');
      await waitStatus(h.pool, (s) => s.events.some((e) => e.message === 'build B: patched branch'), 'the pool to take the patched branch on B', 30_000);
      assert.equal((await h.pool.describe()).memo?.[MARKER], 'build-b');

      // The paused rollout, promoted now, finishes on A; so does the job, resumed now (on A's trainer).
      await before.executeUpdate(promoteRolloutUpdate, { args: [{}] });
      await job.signal(resumeSignal);
      const [beforeResult, jobResult] = await Promise.all([before.result() as Promise<RolloutResult>, job.result() as Promise<TrainingJobResult>]);
      assert.equal(beforeResult.outcome, 'succeeded');
      assert.equal(beforeResult.status.counts.done, 2);
      assert.equal(jobResult.rounds, 2);
      assert.deepEqual(new Set(await taskBuildIds(before)), new Set([A.buildId]), 'every task of the rollout A started ran on A');
      assert.deepEqual(new Set(await taskBuildIds(job)), new Set([A.buildId]), 'every task of the job A started ran on A');
      assert.equal((await before.describe()).memo?.[MARKER], undefined, "B's rollout change never ran in A's rollout");
      assert.deepEqual(await activityWorkers(before), new Set([identityOf(h.worker)]), "the rollout's activities ran on A's control worker");
      assert.deepEqual(await activityWorkers(job), new Set(['trainer-a']), "the job's activities ran on A's trainer");

      // B's rollout change is what pinning protected A's rollout from: its history does not replay on B.
      const beforeHistory = await before.fetchHistory();
      await Worker.runReplayHistory({ workflowBundle: { codePath: await workflowBundle() } }, beforeHistory, before.workflowId);
      await assert.rejects(
        Worker.runReplayHistory({ workflowBundle: { codePath: await bundleB } }, beforeHistory, before.workflowId),
        (err: unknown) => (err as Error).name === 'DeterminismViolationError' || /nondetermin/i.test((err as Error).message),
      );

      // A new rollout runs on B, with B's change.
      const after = await h.start('after', { target: { model: { uri: c.path, sha256: c.sha256 } }, maxUnavailable: 1, ...quick });
      const afterResult = (await after.result()) as RolloutResult;
      assert.equal(afterResult.outcome, 'succeeded');
      assert.deepEqual(new Set(await taskBuildIds(after)), new Set([B.buildId]), 'every task of the new rollout ran on B');
      assert.equal((await after.describe()).memo?.[MARKER], 'build-b');
      assert.deepEqual(await activityWorkers(after), new Set([identityOf(workerB)]), "the new rollout's activities ran on B's control worker");
      assert.deepEqual(Object.values(await h.served()), [c.sha256, c.sha256]);

      // The pool's tasks: A's, then B's only.
      const poolBuilds = await taskBuildIds(h.pool);
      const firstB = poolBuilds.indexOf(B.buildId);
      assert.ok(firstB > 0 && poolBuilds.slice(0, firstB).every((id) => id === A.buildId) && poolBuilds.slice(firstB).every((id) => id === B.buildId), poolBuilds.join(' '));

      // ---- A drains (the CLI says so), and stops; the pool carries on on B.
      await waitFor(async () => (await deploymentReport(client, A.deploymentName))?.versions.find((v) => v.buildId === A.buildId)?.drainage === 'drained', 60_000, 'A to drain');
      const cli = await runCli<DeploymentReport>(['--json', '--address', h.env.address, 'workers', 'status'], {}, 60_000);
      assert.equal(cli.code, 0, cli.stderr);
      const report = cli.json();
      assert.equal(report.current, B.buildId);
      const a = report.versions.find((v) => v.buildId === A.buildId)!;
      assert.equal(a.drainage, 'drained');
      assert.deepEqual(a.openPinned, []);
      await h.worker.kill('SIGTERM');
      trainerA.shutdown();
      await trainerARun;
      const probedAt = (await poolStatus(h.pool)).lastProbe!.at;
      await waitStatus(h.pool, (s) => s.lastProbe!.at > probedAt && s.counts.healthy === 2, 'the pool to probe again with A stopped', 30_000);

      // ---- 4. No workflow task failed anywhere, in any run.
      let histories = 0;
      for await (const wf of client.workflow.list()) {
        const events = (await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory()).events ?? [];
        histories++;
        const failed = events.filter((e) => e.workflowTaskFailedEventAttributes);
        assert.equal(failed.length, 0, `${wf.workflowId} (${wf.runId}): ${failed.map((e) => e.workflowTaskFailedEventAttributes?.failure?.message).join('; ')}`);
      }
      assert.ok(histories >= 4, `${histories} histories checked`);
    } finally {
      await workerB?.kill('SIGTERM');
      if (trainerB) {
        trainerB.shutdown();
        await trainerBRun;
      }
      if (trainerA.getState() === 'RUNNING') trainerA.shutdown();
      await trainerARun.catch(() => {});
    }
  });
});

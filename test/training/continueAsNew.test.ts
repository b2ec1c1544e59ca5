import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createTrainingActivities } from '../../activities/training/activities.ts';
import { listCheckpointRounds } from '../../activities/training/checkpoint.ts';
import { openStore } from '../../activities/training/store.ts';
import { DRYDOCK_TRAIN_LOSS, type TrainingJobResult, type TrainingProgress } from '../../workflows/trainingJob.ts';
import { workflowBundle } from '../../scripts/lib/bundle.ts';
import { startDevServer } from '../../scripts/lib/temporal.ts';
import { inProcessVersioning } from '../../scripts/lib/workers.ts';

describe('trainingJob continues as new when its history grows, carrying its state', () => {
  let env: TestWorkflowEnvironment;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'drydock-can-'));
    // The server suggests continue-as-new after 30 events here (production default: 4 Ki events).
    env = await startDevServer({ extraSearchAttributes: [DRYDOCK_TRAIN_LOSS], extraArgs: ['--dynamic-config-value', 'limit.historyCount.suggestContinueAsNew=30'] });
  });
  after(async () => {
    await env?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs 5 rounds over several runs and returns every round\'s metrics', async () => {
    const workflows = await Worker.create({ connection: env.nativeConnection, taskQueue: 'can', workflowBundle: { codePath: await workflowBundle() }, workerDeploymentOptions: inProcessVersioning().workerDeploymentOptions });
    const trainer = await Worker.create({ connection: env.nativeConnection, taskQueue: 'can-trainer', activities: createTrainingActivities(), maxConcurrentActivityTaskExecutions: 1, workerDeploymentOptions: inProcessVersioning().workerDeploymentOptions });
    await trainer.runUntil(
      workflows.runUntil(async () => {
        await inProcessVersioning().makeCurrent(env.client);
        const handle = await env.client.workflow.start('trainingJob', {
          taskQueue: 'can',
          workflowId: 'train/long',
          args: [{ name: 'long', workers: 2, rounds: 5, innerSteps: 5, evalEvery: 5, checkpoint: { uri: `file://${dir}`, keepLast: 1 }, trainerQueue: 'can-trainer' }],
        });
        const result: TrainingJobResult = await handle.result();
        assert.deepEqual(result.metrics.map((m) => m.round), [1, 2, 3, 4, 5]);
        assert.equal(result.startRound, 0);
        assert.ok(result.accuracy !== undefined);
        const desc = await env.client.workflow.getHandle('train/long').describe();
        assert.notEqual(desc.runId, handle.firstExecutionRunId, 'the job continued as new at least once');
        const progress = await env.client.workflow.getHandle('train/long').query<TrainingProgress>('progress');
        assert.equal(progress.round, 5);
        // One job instance across runs: its checkpoints are reused, not mistaken for a stranger's.
        assert.deepEqual(await listCheckpointRounds(await openStore(`file://${dir}`), 'long'), [5]);
      }),
    );
  });
});

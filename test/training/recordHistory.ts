/**
 * Records test/fixtures/histories/trainingJob.json, the replay fixture test/replay/replay.test.ts
 * replays: a 3-round job with W=2 whose W is changed to 1 by the setWorkers update after round 1,
 * paused and resumed. Re-run after an intended change to the workflow's command sequence:
 *   node --import tsx test/training/recordHistory.ts
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { createTrainingActivities } from '../../activities/training/activities.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { DRYDOCK_TRAIN_LOSS, type TrainingProgress } from '../../workflows/trainingJob.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { workflowBundle } from '../../scripts/lib/bundle.ts';
import { startDevServer, temporalBin } from '../../scripts/lib/temporal.ts';

const env = await startDevServer({ extraSearchAttributes: [DRYDOCK_TRAIN_LOSS] });
const dir = mkdtempSync(join(tmpdir(), 'drydock-record-'));
try {
  const workflows = await Worker.create({ connection: env.nativeConnection, taskQueue: 'record', workflowBundle: { codePath: await workflowBundle() } });
  const trainer = await Worker.create({ connection: env.nativeConnection, taskQueue: 'record-trainer', activities: createTrainingActivities({ identity: 'recorder' }), maxConcurrentActivityTaskExecutions: 1 });
  await trainer.runUntil(
    workflows.runUntil(async () => {
      const handle = await env.client.workflow.start('trainingJob', {
        taskQueue: 'record',
        workflowId: 'train/replay',
        args: [{ name: 'replay', workers: 2, rounds: 3, innerSteps: 5, evalEvery: 3, checkpoint: { uri: `file://${dir}` }, trainerQueue: 'record-trainer' }],
      });
      const progress = () => handle.query<TrainingProgress>('progress');
      await waitFor(async () => (await progress()).round >= 1, 60_000, 'round 1');
      await handle.signal('pause');
      await handle.executeUpdate('setWorkers', { args: [1] });
      await waitFor(async () => (await progress()).phase === 'paused', 60_000, 'pause');
      await handle.signal('resume');
      await handle.result();
      const json = execFileSync(temporalBin(), ['workflow', 'show', '--workflow-id', handle.workflowId, '--address', env.address, '--output', 'json'], { encoding: 'utf8' });
      const file = join(REPO_ROOT, 'test/fixtures/histories/trainingJob.json');
      writeFileSync(file, JSON.stringify({ workflowId: handle.workflowId, history: JSON.parse(json) }, null, 1) + '\n');
      console.log(`wrote ${file}`);
    }),
  );
} finally {
  await env.teardown();
  rmSync(dir, { recursive: true, force: true });
}

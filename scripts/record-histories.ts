/**
 * Records real workflow histories into the append-only replay corpus
 * (test/fixtures/histories/<type>/<commit>-<scenario>.json and its manifest; scripts/lib/histories.ts).
 * Run it on committed workflow code: `npm run record-histories` (or `-- fleetPool`, `-- rollingUpdate`,
 * `-- trainingJob`, `-- replaceNode`). It only adds files: a scenario already recorded at this commit is kept.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../activities/index.ts';
import { createTrainingActivities } from '../activities/training/activities.ts';
import { DRYDOCK_TRAIN_LOSS, type TrainingProgress } from '../workflows/trainingJob.ts';
import { recordingCommit, saveHistory } from './lib/histories.ts';
import { PoolRegistry } from '../activities/pools.ts';
import { startFleet } from './lib/fleet.ts';
import { waitFor } from './lib/waitFor.ts';
import { workflowBundle } from './lib/bundle.ts';
import { writeTinyLlama } from './lib/tinyLlama.ts';
import { startReplace } from './lib/replace.ts';
import { startDevServer } from './lib/temporal.ts';
import { inProcessVersioning } from './lib/workers.ts';

/** `npm run record-histories -- fleetPool` (or rollingUpdate, trainingJob, replaceNode) records only that type. */
const only = process.argv[2];
const commit = recordingCommit();

/**
 * A pool with health events on (the watch, quarantine, the ladder): it adopts its nodes and holds
 * an outside lease (a rollout's) when one node turns fatal (XID 48: replaced at once); the node is
 * quarantined, counts toward the budget, and is replaced once the lease is released; then stopped.
 */
async function recordFleetPool(env: Awaited<ReturnType<typeof startDevServer>>, fleet: Awaited<ReturnType<typeof startFleet>>): Promise<void> {
  const spec = { name: 'demo', minNodes: 1, maxNodes: 4, health: { probeIntervalSeconds: 1, drainTimeoutSeconds: 10 }, disruption: { maxUnavailable: 1, minHealthy: 0 } };
  const handle = await env.client.workflow.start('fleetPool', { taskQueue: 'record', workflowId: 'pool/demo', args: [spec] });
  type Status = { phase: string; quarantined?: number; replacements: { started: number; succeeded: number }; leases: unknown[]; nodes: { id: string }[] };
  const status = () => handle.query<Status>('status');
  await waitFor(async () => (await status()).phase === 'running', 60_000, 'the pool to run');
  await handle.executeUpdate('acquireLease', { args: [{ holder: 'rollout/recorded', ttlSeconds: 600 }] });
  const sick = (await status()).nodes[0].id;
  const url = (await fleet.provider.describe(sick))!.agentUrl!;
  await fetch(`${url}/sim/faults`, { method: 'POST', headers: { authorization: `Bearer ${fleet.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'xid', gpu: 0, code: 48 }) });
  await waitFor(async () => ((await status()).quarantined ?? 0) === 1, 60_000, 'the sick node to be quarantined');
  const held = await status();
  if (held.replacements.started !== 0) throw new Error('the replacement started while the lease and the quarantined node filled the budget');
  await handle.executeUpdate('releaseLease', { args: [{ holder: 'rollout/recorded' }] });
  await waitFor(async () => ((s) => s.replacements.succeeded === 1 && s.leases.length === 0)(await status()), 120_000, 'the replacement');
  await handle.terminate('recorded for replay');
  saveHistory(env.address, 'fleetPool', 'quarantine-lease-replace', 'health events: an outside lease held, one node fatal (XID 48) is quarantined and counts toward the budget, replaced once the lease is released, then terminated', handle.workflowId, commit);
}

async function recordRollouts(env: Awaited<ReturnType<typeof startDevServer>>, fleet: Awaited<ReturnType<typeof startFleet>>): Promise<void> {
  const models = [1, 2, 3].map((seed) => writeTinyLlama(join(fleet.dir, 'models', `tiny-${seed}.gguf`), { seed, name: `tiny-${seed}` }));
  for (const n of await fleet.provider.list('demo')) {
    const res = await fetch(`${n.agentUrl}/model`, { method: 'PUT', headers: { authorization: `Bearer ${fleet.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ uri: models[0].path, sha256: models[0].sha256 }) });
    if (!res.ok) throw new Error(`loading the first model on ${n.id}: ${await res.text()}`);
  }
  const analysis = { intervalSeconds: 1, everySeconds: 1, maxLatencyMs: 120_000 };
  const rolling = await env.client.workflow.start('rollingUpdate', {
    taskQueue: 'record',
    workflowId: 'rollout/demo/record-rolling',
    args: [{ pool: 'demo', target: { model: { uri: models[1].path, sha256: models[1].sha256 } }, steps: [{ batch: 1 }, { pause: { seconds: 1 } }], analysis, drainTimeoutSeconds: 10 }],
  });
  await rolling.result();
  saveHistory(env.address, 'rollingUpdate', 'rolling-pause-analysis', 'rolling rollout: batch of 1, a timed pause step, analysis', rolling.workflowId, commit);
  const blueGreen = await env.client.workflow.start('rollingUpdate', {
    taskQueue: 'record',
    workflowId: 'rollout/demo/record-bluegreen',
    args: [{ pool: 'demo', target: { model: { uri: models[2].path, sha256: models[2].sha256 } }, strategy: 'blueGreen', scaleDownDelaySeconds: 1, analysis, drainTimeoutSeconds: 10 }],
  });
  await blueGreen.result();
  saveHistory(env.address, 'rollingUpdate', 'blueGreen', 'blue-green rollout with analysis and scale-down delay', blueGreen.workflowId, commit);
}

/** A 3-round job with W=2 whose W is changed to 1 by the setWorkers update after round 1, paused and resumed. */
async function recordTraining(env: Awaited<ReturnType<typeof startDevServer>>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'drydock-record-'));
  try {
    const trainer = await Worker.create({ connection: env.nativeConnection, taskQueue: 'record-trainer', activities: createTrainingActivities({ identity: 'recorder' }), maxConcurrentActivityTaskExecutions: 1, workerDeploymentOptions: inProcessVersioning().workerDeploymentOptions });
    await trainer.runUntil(async () => {
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
      saveHistory(env.address, 'trainingJob', 'pause-setWorkers', '3 rounds with W=2, setWorkers(1) after round 1, paused and resumed', handle.workflowId, commit);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const [env, fleet] = await Promise.all([startDevServer({ extraSearchAttributes: [DRYDOCK_TRAIN_LOSS] }), startFleet({ pool: 'demo', nodes: 2, simJobs: 1, simJobSeconds: 1 })]);
  try {
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: 'record',
      workflowBundle: { codePath: await workflowBundle() },
      activities: createActivities({ pools: PoolRegistry.fromFile(fleet.poolsFile, fleet.auth) }),
      workerDeploymentOptions: inProcessVersioning().workerDeploymentOptions,
    });
    await worker.runUntil(async () => {
      await inProcessVersioning().makeCurrent(env.client);
      if (only === 'fleetPool') return recordFleetPool(env, fleet);
      if (only === 'rollingUpdate') return recordRollouts(env, fleet);
      if (only === 'trainingJob') return recordTraining(env);
      const handle = await startReplace(env.client, 'record', { pool: 'demo', nodeId: fleet.nodeIds[0], reason: 'recorded for replay', drainTimeoutSeconds: 30 });
      await handle.result();
      saveHistory(env.address, 'replaceNode', 'drain-replace', 'cordon, drain, terminate, replace a healthy node', handle.workflowId, commit);
      if (!only) await recordFleetPool(env, fleet);
      if (!only) await recordRollouts(env, fleet);
      if (!only) await recordTraining(env);
    });
  } finally {
    await fleet.cleanup();
    await env.teardown();
  }
}

await main();

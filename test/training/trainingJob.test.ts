import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { loadBackend } from '../../activities/training/backend.ts';
import { listCheckpointRounds, loadCheckpoint, roundDir } from '../../activities/training/checkpoint.ts';
import { openStore } from '../../activities/training/store.ts';
import type { TrainingJobInput } from '../../workflows/inputs/trainingJob.ts';
import { DRYDOCK_TRAIN_LOSS, type TrainingJobResult, type TrainingProgress } from '../../workflows/trainingJob.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { workflowBundle } from '../../scripts/lib/bundle.ts';
import { startMoto, type Moto } from '../helpers/moto.ts';
import { startDevServer } from '../../scripts/lib/temporal.ts';
import { activityRuns, pendingActivities } from './helpers.ts';
import { inProcessVersioning, spawnTrainer, type TrainerProcess } from '../../scripts/lib/workers.ts';

const TQ = 'train-e2e';
const TRAINER_TQ = 'train-e2e-trainers';
/** Native-backend trainers only (the cnn job: on a wasm host a cnn shard falls back to the slow cpu backend). */
const NATIVE_TQ = 'train-e2e-native';

describe('trainingJob end to end: real dev server, 2 trainer processes (native TensorFlow and wasm where native loads), real tfjs on real digits', () => {
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  let trainers: TrainerProcess[] = [];
  let nativeTrainer: TrainerProcess | undefined;
  let dir: string;
  let moto: Moto;
  let s3env: Record<string, string>;
  const uri = () => `file://${dir}`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'drydock-train-'));
    [env, moto] = await Promise.all([startDevServer({ extraSearchAttributes: [DRYDOCK_TRAIN_LOSS] }), startMoto()]);
    s3env = { AWS_ENDPOINT_URL_S3: moto.endpoint, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1' };
    Object.assign(process.env, s3env); // for this process's own look into the store
    worker = await Worker.create({ connection: env.nativeConnection, taskQueue: TQ, workflowBundle: { codePath: await workflowBundle() }, workerDeploymentOptions: inProcessVersioning().workerDeploymentOptions });
    running = worker.run();
    await inProcessVersioning().makeCurrent(env.client);
    // One trainer on the best backend (native TensorFlow once scripts/install-tfjs-native.sh ran), one
    // forced to wasm: they share every job below, passing plain float32 weights and Adam state.
    trainers = await Promise.all([spawnTrainer(env.address, TRAINER_TQ, s3env), spawnTrainer(env.address, TRAINER_TQ, { ...s3env, DRYDOCK_TF_BACKEND: 'wasm' })]);
  });
  after(async () => {
    for (const t of [...trainers, ...(nativeTrainer ? [nativeTrainer] : [])]) await t.kill();
    await moto?.stop();
    worker?.shutdown();
    await running;
    await env?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const start = (input: Partial<TrainingJobInput> & { name: string }, workflowId = `train/${input.name}`): Promise<WorkflowHandle> =>
    env.client.workflow.start('trainingJob', {
      taskQueue: TQ,
      workflowId,
      args: [{ checkpoint: { uri: uri() }, trainerQueue: TRAINER_TQ, ...input }],
    });
  const progressOf = (h: WorkflowHandle) => h.query<TrainingProgress>('progress');
  const failureOf = async (h: WorkflowHandle): Promise<WorkflowFailedError> => {
    const err = await h.result().then(
      () => assert.fail('expected the job to fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${err}`);
    return err;
  };

  it('trains a small MLP on 2 trainers (native and wasm) to at least 85% held-out accuracy, with metrics, a search attribute and checkpoints', async () => {
    const h = await start({ name: 'small', workers: 2, rounds: 4, innerSteps: 25, batchSize: 32, evalEvery: 2, checkpoint: { uri: uri(), keepLast: 2 } });
    const result: TrainingJobResult = await h.result();
    assert.equal(result.rounds, 4);
    assert.ok(result.accuracy! >= 0.85, `held-out accuracy ${result.accuracy}`);
    const loadedBackend = await loadBackend();
    assert.deepEqual([...result.backends].sort(), [...new Set([loadedBackend.best, 'wasm'])].sort(), 'both trainers\' backends ran shards of the one job, and are reported');
    assert.deepEqual(result.metrics.map((m) => m.round), [1, 2, 3, 4]);
    assert.deepEqual(result.metrics.map((m) => m.accuracy !== undefined), [false, true, false, true], 'evaluated every 2 rounds');
    assert.ok(result.metrics[3].loss < result.metrics[0].loss, 'training loss went down');
    for (const m of result.metrics) {
      assert.equal(m.samples, 2 * 25 * 32);
      assert.ok(m.samplesPerSecond > 0 && m.deltaNorm > 0 && m.roundSeconds > 0);
      assert.equal(m.lr, 0.001);
      assert.ok(m.gradNorm! > 0 && m.stepSeconds! > 0 && m.hostMemoryBytes! > 50e6 && m.tensorBytes! > 0, JSON.stringify(m));
    }
    // Each shard continues from its Adam state of the round before, whichever trainer (backend) saved it.
    assert.deepEqual(result.metrics.map((m) => m.innerStatesRestored), [0, 2, 2, 2]);
    const progress = await progressOf(h);
    assert.equal(progress.phase, 'done');
    assert.equal(progress.round, 4);
    const desc = await h.describe();
    assert.equal(desc.typedSearchAttributes.get(DRYDOCK_TRAIN_LOSS), result.metrics[3].loss);
    assert.deepEqual(desc.searchAttributes.DrydockPhase, ['done']);

    // Retention: latest plus the 2 newest periodic rounds; no delta left behind.
    const store = await openStore(uri());
    assert.deepEqual(await listCheckpointRounds(store, 'small'), [3, 4]);
    assert.deepEqual(await store.list('small/deltas/'), []);
    const { model, meta } = await loadCheckpoint((await loadBackend()).tf, store, roundDir('small', 4));
    assert.equal(meta.round, 4);
    assert.equal(result.finalCheckpoint, `${uri()}/${roundDir('small', 4)}`);
    model.dispose();

    // Both trainer processes did work, and their Prometheus endpoints say so.
    const runs = await activityRuns(h);
    const shardWorkers = new Set(runs.filter((r) => r.type === 'trainShard').map((r) => r.worker));
    assert.equal(shardWorkers.size, 2, `shards ran on both trainers: ${[...shardWorkers]}`);
    const port = /metrics http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(trainers[0].output())![1];
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(text, /drydock_train_steps_total\{job="small"\} \d+/);
    assert.match(text, new RegExp(`drydock_trainer_backend\\{backend="${loadedBackend.best}"\\} 1`));
    assert.match(text, /drydock_train_learning_rate\{job="small"\} 0\.001/);
    assert.match(text, /drydock_train_gradient_norm\{job="small"\} \d/);
    const steps = Number(/drydock_train_steps_total\{job="small"\} (\d+)/.exec(text)![1]);
    assert.equal(Number(/drydock_train_batch_seconds_count\{job="small"\} (\d+)/.exec(text)![1]), steps, 'one batch-time observation per inner step');
    assert.match(text, /drydock_train_batch_seconds_bucket\{le="0\.01",job="small"\} \d+/);
    assert.ok(Number(/drydock_trainer_host_memory_bytes (\d+)/.exec(text)![1]) > 50e6);
    assert.match(text, /drydock_trainer_tensor_bytes \d+/);
    if (loadedBackend.tensorflowVersion) {
      assert.match(text, new RegExp(`drydock_trainer_tensorflow_info\\{version="${loadedBackend.tensorflowVersion.replace(/\./g, '\\.')}"\\} 1`));
      assert.match(trainers[0].output(), /backend tensorflow(-gpu)? \(TensorFlow 2\.15\.1; devices CPU:0/, 'the start line names TensorFlow\'s version and devices');
    }
  });

  it('trains the cnn on native TensorFlow to at least 95% held-out accuracy', async (t) => {
    const lb = await loadBackend();
    if (!lb.best.startsWith('tensorflow')) {
      t.skip(`native TensorFlow does not load on this host (${lb.skipped.join('; ')}); scripts/install-tfjs-native.sh builds it`);
      return;
    }
    nativeTrainer = await spawnTrainer(env.address, NATIVE_TQ, s3env);
    const h = await start({ name: 'cnn', model: 'cnn', workers: 2, rounds: 7, innerSteps: 100, batchSize: 64, inner: { lr: 0.003 }, evalEvery: 7, trainerQueue: NATIVE_TQ });
    const result: TrainingJobResult = await h.result();
    assert.deepEqual(result.backends, [lb.best], 'convolutions trained on the native backend, not the cpu fallback');
    assert.ok(result.accuracy! >= 0.95, `held-out accuracy ${result.accuracy}`);
    assert.deepEqual(result.metrics.map((m) => m.innerStatesRestored), [0, 2, 2, 2, 2, 2, 2]);
    t.diagnostic(`cnn on ${lb.best}: held-out accuracy ${(result.accuracy! * 100).toFixed(1)}%, ${result.metrics.reduce((a, m) => a + m.roundSeconds, 0).toFixed(1)} s of rounds`);
  });

  it('keeps checkpoints in s3:// (moto) through the real AWS SDK', async () => {
    const s3 = new S3Client({ region: 'us-east-1', endpoint: moto.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    await s3.send(new CreateBucketCommand({ Bucket: 'train-ckpt' }));
    const h = await start({ name: 'on-s3', workers: 2, rounds: 2, innerSteps: 10, checkpoint: { uri: 's3://train-ckpt/jobs', keepLast: 1 } });
    const result: TrainingJobResult = await h.result();
    assert.equal(result.finalCheckpoint, 's3://train-ckpt/jobs/on-s3/round-000002/');
    const store = await openStore('s3://train-ckpt/jobs');
    assert.deepEqual(await listCheckpointRounds(store, 'on-s3'), [2]);
    assert.deepEqual(await store.list('on-s3/deltas/'), []);
    const { meta, model } = await loadCheckpoint((await loadBackend()).tf, store, roundDir('on-s3', 2));
    assert.equal(meta.round, 2);
    model.dispose();
  });

  it('survives a SIGKILLed trainer mid-round: the shard moves to the other trainer and only that shard is redone', async () => {
    const h = await start({ name: 'crash', workers: 2, rounds: 3, innerSteps: 250, batchSize: 32, evalEvery: 3, heartbeatTimeoutSeconds: 3 });
    const [victim, survivor] = trainers;
    // A round is in flight and the victim has heartbeated progress on its shard (usually round 1 or 2).
    await waitFor(
      async () => {
        if ((await progressOf(h)).phase !== 'training') return false;
        return (await pendingActivities(h)).some((a) => a.type === 'trainShard' && a.worker === victim.identity && (a.heartbeat?.step ?? 0) > 0);
      },
      120_000,
      'the victim trainer to be mid-way through a shard',
    );
    await victim.kill('SIGKILL');
    const result: TrainingJobResult = await h.result();
    assert.equal(result.rounds, 3);

    const runs = await activityRuns(h);
    const shards = runs.filter((r) => r.type === 'trainShard');
    assert.deepEqual(shards.map((s) => `${s.round}/${s.shard}`).sort(), ['1/0', '1/1', '2/0', '2/1', '3/0', '3/1'], 'each shard completed exactly once');
    const retried = shards.filter((s) => s.attempt > 1);
    assert.equal(retried.length, 1, `exactly one shard was redone: ${JSON.stringify(retried)}`);
    const killedRound = retried[0].round!;
    assert.equal(retried[0].worker, survivor.identity, 'the other trainer redid it');
    assert.ok(runs.filter((r) => r.type !== 'trainShard').every((r) => r.attempt === 1), 'prepare and aggregation never re-ran');
    assert.ok(shards.filter((s) => s.round! >= killedRound).every((s) => s.worker === survivor.identity), 'from the killed round on, only the survivor worked');
    assert.deepEqual(await (await openStore(uri())).list('crash/deltas/'), [], 'no orphan deltas');
  });

  it('stops with TrainingDiverged when a poisoned learning rate makes the loss NaN, keeping the last good checkpoint', async () => {
    const h = await start({ name: 'poisoned', workers: 2, rounds: 3, innerSteps: 5, inner: { lr: 1e20 } });
    const err = await failureOf(h);
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, 'TrainingDiverged');
    assert.equal(err.cause.nonRetryable, true);
    assert.match(err.cause.message, /^round 1: training loss became NaN or Inf on shard \d\/2 at inner step \d+ \(inner\.lr (1e\+20|100000000000000000000)\)/);
    assert.match(err.cause.message, /resumeFrom: 0/);
    assert.equal((await progressOf(h)).phase, 'failed');
    const store = await openStore(uri());
    assert.deepEqual(await listCheckpointRounds(store, 'poisoned'), [0]);
    (await loadCheckpoint((await loadBackend()).tf, store, roundDir('poisoned', 0))).model.dispose();
  });

  it('pauses between rounds, changes W elastically, resumes, and cancels leaving the last checkpoint intact; a new job resumes from it', async () => {
    const h = await start({ name: 'elastic', workers: 1, rounds: 1000, innerSteps: 10, evalEvery: 1000 });
    await waitFor(async () => (await progressOf(h)).round >= 1, 60_000, 'round 1');
    await h.signal('pause');
    await waitFor(async () => (await progressOf(h)).phase === 'paused', 60_000, 'the job to pause');
    const pausedAt = (await progressOf(h)).round;
    // While it is paused, a second job of the same round size runs 5 rounds on the same trainers: had
    // the pause not held, this job would have run rounds in that window too, however slow the machine.
    const witness = await start({ name: 'pause-witness', workers: 1, rounds: 5, innerSteps: 25, evalEvery: 5 });
    assert.equal(((await witness.result()) as TrainingJobResult).rounds, 5);
    const held = await progressOf(h);
    assert.equal(held.round, pausedAt, 'no round ran while paused');
    assert.equal(held.phase, 'paused');
    assert.deepEqual(await pendingActivities(h), [], 'and no shard is in flight');

    await assert.rejects(h.executeUpdate('setWorkers', { args: [0] }), (e: unknown) => {
      assert.ok(e instanceof WorkflowUpdateFailedError);
      assert.match(String((e.cause as Error).message), /^workers: expected an integer between 1 and 64, got 0/);
      return true;
    });
    assert.equal(await h.executeUpdate('setWorkers', { args: [2] }), 2);
    await h.signal('resume');
    await waitFor(async () => (await progressOf(h)).round >= pausedAt + 1, 60_000, 'a round after resume');
    const p = await progressOf(h);
    assert.equal(p.metrics.find((m) => m.round === pausedAt)!.workers, 1);
    assert.equal(p.metrics.find((m) => m.round === pausedAt + 1)!.workers, 2, 'W changed from the next round on');
    assert.equal(p.metrics.find((m) => m.round === pausedAt + 1)!.samples, 2 * 10 * 32);

    await h.cancel();
    const err = await failureOf(h);
    assert.ok(err.cause instanceof CancelledFailure);
    const after = await progressOf(h);
    assert.equal(after.phase, 'cancelled');
    const store = await openStore(uri());
    const kept = await listCheckpointRounds(store, 'elastic');
    const last = kept[kept.length - 1];
    assert.equal(last, after.round, 'the newest checkpoint in the store is the last round the job reported');
    assert.equal(after.lastCheckpoint, `${uri()}/${roundDir('elastic', last)}`);
    (await loadCheckpoint((await loadBackend()).tf, store, roundDir('elastic', last))).model.dispose();

    const resumed = await start({ name: 'resumed', workers: 1, rounds: last + 1, innerSteps: 10, resumeFrom: `${uri()}/${roundDir('elastic', last)}` });
    const r: TrainingJobResult = await resumed.result();
    assert.equal(r.startRound, last);
    assert.deepEqual(r.metrics.map((m) => m.round), [last + 1]);
    assert.ok(r.accuracy !== undefined && r.accuracy > 0.5, `a resumed model is already trained (accuracy ${r.accuracy})`);
  });

  const bad: Array<[string, Record<string, unknown>, RegExp, string?]> = [
    ['a missing checkpoint', { name: 'bad', checkpoint: undefined }, /^checkpoint: is required/],
    ['an unsupported checkpoint scheme', { name: 'bad', checkpoint: { uri: 'ftp://host/x' } }, /^checkpoint\.uri: unknown scheme 'ftp:\/\/' in 'ftp:\/\/host\/x': supported are file:\/\/ and s3:\/\//],
    ['zero workers', { name: 'bad', workers: 0 }, /^workers: must be between 1 and 64, got 0/],
    ['an unknown model', { name: 'bad', model: 'transformer' }, /^model: expected one of mlp, cnn, got "transformer"/],
    ['a negative inner learning rate', { name: 'bad', inner: { lr: -1 } }, /^inner\.lr: must be greater than 0, got -1/],
    ['outer momentum of 1.5', { name: 'bad', outer: { momentum: 1.5 } }, /^outer\.momentum: must be at most 0\.999, got 1\.5/],
    ['a misspelt field', { name: 'bad', innerstep: 5 }, /^innerstep: unknown field/],
    ['a resumeFrom that is no checkpoint', { name: 'bad', resumeFrom: 'somewhere' }, /^resumeFrom: expected a kept round/],
    ['a malformed name', { name: 'Bad Name' }, /^name: 'Bad Name' is not valid/],
    ['a workflow id off the convention', { name: 'ok' }, /^workflowId: must be 'train\/ok'/, 'training-ok'],
  ];
  bad.forEach(([what, input, message, workflowId], i) => {
    it(`rejects ${what}, naming the field, without running any activity`, async () => {
      const h = await start(input as unknown as TrainingJobInput, workflowId ?? `train/bad-${i}`);
      const err = await failureOf(h);
      assert.ok(err.cause instanceof ApplicationFailure);
      assert.equal(err.cause.type, 'InvalidArgument');
      assert.equal(err.cause.nonRetryable, true);
      assert.match(err.cause.message, message);
      assert.deepEqual(await activityRuns(h), []);
    });
  });
});

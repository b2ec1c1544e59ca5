import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createTrainingActivities } from '../../activities/training/activities.ts';
import { loadBackend, registerWasm, type LoadedBackend } from '../../activities/training/backend.ts';
import { floatsOf, loadCheckpoint, loadInnerState, readMeta, roundDir } from '../../activities/training/checkpoint.ts';
import { loadDataset } from '../../activities/training/data.ts';
import { exportAdamState, innerStateLength, restoreAdamState, trainableVariables } from '../../activities/training/innerState.ts';
import { buildModel, lossOf } from '../../activities/training/model.ts';
import { openStore } from '../../activities/training/store.ts';
import type { AggregateResult, TrainShardInput, TrainShardResult } from '../../activities/training/types.ts';

/** DiLoCo's per-shard inner optimizer state: saved with the round's checkpoint, restored next round, dropped by retention. */
describe('inner optimizer state across rounds, on real tfjs and real digits', () => {
  let lb: LoadedBackend;
  let dir: string;
  before(async () => {
    lb = await loadBackend();
    dir = mkdtempSync(join(tmpdir(), 'drydock-inner-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const acts = createTrainingActivities();
  const env = new MockActivityEnvironment();
  const ref = (job: string) => ({ job, instance: 'i', checkpointUri: `file://${dir}`, dataset: 'mnist' as const, model: 'mlp' as const, seed: 5 });
  const shardInput = (job: string, round: number, shard: number, of: number, keepInnerState = true): TrainShardInput => ({ ...ref(job), round, shard, of, innerSteps: 4, batchSize: 16, lr: 0.002, weightDecay: 0, keepInnerState });
  const runRound = async (job: string, round: number, of: number, keep = true, keepLast = 3) => {
    const shards: TrainShardResult[] = [];
    for (let s = 0; s < of; s++) shards.push(await env.run(acts.trainShard, shardInput(job, round, s, of, keep)));
    const agg: AggregateResult = await env.run(acts.aggregateRound, {
      ...ref(job), round, deltas: shards.map((s) => ({ key: s.deltaKey!, sha256: s.deltaSha256! })), outerLr: 0.7, outerMomentum: 0.9, evaluate: false, everyRounds: 1, keepLast,
    });
    return { shards, agg };
  };

  it('saves each shard\'s Adam state with the round\'s checkpoint and restores it the next round; a new W or keepState false starts fresh', async () => {
    const job = 'keep';
    await env.run(acts.prepareTrainingJob, ref(job));
    const store = await openStore(`file://${dir}`);
    const r1 = await runRound(job, 1, 2);
    assert.deepEqual(r1.shards.map((s) => s.innerState), ['fresh', 'fresh'], 'nothing to restore in round 1');
    const meta1 = (await readMeta(store, roundDir(job, 1)))!;
    assert.deepEqual(Object.keys(meta1.innerStates ?? {}).sort(), ['0-of-2', '1-of-2']);
    const { model } = await loadCheckpoint(lb.tf, store, roundDir(job, 1));
    const saved = (await loadInnerState(store, roundDir(job, 1), meta1, '1-of-2'))!;
    assert.equal(saved.length, innerStateLength(model));
    assert.equal(saved[0], 4, 'Adam\'s step count after 4 inner steps');
    assert.ok(saved.subarray(1).some((v) => v !== 0), 'the moments are not zero');
    model.dispose();

    const r2 = await runRound(job, 2, 2);
    assert.deepEqual(r2.shards.map((s) => s.innerState), ['restored', 'restored']);
    const after2 = (await loadInnerState(store, roundDir(job, 2), (await readMeta(store, roundDir(job, 2)))!, '1-of-2'))!;
    assert.equal(after2[0], 8, 'the step count went on from 4: the state was restored, not restarted');

    // W changes: shard 0 of 3 trains other data than shard 0 of 2, so it starts fresh.
    const r3 = await runRound(job, 3, 3);
    assert.deepEqual(r3.shards.map((s) => s.innerState), ['fresh', 'fresh', 'fresh']);
    // Turned off: Adam restarts, and neither the delta nor the checkpoint carries a state.
    const r4 = await runRound(job, 4, 3, false);
    assert.deepEqual(r4.shards.map((s) => s.innerState), ['reset', 'reset', 'reset']);
    assert.equal((await readMeta(store, roundDir(job, 4)))!.innerStates, undefined);
  });

  it('drops a shard\'s state with the checkpoint it belongs to (retention), and fails non-retryably on a corrupt one', async () => {
    const job = 'retained';
    await env.run(acts.prepareTrainingJob, ref(job));
    const store = await openStore(`file://${dir}`);
    await runRound(job, 1, 1, true, 1);
    assert.ok((await store.list(roundDir(job, 1))).some((k) => k.endsWith('inner-0-of-1.bin')));
    await runRound(job, 2, 1, true, 1);
    assert.deepEqual(await store.list(roundDir(job, 1)), [], 'round 1 and its inner state are gone');
    assert.ok((await store.list(roundDir(job, 2))).some((k) => k.endsWith('inner-0-of-1.bin')));

    const file = join(dir, job, 'round-000002', 'inner-0-of-1.bin');
    const bytes = readFileSync(file);
    bytes[40] ^= 0xff;
    writeFileSync(file, bytes);
    await assert.rejects(env.run(acts.trainShard, shardInput(job, 3, 0, 1)), (e: unknown) => {
      assert.ok(e instanceof ApplicationFailure);
      assert.equal(e.type, 'CheckpointCorrupt');
      assert.equal(e.nonRetryable, true);
      assert.match(e.message, /inner-0-of-1\.bin does not match its sha256/);
      return true;
    });
    // A job that does not keep inner state never reads it.
    const reset: TrainShardResult = await env.run(acts.trainShard, shardInput(job, 3, 0, 1, false));
    assert.equal(reset.innerState, 'reset');
    assert.equal(floatsOf(readFileSync(join(dir, reset.deltaKey!))).length, 784 * 128 + 128 + 128 * 10 + 10, 'the delta alone');
  });

  it('a state saved on one backend restores on another (plain float32), and Adam continues exactly as if never interrupted', async () => {
    const { tf } = lb;
    const ds = loadDataset('mnist');
    const x = tf.tensor2d(ds.train.x.subarray(0, 32 * 784), [32, 784]);
    const y = tf.tensor1d(ds.train.y.subarray(0, 32), 'int32');
    const step = (m: ReturnType<typeof buildModel>, opt: ReturnType<typeof tf.train.adam>) => tf.tidy(() => void opt.minimize(() => lossOf(tf, m, x, y, 10) as never, false, trainableVariables(m)));
    const native = tf.getBackend();
    // Uninterrupted: 3 steps with one optimizer.
    const a = buildModel(tf, 'mlp', ds, 2);
    const optA = tf.train.adam(0.01);
    for (let i = 0; i < 3; i++) step(a, optA);
    // Interrupted: 2 steps, state exported, then (on wasm where this host has it) a new model and optimizer take over.
    const b = buildModel(tf, 'mlp', ds, 2);
    const optB = tf.train.adam(0.01);
    step(b, optB);
    step(b, optB);
    const state = await exportAdamState(optB, b);
    const weights = b.getWeights().map((w) => ({ shape: w.shape, data: w.dataSync().slice() }));
    const other = (await registerWasm(tf)) === undefined && native !== 'wasm' ? 'wasm' : native;
    await tf.setBackend(other);
    try {
      const xs = [x, y].map((t) => tf.tensor(t.dataSync(), t.shape, t.dtype));
      const c = buildModel(tf, 'mlp', ds, 2);
      c.setWeights(weights.map((w) => tf.tensor(w.data, w.shape)));
      const optC = tf.train.adam(0.01);
      assert.equal(await restoreAdamState(tf, optC, c, state), true);
      tf.tidy(() => void optC.minimize(() => lossOf(tf, c, xs[0], xs[1], 10) as never, false, trainableVariables(c)));
      const got = c.getWeights().map((w) => w.dataSync());
      await tf.setBackend(native);
      const want = a.getWeights().map((w) => w.dataSync());
      let maxDiff = 0;
      want.forEach((w, i) => w.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(v - got[i][j])))));
      assert.ok(maxDiff < 1e-4, `step 3 after restoring on ${other} matches the uninterrupted step 3 on ${native} (max diff ${maxDiff})`);
      assert.equal(await restoreAdamState(tf, tf.train.adam(0.01), buildModel(tf, 'cnn', ds, 2), state), false, 'a state for another model is refused');
    } finally {
      await tf.setBackend(native);
    }
  });
});

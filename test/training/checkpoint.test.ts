import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createTrainingActivities } from '../../activities/training/activities.ts';
import { backendForModel, describeBackend, loadBackend, supportsModel, type LoadedBackend } from '../../activities/training/backend.ts';
import { ChecksumError, listCheckpointRounds, loadCheckpoint, roundDir, saveCheckpoint } from '../../activities/training/checkpoint.ts';
import { batchOrder, loadDataset, MNIST_TEST_SAMPLES, shardIndices } from '../../activities/training/data.ts';
import { buildModel, flatWeights } from '../../activities/training/model.ts';
import { outerStep } from '../../activities/training/outer.ts';
import { lossCurvePng, lossCurveSvg, lossCurveText } from '../../activities/training/lossCurve.ts';
import { openStore } from '../../activities/training/store.ts';
import type { AggregateResult, TrainShardResult } from '../../activities/training/types.ts';
import { startMoto, type Moto } from '../helpers/moto.ts';

describe('training building blocks on real tfjs and real digits', () => {
  let lb: LoadedBackend;
  let dir: string;
  let moto: Moto;
  before(async () => {
    lb = await loadBackend();
    dir = mkdtempSync(join(tmpdir(), 'drydock-ckpt-'));
    moto = await startMoto();
  });
  after(async () => {
    await moto?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('loads the best backend this host has and says why better ones did not load', () => {
    assert.ok(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'].includes(lb.best));
    // (DRYDOCK_TF_BACKEND=wasm|cpu forces a pure-JS backend without trying the native ones.)
    if (lb.best === 'wasm' && !process.env.DRYDOCK_TF_BACKEND) assert.ok(lb.skipped.some((s) => s.startsWith('@tensorflow/tfjs-node')), lb.skipped.join('; '));
    if (lb.best.startsWith('tensorflow')) {
      // The native backend reports the TensorFlow library under it and the devices that library sees.
      assert.match(lb.tensorflowVersion ?? '', /^2\.15\.\d+$/);
      assert.ok(lb.devices?.some((d) => d.type === 'CPU' && d.name.endsWith('/device:CPU:0')), JSON.stringify(lb.devices));
      assert.match(describeBackend(lb), /^tensorflow(-gpu)? \(TensorFlow 2\.15\.\d+; devices CPU:0(, GPU:\d+ \d+\.\d GiB)*\)$/);
    } else {
      assert.equal(describeBackend(lb), lb.best, 'a pure-JS backend has no TensorFlow library to report');
    }
  });

  it('runs cnn jobs on cpu when the best backend lacks convolution gradients, instead of failing mid-job', async () => {
    assert.equal(supportsModel(lb.tf, 'cpu', 'cnn'), true);
    assert.equal(backendForModel(lb, 'mlp'), lb.best);
    if (lb.best === 'wasm') {
      assert.equal(supportsModel(lb.tf, 'wasm', 'cnn'), false, 'wasm registers no Conv2DBackpropFilter');
      assert.equal(backendForModel(lb, 'cnn'), 'cpu');
    }
    // A real cnn shard: prepare, 3 steps, aggregate, all on the backend chosen for cnn.
    const acts = createTrainingActivities();
    const env = new MockActivityEnvironment();
    const ref = { job: 'cnn', instance: 'i', checkpointUri: `file://${dir}`, dataset: 'mnist' as const, model: 'cnn' as const, seed: 3 };
    await env.run(acts.prepareTrainingJob, ref);
    const shard: TrainShardResult = await env.run(acts.trainShard, { ...ref, round: 1, shard: 0, of: 1, innerSteps: 3, batchSize: 16, lr: 0.001, weightDecay: 0.01 });
    assert.equal(shard.finite, true);
    assert.equal(shard.backend, backendForModel(lb, 'cnn'));
    const agg: AggregateResult = await env.run(acts.aggregateRound, { ...ref, round: 1, deltas: [{ key: shard.deltaKey!, sha256: shard.deltaSha256! }], outerLr: 1, outerMomentum: 0, evaluate: false, everyRounds: 1, keepLast: 1 });
    assert.equal(agg.finite, true);
    assert.ok(Math.abs(agg.deltaNorm - shard.deltaNorm!) < 1e-4, 'one shard with lr 1, momentum 0: the global step is that shard\'s delta');
    // Resuming this cnn checkpoint as an mlp job is refused up front, not discovered mid-round.
    await assert.rejects(env.run(acts.prepareTrainingJob, { ...ref, job: 'as-mlp', model: 'mlp' as const, resumeFrom: `file://${dir}/cnn/round-000001` }), (e: unknown) => {
      assert.ok(e instanceof ApplicationFailure);
      assert.equal(e.type, 'InvalidArgument');
      assert.match(e.message, /^resumeFrom: file:\/\/.*\/cnn\/round-000001\/ holds another model than model 'mlp'/);
      return true;
    });
    await lb.tf.setBackend(lb.best === 'tensorflow-gpu' ? 'tensorflow' : lb.best);
  });

  it('saves and loads a checkpoint bit for bit through the tfjs IOHandler, on file:// and s3://', async () => {
    const s3 = new S3Client({ region: 'us-east-1', endpoint: moto.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    await s3.send(new CreateBucketCommand({ Bucket: 'ckpt' }));
    // The S3 store reads its endpoint and credentials from the standard AWS environment.
    Object.assign(process.env, { AWS_ENDPOINT_URL_S3: moto.endpoint, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1' });
    for (const store of [await openStore(`file://${dir}`), await openStore('s3://ckpt/jobs')]) {
      const model = buildModel(lb.tf, 'mlp', loadDataset('mnist'), 7);
      const momentum = Float32Array.from({ length: flatWeights(model).length }, (_, i) => Math.sin(i));
      const meta = await saveCheckpoint(lb.tf, store, roundDir('rt', 5), model, 'rt', 5, 'inst', momentum);
      const loaded = await loadCheckpoint(lb.tf, store, roundDir('rt', 5), true);
      assert.deepEqual(Buffer.from(flatWeights(loaded.model).buffer), Buffer.from(flatWeights(model).buffer), `${store.uri}: weights are identical`);
      assert.deepEqual(loaded.model.layers.map((l) => l.getConfig()), model.layers.map((l) => l.getConfig()), 'same topology');
      assert.deepEqual(Buffer.from(loaded.momentum!.buffer), Buffer.from(momentum.buffer));
      assert.equal(loaded.meta.weightsSha256, meta.weightsSha256);
      assert.equal(meta.parameters, 784 * 128 + 128 + 128 * 10 + 10);
      assert.deepEqual(await listCheckpointRounds(store, 'rt'), [5]);
      model.dispose();
      loaded.model.dispose();
    }
    // A flipped byte in weights.bin is caught by the checksum.
    const file = join(dir, 'rt/round-000005/weights.bin');
    const bytes = readFileSync(file);
    bytes[100] ^= 0xff;
    writeFileSync(file, bytes);
    await assert.rejects(loadCheckpoint(lb.tf, await openStore(`file://${dir}`), roundDir('rt', 5)), ChecksumError);
  });

  it('fails a shard non-retryably, saying what to do, when its round\'s checkpoint was deleted from the store', async () => {
    const acts = createTrainingActivities();
    const env = new MockActivityEnvironment();
    const ref = { job: 'gone', instance: 'i', checkpointUri: `file://${dir}`, dataset: 'mnist' as const, model: 'mlp' as const, seed: 1 };
    await env.run(acts.prepareTrainingJob, ref);
    await (await openStore(`file://${dir}`)).remove('gone/round-000000/model.json');
    await assert.rejects(env.run(acts.trainShard, { ...ref, round: 1, shard: 0, of: 1, innerSteps: 2, batchSize: 8, lr: 0.001, weightDecay: 0 }), (e: unknown) => {
      assert.ok(e instanceof ApplicationFailure);
      assert.equal(e.type, 'CheckpointMissing');
      assert.equal(e.nonRetryable, true);
      assert.match(e.message, /^no checkpoint at file:\/\/.*\/gone\/round-000000\/.*; start again from a kept checkpoint \(resumeFrom\)$/);
      return true;
    });
  });

  it('outer step: lr 1, momentum 0 is plain averaging; otherwise it matches tf.train.momentum(lr, m, nesterov)', () => {
    const theta = Float32Array.from([1, -2, 3, 0.5]);
    const deltas = [Float32Array.from([0.1, 0.2, -0.3, 0]), Float32Array.from([0.3, 0, -0.1, 0.2])];
    const mean = deltas[0].map((v, i) => (v + deltas[1][i]) / 2);
    const avg = Float32Array.from(theta);
    outerStep(avg, mean, undefined, 1, 0);
    assert.deepEqual([...avg].map((v) => +v.toFixed(6)), [1.2, -1.9, 2.8, 0.6]);

    const { tf } = lb;
    const v = tf.variable(tf.tensor1d(theta));
    const opt = tf.train.momentum(0.7, 0.9, true);
    const mine = Float32Array.from(theta);
    const buf = new Float32Array(theta.length);
    for (let step = 0; step < 3; step++) {
      const g = mean.map((d) => -d * (step + 1)); // a pseudo-gradient that changes each step
      opt.applyGradients([{ name: v.name, tensor: tf.tensor1d(g) }]);
      outerStep(mine, g.map((x) => -x), buf, 0.7, 0.9);
    }
    const ref = v.dataSync();
    mine.forEach((x, i) => assert.ok(Math.abs(x - ref[i]) < 1e-5, `param ${i}: ${x} vs tf ${ref[i]}`));
    opt.dispose();
    v.dispose();
  });

  it('splits the 10,000 mnist digits with a fixed seed and shards them disjointly and reproducibly', () => {
    const ds = loadDataset('mnist');
    assert.equal(ds.train.n + ds.test.n, 10_000);
    assert.equal(ds.test.n, MNIST_TEST_SAMPLES);
    const counts = new Array(10).fill(0);
    ds.test.y.forEach((y) => counts[y]++);
    assert.ok(counts.every((c) => c > 60), `every digit is in the held-out set: ${counts}`);
    const shards = [0, 1, 2].map((s) => shardIndices(ds.train, s, 3));
    const all = new Set(shards.flatMap((s) => [...s]));
    assert.equal(all.size, ds.train.n, 'shards partition the training set');
    const a = batchOrder(shards[1], 9, 4, 1, 10, 32);
    assert.deepEqual(a, batchOrder(shards[1], 9, 4, 1, 10, 32), 'a retried shard sees the same batches');
    assert.notDeepEqual(a, batchOrder(shards[1], 9, 5, 1, 10, 32), 'another round sees other batches');
    assert.ok([...a].every((i) => shards[1].includes(i)));
  });
});

describe('loss curve rendering for the CLI', () => {
  it('plots each round as text and as a well-formed SVG with loss and accuracy lines', () => {
    const pts = [
      { round: 1, loss: 1.6 },
      { round: 2, loss: 0.7, accuracy: 0.84 },
      { round: 3, loss: 0.4, accuracy: 0.88 },
    ];
    const text = lossCurveText(pts, 20).split('\n');
    assert.equal(text.length, 3);
    assert.match(text[0], /^round 1 │ █{20} 1\.6000$/);
    assert.match(text[2], /^round 3 │ █{5} 0\.4000  acc 88\.0%$/);
    const svg = lossCurveSvg(pts, 'train/<demo>');
    assert.match(svg, /^<svg [^>]+>[\s\S]*<\/svg>$/);
    assert.match(svg, /train\/&#60;demo&#62;/, 'the title is escaped');
    assert.equal((svg.match(/<path d="M[^"]+L[^"]+L[^"]+"/g) ?? []).length, 1, 'the loss line has 3 points');
    assert.match(svg, /stroke-dasharray="6 4"/, 'the accuracy line is drawn');

    const png = lossCurvePng(pts, 200, 100);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.equal(png.readUInt32BE(16), 200);
    assert.equal(png.readUInt32BE(20), 100);
    const idatAt = png.indexOf('IDAT');
    const raw = inflateSync(png.subarray(idatAt + 4, idatAt + 4 + png.readUInt32BE(idatAt - 4)));
    assert.equal(raw.length, (200 * 3 + 1) * 100);
    let blue = 0;
    let green = 0;
    for (let i = 0; i < raw.length - 2; i++) {
      if (raw[i] === 0x1f && raw[i + 1] === 0x77 && raw[i + 2] === 0xb4) blue++;
      if (raw[i] === 0x2c && raw[i + 1] === 0xa0 && raw[i + 2] === 0x2c) green++;
    }
    assert.ok(blue > 100 && green > 20, `loss and accuracy lines are drawn (${blue} blue, ${green} green pixels)`);
  });
});

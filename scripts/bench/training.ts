/**
 * Training benchmark: the same model (784-128-10 MLP), data (mnist, seeded) and total samples in
 *   (a) a plain single-process tfjs loop on the wasm backend,
 *   (b) the same plain loop on native TensorFlow (tfjs-node, scripts/install-tfjs-native.sh),
 *   (c) trainingJob with 1 trainer worker process (native),
 *   (d) trainingJob with 2 trainer worker processes (native, W=2),
 *   (e) (d) with inner.keepState false (Adam restarts every round): accuracy at equal samples, with
 *       and without DiLoCo's per-shard optimizer state,
 * and the cnn's throughput on native TensorFlow vs the plain cpu backend ((f) vs (g), a few steps:
 * cpu is slow). Prints held-out accuracy, wall time, throughput, and the ratios against each row's baseline.
 *   node --import tsx scripts/bench/training.ts [--rounds 4] [--steps 800] [--batch 256] [--outer-lr 1] [--outer-momentum 0.5] [--repeat 2] [--cnn-steps 10]
 * Runs are interleaved (a, b, c, …, a, b, c, …) and each reports its fastest repeat, so load from
 * other processes on a shared machine skews all alike. Accuracy is deterministic per backend.
 * Goals (issues 9 and 23): (b) ≥ 2.5× (a) at batch 256; (c) ≥ 0.9× (b); accuracy within 0.5 points.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Scalar } from '@tensorflow/tfjs';
import { Worker } from '@temporalio/worker';
import { describeBackend, loadBackend, registerWasm } from '../../activities/training/backend.ts';
import { batchOrder, gather, loadDataset } from '../../activities/training/data.ts';
import { buildModel, evaluate, lossOf, type ModelKind } from '../../activities/training/model.ts';
import { workflowBundle } from '../lib/bundle.ts';
import { startDevServer } from '../lib/temporal.ts';
import { inProcessVersioning, spawnTrainer, type TrainerProcess } from '../lib/workers.ts';
import { DRYDOCK_TRAIN_LOSS, type TrainingJobResult } from '../../workflows/trainingJob.ts';

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '4' },
    steps: { type: 'string', default: '800' },
    batch: { type: 'string', default: '256' },
    lr: { type: 'string', default: '0.001' },
    'outer-lr': { type: 'string', default: '1' },
    'outer-momentum': { type: 'string', default: '0.5' },
    seed: { type: 'string', default: '1' },
    repeat: { type: 'string', default: '2' },
    'cnn-steps': { type: 'string', default: '10' },
    'cnn-batch': { type: 'string', default: '32' },
  },
});
const rounds = Number(opts.rounds);
const totalSteps = Number(opts.steps);
const batch = Number(opts.batch);
const lr = Number(opts.lr);
const seed = Number(opts.seed);
const samples = totalSteps * batch;
if (totalSteps % (rounds * 2) !== 0) throw new Error(`--steps must be a multiple of 2 × rounds (${2 * rounds}) so W=1 and W=2 see the same samples`);

interface Row {
  name: string;
  accuracy?: number;
  seconds: number;
  samples: number;
  backend: string;
  /** The row this one's ratios are against. */
  base?: string;
}

/** The baseline: one process, one model, Adam, the same seeded batches of the whole training set, on `backend`. */
async function plainLoop(name: string, backend: string, model: ModelKind, steps: number, size: number, withAccuracy = true, base?: string): Promise<Row> {
  const { tf } = await loadBackend();
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} does not initialise here`);
  const ds = loadDataset('mnist');
  const feat = ds.inputShape[0];
  const started = performance.now();
  const m = buildModel(tf, model, ds, seed);
  const optimizer = tf.train.adam(lr);
  const all = Int32Array.from({ length: ds.train.n }, (_, i) => i);
  const order = batchOrder(all, seed, 1, 0, steps, size);
  for (let step = 0; step < steps; step++) {
    const b = gather(ds.train, order.subarray(step * size, (step + 1) * size), feat);
    const loss = tf.tidy(() => optimizer.minimize(() => lossOf(tf, m, tf.tensor2d(b.x, [size, feat]), tf.tensor1d(b.y, 'int32'), ds.numClasses) as Scalar, true)!);
    if (step === steps - 1) loss.dataSync(); // wait for the device before stopping the clock
    loss.dispose();
  }
  const accuracy = withAccuracy ? (await evaluate(tf, m, ds)).accuracy : undefined;
  const seconds = (performance.now() - started) / 1000;
  m.dispose();
  optimizer.dispose();
  return { name, accuracy, seconds, samples: steps * size, backend, base };
}

async function main(): Promise<void> {
  const repeat = Number(opts.repeat);
  const lb = await loadBackend();
  const native = lb.best.startsWith('tensorflow') ? 'tensorflow' : undefined;
  if (!native) console.warn(`native TensorFlow did not load (${lb.skipped.join('; ')}): run scripts/install-tfjs-native.sh; the native rows are left out`);
  const wasmWhy = await registerWasm(lb.tf);
  if (wasmWhy) throw new Error(wasmWhy);
  const best = new Map<string, Row>();
  const keep = (r: Row) => {
    const prev = best.get(r.name);
    if (!prev || r.seconds < prev.seconds) best.set(r.name, r);
  };
  const dir = mkdtempSync(join(tmpdir(), 'drydock-bench-train-'));
  const env = await startDevServer({ extraSearchAttributes: [DRYDOCK_TRAIN_LOSS] });
  const trainers: TrainerProcess[] = [];
  const A = '(a) plain loop, wasm';
  const B = '(b) plain loop, native';
  const C = '(c) trainingJob, 1 trainer';
  const D = '(d) trainingJob, 2 trainers';
  const F = '(f) cnn plain loop, cpu';
  const cnnSteps = Number(opts['cnn-steps']);
  const cnnBatch = Number(opts['cnn-batch']);
  try {
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue: 'bench', workflowBundle: { codePath: await workflowBundle() }, workerDeploymentOptions: inProcessVersioning().workerDeploymentOptions });
    await worker.runUntil(async () => {
      await inProcessVersioning().makeCurrent(env.client);
      for (let rep = 0; rep < repeat; rep++) {
        keep(await plainLoop(A, 'wasm', 'mlp', totalSteps, batch));
        if (!native) continue;
        keep(await plainLoop(B, native, 'mlp', totalSteps, batch, true, A));
        for (const [w, keepState, name] of [[1, true, C], [2, true, D], [2, false, '(e) trainingJob, 2 trainers, inner.keepState false']] as const) {
          // (c) has exactly one trainer process polling; (d) and (e) two.
          while (trainers.length > w) await trainers.pop()!.kill('SIGTERM');
          while (trainers.length < w) trainers.push(await spawnTrainer(env.address, 'bench-trainer', { DRYDOCK_METRICS_ADDRESS: '' }));
          const job = `bench-w${w}-${keepState ? 'keep' : 'reset'}-${rep}`;
          const started = performance.now();
          const handle = await env.client.workflow.start('trainingJob', {
            taskQueue: 'bench',
            workflowId: `train/${job}`,
            args: [
              {
                name: job,
                workers: w,
                rounds,
                innerSteps: totalSteps / rounds / w,
                batchSize: batch,
                inner: { lr, keepState },
                outer: { lr: Number(opts['outer-lr']), momentum: Number(opts['outer-momentum']) },
                evalEvery: rounds,
                seed,
                checkpoint: { uri: `file://${dir}`, keepLast: 1 },
                trainerQueue: 'bench-trainer',
              },
            ],
          });
          const result: TrainingJobResult = await handle.result();
          keep({ name, accuracy: result.accuracy!, seconds: (performance.now() - started) / 1000, samples, backend: result.backends.join('+'), base: keepState ? B : D });
        }
        keep(await plainLoop(F, 'cpu', 'cnn', cnnSteps, cnnBatch, false));
        keep(await plainLoop('(g) cnn plain loop, native', native, 'cnn', cnnSteps, cnnBatch, false, F));
      }
    });
  } finally {
    for (const t of trainers) await t.kill('SIGTERM');
    await env.teardown();
    rmSync(dir, { recursive: true, force: true });
  }

  const rows = [...best.values()];
  const pct = (a?: number) => (a === undefined ? '—' : `${(a * 100).toFixed(1)}%`);
  console.log(`\ntraining benchmark (fastest of ${repeat}; ${describeBackend(lb)}): mlp 784-128-10 on mnist (9,000 train / 1,000 held out), ${samples} samples (${totalSteps} steps × batch ${batch}), Adam lr ${lr}, ${rounds} rounds, outer lr ${opts['outer-lr']} momentum ${opts['outer-momentum']}; cnn ${cnnSteps} steps × batch ${cnnBatch}`);
  console.log('| run | backend | held-out accuracy | wall s | samples/s | vs | throughput | accuracy |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    const base = r.base ? best.get(r.base) : undefined;
    const ratio = base ? `${(r.samples / r.seconds / (base.samples / base.seconds)).toFixed(2)}×` : '—';
    const dAcc = base?.accuracy !== undefined && r.accuracy !== undefined ? `${(r.accuracy - base.accuracy) * 100 >= 0 ? '+' : ''}${((r.accuracy - base.accuracy) * 100).toFixed(1)} pts` : '—';
    console.log(`| ${r.name} | ${r.backend} | ${pct(r.accuracy)} | ${r.seconds.toFixed(1)} | ${(r.samples / r.seconds).toFixed(0)} | ${base ? base.name.slice(0, 3) : '—'} | ${ratio} | ${dAcc} |`);
  }
}

await main();

/**
 * Training benchmark: same model (784-128-10 MLP), data (mnist, seeded) and total samples in
 *   (a) a plain single-process tfjs loop,
 *   (b) trainingJob with 1 trainer worker process,
 *   (c) trainingJob with 2 trainer worker processes (W=2),
 * printing held-out accuracy, wall time, throughput, the ratios against (a), and the backend.
 *   node --import tsx scripts/bench/training.ts [--rounds 10] [--steps 2000] [--batch 32] [--outer-lr 1] [--outer-momentum 0.5] [--repeat 2]
 * Runs are interleaved (a, b, c, a, b, c, …) and each reports its fastest repeat, so load from
 * other processes on a shared machine skews all three alike.
 * Goals (issue 9): (b) ≥ 0.9× the throughput of (a); accuracy within 0.5 points of (a).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from '@temporalio/worker';
import { loadBackend } from '../../activities/training/backend.ts';
import { batchOrder, gather, loadDataset } from '../../activities/training/data.ts';
import { buildModel, evaluate, lossOf } from '../../activities/training/model.ts';
import { workflowBundle } from '../lib/bundle.ts';
import { startDevServer } from '../lib/temporal.ts';
import { spawnTrainer, type TrainerProcess } from '../lib/workers.ts';
import { DRYDOCK_TRAIN_LOSS, type TrainingJobResult } from '../../workflows/trainingJob.ts';

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '10' },
    steps: { type: 'string', default: '2000' },
    batch: { type: 'string', default: '32' },
    lr: { type: 'string', default: '0.001' },
    'outer-lr': { type: 'string', default: '1' },
    'outer-momentum': { type: 'string', default: '0.5' },
    seed: { type: 'string', default: '1' },
    repeat: { type: 'string', default: '2' },
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
  accuracy: number;
  seconds: number;
  backend: string;
}

/** (a) The baseline: one process, one model, Adam, the same seeded batches of the whole training set. */
async function plainLoop(): Promise<Row> {
  const { tf, best } = await loadBackend();
  const ds = loadDataset('mnist');
  const feat = ds.inputShape[0];
  const started = performance.now();
  const model = buildModel(tf, 'mlp', ds, seed);
  const optimizer = tf.train.adam(lr);
  const all = Int32Array.from({ length: ds.train.n }, (_, i) => i);
  const order = batchOrder(all, seed, 1, 0, totalSteps, batch);
  for (let step = 0; step < totalSteps; step++) {
    const b = gather(ds.train, order.subarray(step * batch, (step + 1) * batch), feat);
    tf.tidy(() => {
      const x = tf.tensor2d(b.x, [batch, feat]);
      const y = tf.tensor1d(b.y, 'int32');
      optimizer.minimize(() => lossOf(tf, model, x, y, ds.numClasses) as import('@tensorflow/tfjs').Scalar);
    });
  }
  const { accuracy } = await evaluate(tf, model, ds);
  const seconds = (performance.now() - started) / 1000;
  model.dispose();
  optimizer.dispose();
  return { name: '(a) plain tfjs loop', accuracy, seconds, backend: best };
}

async function main(): Promise<void> {
  const repeat = Number(opts.repeat);
  const best = new Map<string, Row>();
  const keep = (r: Row) => {
    const prev = best.get(r.name);
    if (!prev || r.seconds < prev.seconds) best.set(r.name, r);
  };
  const dir = mkdtempSync(join(tmpdir(), 'drydock-bench-train-'));
  const env = await startDevServer({ extraSearchAttributes: [DRYDOCK_TRAIN_LOSS] });
  const trainers: TrainerProcess[] = [];
  try {
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue: 'bench', workflowBundle: { codePath: await workflowBundle() } });
    await worker.runUntil(async () => {
      for (let rep = 0; rep < repeat; rep++) {
        keep(await plainLoop());
        for (const w of [1, 2]) {
          // (b) has exactly one trainer process polling; (c) two.
          while (trainers.length > w) await trainers.pop()!.kill('SIGTERM');
          while (trainers.length < w) trainers.push(await spawnTrainer(env.address, 'bench-trainer', { DRYDOCK_METRICS_ADDRESS: '' }));
          const name = `bench-w${w}-${rep}`;
          const started = performance.now();
          const handle = await env.client.workflow.start('trainingJob', {
            taskQueue: 'bench',
            workflowId: `train/${name}`,
            args: [
              {
                name,
                workers: w,
                rounds,
                innerSteps: totalSteps / rounds / w,
                batchSize: batch,
                inner: { lr },
                outer: { lr: Number(opts['outer-lr']), momentum: Number(opts['outer-momentum']) },
                evalEvery: rounds,
                seed,
                checkpoint: { uri: `file://${dir}`, keepLast: 1 },
                trainerQueue: 'bench-trainer',
              },
            ],
          });
          const result: TrainingJobResult = await handle.result();
          keep({ name: `(${w === 1 ? 'b' : 'c'}) trainingJob, ${w} trainer${w > 1 ? 's' : ''}`, accuracy: result.accuracy!, seconds: (performance.now() - started) / 1000, backend: result.backends.join('+') });
        }
      }
    });
  } finally {
    for (const t of trainers) await t.kill('SIGTERM');
    await env.teardown();
    rmSync(dir, { recursive: true, force: true });
  }
  const rows = [...best.values()];

  const base = rows[0];
  console.log(`\ntraining benchmark (fastest of ${repeat}): mlp 784-128-10 on mnist (9,000 train / 1,000 held out), ${samples} samples (${totalSteps} steps × batch ${batch}), Adam lr ${lr}, ${rounds} rounds, outer lr ${opts['outer-lr']} momentum ${opts['outer-momentum']}`);
  console.log('| run | backend | held-out accuracy | wall s | samples/s | throughput vs (a) | accuracy vs (a) |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${r.backend} | ${(r.accuracy * 100).toFixed(1)}% | ${r.seconds.toFixed(1)} | ${(samples / r.seconds).toFixed(0)} | ${(base.seconds / r.seconds).toFixed(2)}× | ${((r.accuracy - base.accuracy) * 100 >= 0 ? '+' : '')}${((r.accuracy - base.accuracy) * 100).toFixed(1)} pts |`,
    );
  }
}

await main();

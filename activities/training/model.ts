import type { LayersModel, Tensor } from '@tensorflow/tfjs';
import type { TF } from './backend.ts';
import { gather, type Dataset } from './data.ts';

export const MODELS = ['mlp', 'cnn'] as const;
export type ModelKind = (typeof MODELS)[number];

/**
 * The models a job can train. Initial weights come from seeded initializers, so every run of a
 * job with the same seed starts from the same parameters.
 */
export function buildModel(tf: TF, kind: ModelKind, ds: Dataset, seed: number): LayersModel {
  const pixels = ds.inputShape.reduce((a, b) => a * b, 1);
  const init = (k: number) => tf.initializers.glorotUniform({ seed: seed * 16 + k });
  if (kind === 'mlp') {
    return tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [pixels], units: 128, activation: 'relu', kernelInitializer: init(1) }),
        tf.layers.dense({ units: ds.numClasses, kernelInitializer: init(2) }),
      ],
    });
  }
  const side = Math.round(Math.sqrt(pixels));
  return tf.sequential({
    layers: [
      tf.layers.reshape({ inputShape: [pixels], targetShape: [side, side, 1] }),
      tf.layers.conv2d({ filters: 8, kernelSize: 5, strides: 2, activation: 'relu', kernelInitializer: init(1) }),
      tf.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, activation: 'relu', kernelInitializer: init(2) }),
      tf.layers.flatten(),
      tf.layers.dense({ units: ds.numClasses, kernelInitializer: init(3) }),
    ],
  });
}

/** All weights of a model as one float32 vector, in getWeights() order. */
export function flatWeights(model: LayersModel): Float32Array {
  const ws = model.getWeights();
  const size = ws.reduce((a, w) => a + w.size, 0);
  const out = new Float32Array(size);
  let off = 0;
  for (const w of ws) {
    out.set(w.dataSync() as Float32Array, off);
    off += w.size;
  }
  return out;
}

/** Sets a model's weights from one float32 vector laid out as flatWeights() writes it. */
export function setFlatWeights(tf: TF, model: LayersModel, flat: Float32Array): void {
  let off = 0;
  const ts = model.getWeights().map((w) => {
    const t = tf.tensor(flat.subarray(off, off + w.size), w.shape, 'float32');
    off += w.size;
    return t;
  });
  if (off !== flat.length) throw new Error(`weight vector has ${flat.length} values, the model needs ${off}`);
  model.setWeights(ts);
  tf.dispose(ts);
}

/** Softmax cross-entropy of integer labels against logits. */
export function lossOf(tf: TF, model: LayersModel, x: Tensor, labels: Tensor, numClasses: number): Tensor {
  const logits = model.apply(x, { training: true }) as Tensor;
  return tf.losses.softmaxCrossEntropy(tf.oneHot(labels.toInt(), numClasses), logits);
}

/** Held-out accuracy and mean loss over the whole test split, in chunks to bound memory; `between` runs after each chunk. */
export async function evaluate(tf: TF, model: LayersModel, ds: Dataset, between?: () => Promise<void>, chunk = 250): Promise<{ accuracy: number; loss: number }> {
  const feat = ds.inputShape.reduce((a, b) => a * b, 1);
  let correct = 0;
  let lossSum = 0;
  for (let start = 0; start < ds.test.n; start += chunk) {
    const idx = Int32Array.from({ length: Math.min(chunk, ds.test.n - start) }, (_, k) => start + k);
    const b = gather(ds.test, idx, feat);
    const [c, l] = tf.tidy(() => {
      const x = tf.tensor2d(b.x, [idx.length, feat]);
      const y = tf.tensor1d(b.y, 'int32');
      const logits = model.predict(x) as Tensor;
      const hits = logits.argMax(-1).equal(y).sum();
      const loss = tf.losses.softmaxCrossEntropy(tf.oneHot(y, ds.numClasses), logits).mul(idx.length);
      return [hits.dataSync()[0], loss.dataSync()[0]];
    });
    correct += c;
    lossSum += l;
    await between?.();
  }
  return { accuracy: correct / ds.test.n, loss: lossSum / ds.test.n };
}

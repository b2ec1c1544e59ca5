/**
 * DiLoCo's outer step on flat float32 vectors, the same update as
 * `tf.train.momentum(lr, momentum, useNesterov = true)` applied to the pseudo-gradient
 * g = θ − mean(θ_shard) = −mean(delta):
 *   buf ← momentum·buf + g;  θ ← θ − lr·(g + momentum·buf)
 * lr 1 with momentum 0 is plain parameter averaging. Updates `params` and `buf` in place.
 */
export function outerStep(params: Float32Array, meanDelta: Float32Array, buf: Float32Array | undefined, lr: number, momentum: number): void {
  for (let i = 0; i < params.length; i++) {
    const g = -meanDelta[i];
    if (buf && momentum > 0) {
      buf[i] = momentum * buf[i] + g;
      params[i] -= lr * (g + momentum * buf[i]);
    } else {
      params[i] -= lr * g;
    }
  }
}

export function l2(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

export function allFinite(v: Float32Array): boolean {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return false;
  return true;
}

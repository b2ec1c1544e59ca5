import type { WorkerDeploymentVersion } from '@temporalio/common';
import { WorkerConfigError } from './configError.ts';
import { loadWorkerVersion } from './versioning.ts';

/** The trainer worker's settings, from env, with defaults in one place. */
export interface TrainerWorkerConfig {
  taskQueue: string;
  /** Activities at once; 1 per GPU (a trainer process drives one device). */
  concurrency: number;
  shutdownGraceMs: number;
  /** The same Worker Deployment Version as the control worker of this release (workers/versioning.ts). */
  version: WorkerDeploymentVersion;
}

export const TRAINER_WORKER_DEFAULTS = { taskQueue: 'drydock-trainer', concurrency: 1, shutdownGraceMs: 5_000 } as const;

export function loadTrainerWorkerConfig(env: NodeJS.ProcessEnv): TrainerWorkerConfig {
  const D = TRAINER_WORKER_DEFAULTS;
  const concurrency = Number(env.DRYDOCK_TRAINER_CONCURRENCY ?? D.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new WorkerConfigError('DRYDOCK_TRAINER_CONCURRENCY: expected a positive integer (1 per GPU)');
  return { taskQueue: env.DRYDOCK_TRAINER_TASK_QUEUE ?? D.taskQueue, concurrency, shutdownGraceMs: D.shutdownGraceMs, version: loadWorkerVersion(env) };
}

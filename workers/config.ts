import type { WorkerDeploymentVersion } from '@temporalio/common';
import { WorkerConfigError } from './configError.ts';
import { loadWorkerVersion } from './versioning.ts';

export { WorkerConfigError };

/** The control worker's settings, from env, with defaults in one place. */
export interface ControlWorkerConfig {
  taskQueue: string;
  poolsFile: string;
  agentToken: string;
  /** A prebuilt workflow bundle (see scripts/build-bundle.ts); bundles at start when unset. */
  workflowBundle?: string;
  shutdownGraceMs: number;
  /** The Worker Deployment Version it polls as (DRYDOCK_DEPLOYMENT, DRYDOCK_BUILD_ID; workers/versioning.ts). */
  version: WorkerDeploymentVersion;
}

export const CONTROL_WORKER_DEFAULTS = { taskQueue: 'drydock', poolsFile: 'pools.yaml', shutdownGraceMs: 10_000 } as const;

export function loadControlWorkerConfig(env: NodeJS.ProcessEnv): ControlWorkerConfig {
  const agentToken = env.DRYDOCK_AGENT_TOKEN ?? '';
  if (agentToken.length < 16) {
    throw new WorkerConfigError('DRYDOCK_AGENT_TOKEN: set it to the agents\' shared secret (at least 16 characters)');
  }
  return {
    taskQueue: env.DRYDOCK_TASK_QUEUE ?? CONTROL_WORKER_DEFAULTS.taskQueue,
    poolsFile: env.DRYDOCK_POOLS_FILE ?? CONTROL_WORKER_DEFAULTS.poolsFile,
    agentToken,
    workflowBundle: env.DRYDOCK_WORKFLOW_BUNDLE || undefined,
    shutdownGraceMs: CONTROL_WORKER_DEFAULTS.shutdownGraceMs,
    version: loadWorkerVersion(env),
  };
}

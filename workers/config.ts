import type { WorkerDeploymentVersion } from '@temporalio/common';
import { AgentAuthError, loadAgentAuth, type AgentAuth } from '../activities/agentAuth.ts';
import { WorkerConfigError } from './configError.ts';
import { loadWorkerVersion } from './versioning.ts';

export { WorkerConfigError };

/** The control worker's settings, from env, with defaults in one place. */
export interface ControlWorkerConfig {
  taskQueue: string;
  poolsFile: string;
  /** How the worker reaches agents: per-node tokens from DRYDOCK_AGENT_KEY(_FILE), or the dev-only shared token. */
  agentAuth: AgentAuth;
  /** A prebuilt workflow bundle (see scripts/build-bundle.ts); bundles at start when unset. */
  workflowBundle?: string;
  shutdownGraceMs: number;
  /** The Worker Deployment Version it polls as (DRYDOCK_DEPLOYMENT, DRYDOCK_BUILD_ID; workers/versioning.ts). */
  version: WorkerDeploymentVersion;
}

export const CONTROL_WORKER_DEFAULTS = { taskQueue: 'drydock', poolsFile: 'pools.yaml', shutdownGraceMs: 10_000 } as const;

export function loadControlWorkerConfig(env: NodeJS.ProcessEnv): ControlWorkerConfig {
  let agentAuth: AgentAuth;
  try {
    agentAuth = loadAgentAuth(env);
  } catch (err) {
    if (err instanceof AgentAuthError) throw new WorkerConfigError(err.message);
    throw err;
  }
  return {
    taskQueue: env.DRYDOCK_TASK_QUEUE ?? CONTROL_WORKER_DEFAULTS.taskQueue,
    poolsFile: env.DRYDOCK_POOLS_FILE ?? CONTROL_WORKER_DEFAULTS.poolsFile,
    agentAuth,
    workflowBundle: env.DRYDOCK_WORKFLOW_BUNDLE || undefined,
    shutdownGraceMs: CONTROL_WORKER_DEFAULTS.shutdownGraceMs,
    version: loadWorkerVersion(env),
  };
}

import { AgentAuthError, loadAgentAuth, type AgentAuth } from '../activities/agentAuth.ts';

/** The control worker's settings, from env, with defaults in one place. */
export interface ControlWorkerConfig {
  taskQueue: string;
  poolsFile: string;
  /** How the worker reaches agents: per-node tokens from DRYDOCK_AGENT_KEY(_FILE), or the dev-only shared token. */
  agentAuth: AgentAuth;
  /** A prebuilt workflow bundle (see scripts/build-bundle.ts); bundles at start when unset. */
  workflowBundle?: string;
  shutdownGraceMs: number;
}

export const CONTROL_WORKER_DEFAULTS = { taskQueue: 'drydock', poolsFile: 'pools.yaml', shutdownGraceMs: 10_000 } as const;

export class WorkerConfigError extends Error {}

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
  };
}

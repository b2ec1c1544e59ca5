/** The control worker's settings, from env, with defaults in one place. */
export interface ControlWorkerConfig {
  taskQueue: string;
  poolsFile: string;
  agentToken: string;
  /** A prebuilt workflow bundle (see scripts/build-bundle.ts); bundles at start when unset. */
  workflowBundle?: string;
  shutdownGraceMs: number;
}

export const CONTROL_WORKER_DEFAULTS = { taskQueue: 'drydock', poolsFile: 'pools.yaml', shutdownGraceMs: 10_000 } as const;

export class WorkerConfigError extends Error {}

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
  };
}

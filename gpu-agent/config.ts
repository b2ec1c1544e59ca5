import { parseArgs } from 'node:util';

/** Everything the agent can be told, with defaults in one place. */
export interface AgentConfig {
  nodeId: string;
  pool: string;
  host: string;
  port: number;
  token: string;
  dataDir?: string;
  gpuBackend: 'simulated';
  gpus: number;
  bootDelaySeconds: number;
  simJobs: number;
  simJobSeconds: number;
}

export const AGENT_DEFAULTS = {
  host: '127.0.0.1',
  port: 9400,
  gpuBackend: 'simulated',
  gpus: 8,
  bootDelaySeconds: 0,
  simJobs: 0,
  simJobSeconds: 5,
} as const;

export class AgentConfigError extends Error {}

function num(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min) throw new AgentConfigError(`--${name}: expected a number >= ${min}, got '${raw}'`);
  return v;
}

/** Parses flags (which win) and DRYDOCK_AGENT_* env vars; the token comes only from env, never argv. */
export function loadAgentConfig(argv: string[], env: NodeJS.ProcessEnv): AgentConfig {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'node-id': { type: 'string' },
      pool: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'data-dir': { type: 'string' },
      'gpu-backend': { type: 'string' },
      gpus: { type: 'string' },
      'boot-delay': { type: 'string' },
      'sim-jobs': { type: 'string' },
      'sim-job-seconds': { type: 'string' },
    },
  });
  const token = env.DRYDOCK_AGENT_TOKEN ?? '';
  if (token.length < 16) {
    throw new AgentConfigError('DRYDOCK_AGENT_TOKEN: set it to a shared secret of at least 16 characters (the agent refuses to run without auth)');
  }
  const backend = values['gpu-backend'] ?? env.DRYDOCK_AGENT_GPU_BACKEND ?? AGENT_DEFAULTS.gpuBackend;
  if (backend !== 'simulated') throw new AgentConfigError(`--gpu-backend: expected 'simulated', got '${backend}'`);
  const port = num('port', values.port ?? env.DRYDOCK_AGENT_PORT, AGENT_DEFAULTS.port, 0);
  if (!Number.isInteger(port) || port > 65535) throw new AgentConfigError(`--port: expected 0..65535, got '${port}'`);
  return {
    nodeId: values['node-id'] ?? env.DRYDOCK_NODE_ID ?? 'local-node',
    pool: values.pool ?? env.DRYDOCK_POOL ?? 'default',
    host: values.host ?? env.DRYDOCK_AGENT_HOST ?? AGENT_DEFAULTS.host,
    port,
    token,
    dataDir: values['data-dir'] ?? env.DRYDOCK_AGENT_DATA_DIR,
    gpuBackend: backend,
    gpus: num('gpus', values.gpus, AGENT_DEFAULTS.gpus, 1),
    bootDelaySeconds: num('boot-delay', values['boot-delay'], AGENT_DEFAULTS.bootDelaySeconds, 0),
    simJobs: num('sim-jobs', values['sim-jobs'], AGENT_DEFAULTS.simJobs, 0),
    simJobSeconds: num('sim-job-seconds', values['sim-job-seconds'], AGENT_DEFAULTS.simJobSeconds, 0),
  };
}

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './lib/paths.ts';
import type { PoolConfig } from '../activities/pools.ts';
import type { LocalProviderConfig } from '../activities/providers/config.ts';

/** The dev stack's settings, with defaults in one place; env overrides exist for tests. */
export interface DevConfig {
  dir: string;
  temporalPort: number;
  uiPort: number;
  taskQueue: string;
  pool: PoolConfig & { provider: LocalProviderConfig };
  nodes: number;
}

export function loadDevConfig(env: NodeJS.ProcessEnv): DevConfig {
  const dir = env.DRYDOCK_DEV_DIR ?? join(REPO_ROOT, '.drydock/dev');
  return {
    dir,
    temporalPort: Number(env.DRYDOCK_DEV_PORT ?? 7233),
    uiPort: Number(env.DRYDOCK_DEV_UI_PORT ?? 8233),
    taskQueue: 'drydock',
    nodes: 3,
    pool: {
      name: 'demo',
      instanceType: 'sim.h100x8',
      provider: { type: 'local', stateDir: join(dir, 'fleet'), gpusPerNode: 8, bootSeconds: 2, simJobs: 2, simJobSeconds: 5 },
    },
  };
}

/** The agents' shared token: made once per dev dir, kept out of the repo and out of logs. */
export function devAgentToken(dir: string): string {
  const file = join(dir, 'agent-token');
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, randomBytes(24).toString('hex'), { mode: 0o600 });
  }
  return readFileSync(file, 'utf8').trim();
}

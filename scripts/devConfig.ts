import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './lib/paths.ts';
import { parseAgentKeys, PerNodeAuth, type AgentAuth } from '../activities/agentAuth.ts';
import { readTokensFile } from '../gpu-agent/auth.ts';
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
      provider: { type: 'local', stateDir: join(dir, 'fleet'), gpusPerNode: 8, bootSeconds: 2, simJobs: 2, simJobSeconds: 5, agentTokensFile: join(dir, 'agent-tokens'), faultInjection: true },
    },
  };
}

function once(file: string, make: () => string): string {
  if (!existsSync(file)) writeFileSync(file, make(), { mode: 0o600 });
  return readFileSync(file, 'utf8');
}

/**
 * The dev stack's credentials, made once per dev dir and kept out of the repo and out of logs:
 * the workers' master key (`agent-key`: each node gets only its own derived control token) and the
 * agents' tokens file (`agent-tokens`): an operator control token for `npm run dev:fault` and
 * a demo application's inference token for calling /v1/chat/completions.
 */
export function devCredentials(dir: string): { keyFile: string; auth: AgentAuth; tokensFile: string; operatorToken: string; inferenceToken: string } {
  mkdirSync(dir, { recursive: true });
  const keyFile = join(dir, 'agent-key');
  const auth = new PerNodeAuth(parseAgentKeys(once(keyFile, () => `dev:${randomBytes(32).toString('base64')}\n`), keyFile));
  const tokensFile = join(dir, 'agent-tokens');
  once(tokensFile, () => `# role token name (re-read by the agents on change)\ncontrol op-${randomBytes(24).toString('hex')} dev-operator\ninference app-${randomBytes(24).toString('hex')} demo-app\n`);
  const tokens = readTokensFile(tokensFile);
  const pick = (role: string) => tokens.find((t) => t.role === role)?.token ?? '';
  return { keyFile, auth, tokensFile, operatorToken: pick('control'), inferenceToken: pick('inference') };
}

import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { LocalProvider } from '../activities/providers/local.ts';
import { AgentClient } from '../activities/agentClient.ts';
import { writeTinyLlama } from './lib/tinyLlama.ts';

export interface DemoModel {
  path: string;
  sha256: string;
}

/**
 * Two tiny GGUF models for the README's rollout example (the same seeds write the same bytes on
 * every run), and v1 loaded on every demo agent that serves nothing yet.
 */
export async function prepareDemoModels(dir: string, provider: LocalProvider, pool: string, token: string): Promise<{ v1: DemoModel; v2: DemoModel }> {
  const write = (name: string, seed: number): DemoModel => {
    const path = join(dir, 'models', `${name}.gguf`);
    if (existsSync(path)) return { path, sha256: createHash('sha256').update(readFileSync(path)).digest('hex') };
    return writeTinyLlama(path, { seed, name });
  };
  const v1 = write('demo-v1', 1);
  const v2 = write('demo-v2', 2);
  await Promise.all(
    (await provider.list(pool)).map(async (n) => {
      if (!n.agentUrl) return;
      const agent = new AgentClient(n.agentUrl, token, 120_000);
      if ((await agent.model()).model) return;
      await agent.setModel(v1.path, v1.sha256, 120_000);
    }),
  );
  return { v1, v2 };
}

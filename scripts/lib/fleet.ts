import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvider, type LocalProviderOptions } from '../../activities/providers/local.ts';
import { waitFor } from './waitFor.ts';

export interface TestFleet {
  dir: string;
  pool: string;
  token: string;
  poolsFile: string;
  provider: LocalProvider;
  nodeIds: string[];
  cleanup(): Promise<void>;
}

/** A real local fleet: N gpu-agent processes under a temp dir, and a pools file naming them. */
export async function startFleet(opts: { pool?: string; nodes: number } & Partial<LocalProviderOptions>): Promise<TestFleet> {
  const dir = mkdtempSync(join(tmpdir(), 'drydock-fleet-'));
  const { pool = 'test', nodes, ...local } = opts;
  const token = randomBytes(24).toString('hex');
  const providerOpts: LocalProviderOptions = { stateDir: join(dir, 'state'), gpusPerNode: 2, ...local };
  const poolsFile = join(dir, 'pools.yaml');
  writeFileSync(poolsFile, JSON.stringify({ pools: [{ name: pool, instanceType: 'sim.h100x2', provider: { type: 'local', ...providerOpts } }] }));
  // The initial nodes boot at once; `bootSeconds` applies to replacements.
  const provider = new LocalProvider({ ...providerOpts, bootSeconds: 0 }, token);
  const nodeIds: string[] = [];
  for (let i = 0; i < nodes; i++) nodeIds.push((await provider.provision({ pool, instanceType: 'sim.h100x2' }, `initial/${pool}/${i}`)).id);
  await waitFor(async () => (await provider.list(pool)).every((n) => n.state === 'running'), 20_000, 'initial agents to start');
  return {
    dir,
    pool,
    token,
    poolsFile,
    provider: new LocalProvider(providerOpts, token),
    nodeIds,
    cleanup: () => removeFleetDir(dir),
  };
}

/** Kills every agent process whose data lies under `dir`, then removes `dir`. */
export async function removeFleetDir(dir: string): Promise<void> {
  for (const p of agentProcesses(dir)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

/** PIDs of gpu-agent processes whose data dir lies under `dir` (found in /proc, not in our records). */
export function agentProcesses(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.endsWith('gpu-agent/main.ts')) && cmd.some((a) => a.startsWith(dir))) pids.push(Number(entry));
    } catch {
      /* process ended while we looked */
    }
  }
  return pids;
}

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvider, type LocalProviderOptions } from '../../activities/providers/local.ts';
import { makeFleetCredentials, type FleetCredentials } from './fleetAuth.ts';
import { waitFor } from './waitFor.ts';

/**
 * `token` is an operator's control token every agent accepts (from the fleet's tokens file);
 * `inferenceToken` opens only inference; `controlToken(nodeId)` is one node's own token, which
 * opens no other node; `workerEnv` holds the master key for the fleet's workers.
 */
export interface TestFleet extends Omit<FleetCredentials, 'controlToken'> {
  dir: string;
  pool: string;
  poolsFile: string;
  controlToken(nodeId: string): string;
  provider: LocalProvider;
  nodeIds: string[];
  cleanup(): Promise<void>;
}

/** A real local fleet: N gpu-agent processes under a temp dir, and a pools file naming them. */
export async function startFleet(opts: { pool?: string; nodes: number } & Partial<LocalProviderOptions>): Promise<TestFleet> {
  const dir = mkdtempSync(join(tmpdir(), 'drydock-fleet-'));
  const { pool = 'test', nodes, ...local } = opts;
  const creds = makeFleetCredentials(dir);
  const providerOpts: LocalProviderOptions = { stateDir: join(dir, 'state'), gpusPerNode: 2, agentTokensFile: creds.tokensFile, faultInjection: true, ...local };
  const poolsFile = join(dir, 'pools.yaml');
  writeFileSync(poolsFile, JSON.stringify({ pools: [{ name: pool, instanceType: 'sim.h100x2', provider: { type: 'local', ...providerOpts } }] }));
  // The initial nodes boot at once; `bootSeconds` applies to replacements.
  const provider = new LocalProvider({ ...providerOpts, bootSeconds: 0 }, creds.auth);
  const nodeIds: string[] = [];
  for (let i = 0; i < nodes; i++) nodeIds.push((await provider.provision({ pool, instanceType: 'sim.h100x2' }, `initial/${pool}/${i}`)).id);
  await waitFor(async () => (await provider.list(pool)).every((n) => n.state === 'running'), 20_000, 'initial agents to start');
  return {
    ...creds,
    controlToken: (nodeId: string) => creds.controlToken(pool, nodeId),
    dir,
    pool,
    poolsFile,
    provider: new LocalProvider(providerOpts, creds.auth),
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

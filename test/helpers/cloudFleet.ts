import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PoolRegistry } from '../../activities/pools.ts';
import type { Provider } from '../../activities/providers/types.ts';
import { removeFleetDir } from '../../scripts/lib/fleet.ts';
import { makeFleetCredentials, type FleetCredentials } from '../../scripts/lib/fleetAuth.ts';
import { spawnWorker, type WorkerProcess } from '../../scripts/lib/workers.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';

/** One of moto's built-in AMIs (listing them all with DescribeImages returns 1,300 and takes seconds). */
export const MOTO_IMAGE_ID = 'ami-03cf127a';

/** Credentials as in scripts/lib/fleet.ts: `token` an operator's control token, `controlToken(pool, nodeId)` a node's own. */
export interface CloudFleet extends FleetCredentials {
  dir: string;
  pool: string;
  poolsFile: string;
  /** The pool's provider, built from the pools file exactly as the worker builds it. */
  provider: Provider;
  nodeIds: string[];
  cleanup(): Promise<void>;
}

export interface CloudFleetOptions {
  pool: string;
  instanceType: string;
  nodes: number;
  /** Pools-file provider entries (aws-ec2 / gce pointed at moto / the GCE fake); the boot hook is added here. */
  providers: Record<string, unknown>[];
  strategy?: 'priority' | 'round-robin' | 'cheapest';
  /** Seconds each stand-in instance takes to boot its agent. */
  bootSeconds?: number;
}

/**
 * A cloud pool for end-to-end tests: a pools file whose entries point at moto or the GCE fake,
 * with the local-agent boot hook standing in for instances booting their gpu-agent from user-data,
 * and `nodes` initial instances provisioned through the real provider and answering.
 */
export async function startCloudFleet(opts: CloudFleetOptions): Promise<CloudFleet> {
  const dir = mkdtempSync(join(tmpdir(), 'drydock-cloud-'));
  const creds = makeFleetCredentials(dir);
  const bootHook = { type: 'local-agent', stateDir: join(dir, 'agents'), gpusPerNode: 2, bootSeconds: opts.bootSeconds ?? 1, agentTokensFile: creds.tokensFile, faultInjection: true };
  const entries = opts.providers.map((p) => ({ ...p, agent: { bootHook } }));
  const pool =
    entries.length === 1
      ? { name: opts.pool, instanceType: opts.instanceType, provider: entries[0] }
      : { name: opts.pool, instanceType: opts.instanceType, strategy: opts.strategy ?? 'priority', providers: entries };
  const poolsFile = join(dir, 'pools.yaml');
  writeFileSync(poolsFile, JSON.stringify({ pools: [pool] }, null, 2));
  const provider = PoolRegistry.fromFile(poolsFile, creds.auth).get(opts.pool).provider;
  const nodeIds = await Promise.all(
    Array.from({ length: opts.nodes }, async (_, i) => (await provider.provision({ pool: opts.pool, instanceType: opts.instanceType }, `initial/${opts.pool}/${i}`)).id),
  );
  // describe() runs the boot hook, which starts each instance's agent.
  await waitFor(async () => (await Promise.all(nodeIds.map((id) => provider.describe(id)))).every((n) => n?.agentUrl), 60_000, 'the initial agents to answer');
  return {
    ...creds,
    dir,
    pool: opts.pool,
    poolsFile,
    provider,
    nodeIds,
    cleanup: () => removeFleetDir(dir),
  };
}

/** The control worker on a cloud fleet's pools file; it takes credentials from this process's env. */
export function spawnCloudWorker(fleet: CloudFleet, address: string, taskQueue: string): Promise<WorkerProcess> {
  return spawnWorker(fleet, address, taskQueue);
}

/** The fleet benchmarks' common setup: the simulator with N running nodes, and the control worker over it. */
import type { ChildProcess } from 'node:child_process';
import type { WorkflowHandle } from '@temporalio/client';
import type { PoolStatus } from '../../workflows/pool/api.ts';
import { SimClient } from '../fleet-sim/client.ts';
import { workflowBundle } from '../lib/bundle.ts';
import { waitFor } from '../lib/waitFor.ts';
import { makeVersionCurrent } from '../lib/workers.ts';
import { spawnUntilReady } from './processes.ts';

export interface SimFleet {
  sim: SimClient;
  /** The simulator and worker processes; the benchmark SIGKILLs them at the end. */
  procs: ChildProcess[];
  workerPid: number;
}

/**
 * Starts scripts/fleet-sim/main.ts with `simArgs`, provisions `nodes` running nodes in `pool`, calls
 * `beforeWorker` (e.g. wait for models to load), then starts the control worker
 * (scripts/fleet-sim/worker.ts: production's worker settings, metrics interceptors on).
 */
export async function startSimFleet(opts: {
  address: string;
  taskQueue: string;
  pool: string;
  nodes: number;
  token: string;
  simArgs: string[];
  beforeWorker?: (sim: SimClient) => Promise<void>;
}): Promise<SimFleet> {
  const procs: ChildProcess[] = [];
  try {
    const started = await spawnUntilReady(['scripts/fleet-sim/main.ts', ...opts.simArgs], { DRYDOCK_AGENT_TOKEN: opts.token }, /http:\/\/127\.0\.0\.1:\d+/);
    procs.push(started.proc);
    const sim = new SimClient(started.line, opts.token);
    await sim.provisionInitial(opts.pool, opts.nodes);
    await opts.beforeWorker?.(sim);
    const worker = await spawnUntilReady(
      ['scripts/fleet-sim/worker.ts'],
      {
        TEMPORAL_ADDRESS: opts.address,
        DRYDOCK_TASK_QUEUE: opts.taskQueue,
        DRYDOCK_AGENT_TOKEN: opts.token,
        FLEET_SIM_URL: sim.url,
        FLEET_SIM_POOL: opts.pool,
        DRYDOCK_WORKFLOW_BUNDLE: await workflowBundle(),
        // As deployed (deploy/k8s): metrics on, so the activity interceptors run as in production.
        DRYDOCK_METRICS_ADDRESS: '127.0.0.1:0',
      },
      /fleet-sim worker: ready, version \S+/,
    );
    procs.push(worker.proc);
    const [deploymentName, buildId] = /version (\S+?),/.exec(worker.line)![1].split(':');
    await makeVersionCurrent(opts.address, { deploymentName, buildId });
    return { sim, procs, workerPid: worker.proc.pid! };
  } catch (err) {
    for (const p of procs) p.kill('SIGKILL');
    throw err;
  }
}

/** Waits until the pool workflow runs with all `nodes` healthy (queries fail until its first task). */
export async function waitPoolAdopted(handle: WorkflowHandle, nodes: number, timeoutMs = 300_000): Promise<void> {
  await waitFor(
    async () => {
      try {
        const s = await handle.query<PoolStatus>('status');
        return s.phase === 'running' && s.counts.healthy === nodes;
      } catch {
        return false;
      }
    },
    timeoutMs,
    'the pool to adopt every node',
  );
}

import { after, before } from 'node:test';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { LocalProviderOptions } from '../../activities/providers/local.ts';
import { fleetPoolWorkflowId } from '../../workflows/common/ids.ts';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import type { PoolStatus } from '../../workflows/pool/api.ts';
import { spawnWorker, type WorkerProcess } from '../../scripts/lib/workers.ts';
import { startFleet, type TestFleet } from '../../scripts/lib/fleet.ts';
import { waitQuery } from '../../scripts/lib/waitFor.ts';
import { startDevServer } from '../../scripts/lib/temporal.ts';

export function startPool(client: Client, taskQueue: string, spec: FleetPoolSpec, workflowId = fleetPoolWorkflowId(spec.name)): Promise<WorkflowHandle> {
  return client.workflow.start('fleetPool', { taskQueue, workflowId, args: [spec], staticSummary: `pool ${spec.name}` });
}

export async function poolStatus(handle: WorkflowHandle): Promise<PoolStatus> {
  return handle.query<PoolStatus>('status');
}

/** Polls the status query until `check` holds; `every` sees each status (e.g. to track a maximum). */
export function waitStatus(handle: WorkflowHandle, check: (s: PoolStatus) => boolean, what: string, timeoutMs = 90_000, every?: (s: PoolStatus) => void): Promise<PoolStatus> {
  return waitQuery<PoolStatus>(handle, 'status', check, what, timeoutMs, every);
}

async function agentPost(fleet: TestFleet, nodeId: string, path: string, body: unknown): Promise<Response> {
  const url = (await fleet.provider.describe(nodeId))?.agentUrl;
  if (!url) throw new Error(`node ${nodeId} has no agent`);
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${fleet.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path} on ${nodeId}: ${res.status} ${await res.text()}`);
  return res;
}

/** A fatal XID (79: GPU fell off the bus) on a simulated GPU: the agent reports unhealthy until cleared. */
export function injectFatal(fleet: TestFleet, nodeId: string): Promise<Response> {
  return agentPost(fleet, nodeId, '/sim/faults', { kind: 'xid', gpu: 0, code: 79 });
}

export function clearFaults(fleet: TestFleet, nodeId: string): Promise<Response> {
  return agentPost(fleet, nodeId, '/sim/faults/clear', {});
}

/** One simulated job of up to 5 s; a simulated GPU's utilisation follows its in-flight jobs. */
export function runJob(fleet: TestFleet, nodeId: string, seconds: number): Promise<Response> {
  return agentPost(fleet, nodeId, '/jobs', { seconds });
}

export const liveIds = async (fleet: TestFleet): Promise<string[]> => (await fleet.provider.list(fleet.pool)).map((n) => n.id).sort();

export interface PoolHarness {
  env: TestWorkflowEnvironment;
  fleet: TestFleet;
  worker: WorkerProcess;
  pool: WorkflowHandle;
  /** SIGKILLs the control worker and starts a fresh one. */
  restartWorker(): Promise<void>;
}

/**
 * Per test file (registers before/after): a dev server, a local fleet of real agents, the real
 * control worker as a child process and a running pool workflow that has adopted every node.
 */
export function poolHarness(o: { taskQueue: string; spec: FleetPoolSpec; nodes: number; fleet?: Partial<LocalProviderOptions>; serverArgs?: string[] }): PoolHarness {
  const h = {} as PoolHarness;
  before(async () => {
    [h.env, h.fleet] = await Promise.all([startDevServer(o.serverArgs ? { extraArgs: o.serverArgs } : {}), startFleet({ pool: o.spec.name, nodes: o.nodes, ...o.fleet })]);
    h.worker = await spawnWorker(h.fleet, h.env.address, o.taskQueue);
    h.pool = await startPool(h.env.client, o.taskQueue, o.spec);
    await waitStatus(h.pool, (s) => s.phase === 'running' && s.counts.healthy === o.nodes, 'the pool to adopt its nodes');
  });
  after(async () => {
    await h.pool?.terminate('test over').catch(() => {});
    await h.worker?.kill('SIGTERM');
    await h.fleet?.cleanup();
    await h.env?.teardown();
  });
  h.restartWorker = async () => {
    await h.worker.kill('SIGKILL');
    h.worker = await spawnWorker(h.fleet, h.env.address, o.taskQueue);
  };
  return h;
}

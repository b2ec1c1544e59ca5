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

export async function agentPost(fleet: TestFleet, nodeId: string, path: string, body: unknown): Promise<Response> {
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

/**
 * A fatal XID on a simulated GPU: the agent reports unhealthy until cleared. The default, 48 (double-bit
 * ECC), is a bad part, which the remediation ladder replaces at once; 79 (fallen off the bus) is rebooted first.
 */
export function injectFatal(fleet: TestFleet, nodeId: string, code = 48): Promise<Response> {
  return agentPost(fleet, nodeId, '/sim/faults', { kind: 'xid', gpu: 0, code });
}

/** The node's cordon / drain state at its agent. */
export async function drainState(fleet: TestFleet, nodeId: string): Promise<string> {
  const url = (await fleet.provider.describe(nodeId))?.agentUrl;
  if (!url) return 'no agent';
  const res = await fetch(`${url}/drain`, { headers: { authorization: `Bearer ${fleet.token}` } }).catch(() => undefined);
  return res?.ok ? ((await res.json()) as { state: string }).state : 'unreachable';
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
export interface PoolHarnessOptions {
  taskQueue: string;
  spec: FleetPoolSpec;
  nodes: number;
  fleet?: Partial<LocalProviderOptions>;
  serverArgs?: string[];
  /** Search attributes beyond drydock's pool ones (e.g. DRYDOCK_TRAIN_LOSS, for a training job beside the pool). */
  extraSearchAttributes?: NonNullable<Parameters<typeof startDevServer>[0]>['extraSearchAttributes'];
}

export function poolHarness(o: PoolHarnessOptions): PoolHarness {
  const h = {} as PoolHarness;
  before(async () => {
    const server = { ...(o.serverArgs ? { extraArgs: o.serverArgs } : {}), ...(o.extraSearchAttributes ? { extraSearchAttributes: o.extraSearchAttributes } : {}) };
    [h.env, h.fleet] = await Promise.all([startDevServer(server), startFleet({ pool: o.spec.name, nodes: o.nodes, ...o.fleet })]);
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

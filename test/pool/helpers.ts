import type { Client, WorkflowHandle } from '@temporalio/client';
import { fleetPoolWorkflowId, type FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import type { PoolStatus } from '../../workflows/pool/api.ts';
import { waitFor, type TestFleet } from '../helpers/fleet.ts';

export function startPool(client: Client, taskQueue: string, spec: FleetPoolSpec, workflowId = fleetPoolWorkflowId(spec.name)): Promise<WorkflowHandle> {
  return client.workflow.start('fleetPool', { taskQueue, workflowId, args: [spec], staticSummary: `pool ${spec.name}` });
}

export async function poolStatus(handle: WorkflowHandle): Promise<PoolStatus> {
  return handle.query<PoolStatus>('status');
}

/** Polls the status query until `check` holds; `every` sees each status (e.g. to track a maximum). */
export async function waitStatus(
  handle: WorkflowHandle,
  check: (s: PoolStatus) => boolean,
  what: string,
  timeoutMs = 90_000,
  every: (s: PoolStatus) => void = () => {},
): Promise<PoolStatus> {
  let last: PoolStatus | undefined;
  try {
    await waitFor(
      async () => {
        try {
          last = await poolStatus(handle);
        } catch {
          return false; // no worker to answer right now
        }
        every(last);
        return check(last);
      },
      timeoutMs,
      what,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(last && { ...last, events: last.events.slice(-12) }, null, 1)}`);
  }
  return last!;
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

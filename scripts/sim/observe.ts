/** Reads what conditions look at: workflow queries and results, the provider's instances, the agents. */
import type { Client } from '@temporalio/client';
import { AgentClient } from '../../activities/agentClient.ts';
import type { NodeInstance } from '../../activities/providers/types.ts';
import type { FleetSimulator } from '../fleet-sim/simulator.ts';
import { lookup, type Condition } from './expr.ts';
import type { WorkflowKind } from './scenario.ts';

/** A workflow a step started, by label (`backup.nightly`). */
export interface Started {
  kind: WorkflowKind;
  workflowId: string;
}

export const QUERY_OF: Record<WorkflowKind, string> = { pool: 'status', rollout: 'status', backup: 'status', training: 'progress' };

export interface Observer {
  client: () => Client;
  sim: FleetSimulator;
  token: string;
  started: Map<string, Started>;
}

/** Live nodes of a pool, sorted by id (the order `node: N` targets use). */
export function liveNodes(sim: FleetSimulator, pool: string): NodeInstance[] {
  return sim.list(pool).sort((a, b) => a.id.localeCompare(b.id));
}

export async function agentCounts(sim: FleetSimulator, token: string, pool: string): Promise<Record<string, number>> {
  const out = { answering: 0, healthy: 0, unhealthy: 0, degraded: 0, cordoned: 0, active: 0 };
  await Promise.all(
    liveNodes(sim, pool)
      .filter((n) => n.state === 'running' && n.agentUrl)
      .map(async (n) => {
        try {
          const h = await new AgentClient(n.agentUrl!, token, 2000).health();
          out.answering++;
          out[h.status]++;
          if (h.drain.state === 'active') out.active++;
          else out.cordoned++;
        } catch {
          /* not answering */
        }
      }),
  );
  return out;
}

/** The value at a condition's path now (undefined when there is none yet, e.g. before a workflow's first task). */
export async function valueOf(o: Observer, c: Condition): Promise<unknown> {
  const [ns, name, ...rest] = c.path;
  if (ns === 'provider') {
    const nodes = liveNodes(o.sim, name);
    const counts: Record<string, number> = {
      live: nodes.length,
      running: nodes.filter((n) => n.state === 'running' && !n.dead).length,
      provisioning: nodes.filter((n) => n.state === 'provisioning').length,
      dead: nodes.filter((n) => n.dead).length,
    };
    return counts[rest[0]];
  }
  if (ns === 'agents') return (await agentCounts(o.sim, o.token, name))[rest[0]];
  const wf = o.started.get(`${ns}.${name}`);
  if (!wf) return undefined;
  const handle = o.client().workflow.getHandle(wf.workflowId);
  try {
    if (rest[0] === 'workflow') return (await handle.describe()).status.name.toLowerCase();
    if (rest[0] === 'history') return lookup(await historyFacts(o.client(), wf.workflowId), rest.slice(1));
    if (rest[0] === 'pending') {
      // In-flight activities by type: { attempt, worker, heartbeats (true once one was recorded) }.
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      const byType = Object.fromEntries(
        pending.map((p) => [p.activityType?.name ?? '?', { attempt: p.attempt ?? 1, worker: p.lastWorkerIdentity ?? '', heartbeats: Boolean(p.heartbeatDetails?.payloads?.length) }]),
      );
      return lookup(byType, rest.slice(1));
    }
    if (rest[0] === 'result') {
      if ((await handle.describe()).status.name !== 'COMPLETED') return undefined;
      return lookup(await handle.result(), rest.slice(1));
    }
    return lookup(await handle.query(QUERY_OF[wf.kind]), rest);
  } catch {
    return undefined; // not started yet, between runs, or the server is restarting
  }
}

/** Facts from a workflow's history (its current run): workflow task failures, and activity attempts past the first by type. */
export async function historyFacts(
  client: Client,
  workflowId: string,
  runId?: string,
): Promise<{ workflowTaskFailures: number; firstTaskFailure?: string; retried: Record<string, number>; events: number }> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const types = new Map<string, string>();
  const retried: Record<string, number> = {};
  let workflowTaskFailures = 0;
  let firstTaskFailure: string | undefined;
  for (const e of history.events ?? []) {
    const failed = e.workflowTaskFailedEventAttributes;
    if (failed) {
      workflowTaskFailures++;
      firstTaskFailure ??= `event ${e.eventId}: ${failed.failure?.message ?? 'no message'}`.slice(0, 600);
    }
    const s = e.activityTaskScheduledEventAttributes;
    if (s) types.set(String(e.eventId), s.activityType?.name ?? '?');
    const st = e.activityTaskStartedEventAttributes;
    if (st && (st.attempt ?? 1) > 1) {
      const type = types.get(String(st.scheduledEventId)) ?? '?';
      retried[type] = (retried[type] ?? 0) + 1;
    }
  }
  return { workflowTaskFailures, ...(firstTaskFailure ? { firstTaskFailure } : {}), retried, events: history.events?.length ?? 0 };
}

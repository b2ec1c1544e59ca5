import { WorkflowExecutionAlreadyStartedError, WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { INVALID_ARGUMENT } from '../../workflows/common/errors.ts';
import { fleetPoolWorkflowId } from '../../workflows/common/ids.ts';
import { parseFleetPoolSpec, type FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import type { LeaseAnswer, PoolStatus } from '../../workflows/pool/api.ts';
import { describeIfExists } from './handles.ts';
import { badInput, checkedInput, CliError, EXIT, type GlobalOptions } from './runtime.ts';
import { readSpecFile } from './spec.ts';
import { startWorkflow } from './start.ts';

/** The pool's manager: the long-lived fleetPool workflow `pool/<name>`, driven by its updates. */

/** Reads a pool spec (YAML or JSON) and checks it with the workflow's own parser. */
export function readPoolSpec(file: string): FleetPoolSpec {
  const doc = readSpecFile(file, '-f', 'the fleetPool spec');
  checkedInput(() => parseFleetPoolSpec(doc));
  return doc as unknown as FleetPoolSpec;
}

/** The running manager of the pool, or undefined when the pool has none. */
export async function runningManager(client: Client, pool: string): Promise<WorkflowHandle | undefined> {
  const desc = await describeIfExists(client, fleetPoolWorkflowId(pool));
  return desc?.status.name === 'RUNNING' ? client.workflow.getHandle(desc.workflowId) : undefined;
}

/** Starts the pool's manager, or sends the new spec to the running one. */
export async function applySpec(client: Client, o: GlobalOptions, spec: FleetPoolSpec): Promise<{ workflowId: string; action: 'started' | 'updated'; desired?: number }> {
  const workflowId = fleetPoolWorkflowId(spec.name);
  if (!(await runningManager(client, spec.name))) {
    try {
      await startWorkflow(client, o, {
        type: 'fleetPool',
        workflowId,
        input: spec,
        summary: `pool ${spec.name}`,
        details: `Managed by drydock: ${spec.minNodes}-${spec.maxNodes} nodes. Change it with 'drydock pool apply -f'.`,
      });
      return { workflowId, action: 'started' };
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      // Someone started it between our look and our start: update it instead.
    }
  }
  const { desired } = await poolUpdate<{ desired: number }>(client, spec.name, 'applySpec', spec);
  return { workflowId, action: 'updated', desired };
}

/** Sends an update to the pool's manager; rejections (bad node, budget rules) are bad input. */
export async function poolUpdate<R>(client: Client, pool: string, update: string, arg: unknown): Promise<R> {
  const handle = await runningManager(client, pool);
  if (!handle) throw badInput(`pool '${pool}' has no running manager (workflow ${fleetPoolWorkflowId(pool)}); start it with 'drydock pool apply -f <spec>'`);
  try {
    return await handle.executeUpdate<R, [unknown]>(update, { args: [arg] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const cause = err.cause;
      if (cause instanceof ApplicationFailure && cause.type === INVALID_ARGUMENT) throw badInput(`${update}: ${cause.message}`);
      throw new CliError(EXIT.workflowFailed, `${update} failed: ${(cause as Error)?.message ?? err.message}`);
    }
    throw err;
  }
}

export function describeLease(what: string, a: LeaseAnswer): string {
  return a.granted ? `${what}: granted` : `${what}: queued for the disruption budget (position ${a.position})`;
}

/** One screen of pool status for people. */
export function renderPoolStatus(s: PoolStatus): string {
  const c = s.counts;
  const lines = [
    `pool ${s.name}: ${s.phase}${s.phaseReason ? ` (${s.phaseReason})` : ''}, ${c.members} members (desired ${s.desired}, min ${s.minNodes}, max ${s.maxNodes})`,
    `  health: ${c.healthy} healthy, ${c.degraded} degraded, ${c.unhealthy} unhealthy, ${c.unreachable} unreachable; ${c.provisioning} provisioning`,
    `  disruption: ${c.disrupted}/${s.maxUnavailable} in use, ${s.queue.length} queued; replacements ${s.replacements.started} started, ${s.replacements.succeeded} succeeded, ${s.replacements.failed} failed`,
    ...(s.serving
      ? [`  serving: ${s.serving.desired.uri} (${s.serving.desired.sha256.slice(0, 12)}…), reconcile ${s.serving.reconcile}${s.serving.hold ? `, held by ${s.serving.hold.holder}` : ''}; ${s.serving.drifted.length} drifted`]
      : []),
    ...s.nodes.map((n) => `  ${n.id.padEnd(24)} ${n.phase.padEnd(10)} ${String(n.health).padEnd(11)} ${s.serving ? `${n.model === undefined ? '?' : n.model ? n.model.sha256.slice(0, 12) : 'no model'} `.padEnd(14) : ''}${(n.reasons ?? []).join('; ')}`),
  ];
  return lines.join('\n');
}

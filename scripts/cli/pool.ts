import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Command } from 'commander';
import { parseReplaceNodeInput, type ReplaceNodeInput } from '../../workflows/inputs/replaceNode.ts';
import { fleetPoolWorkflowId, replaceNodeWorkflowId } from '../../workflows/common/ids.ts';
import type { LeaseAnswer, PoolStatus } from '../../workflows/pool/api.ts';
import type { ReplaceNodeResult, ReplaceNodeStatus } from '../../workflows/replaceNode.ts';
import { checkPoolName, wholeNumber } from './flags.ts';
import { describeIfExists } from './handles.ts';
import { applySpec, describeLease, poolUpdate, readPoolSpec, renderPoolStatus, runningManager } from './poolManager.ts';
import { createProgress } from './progress.ts';
import { badInput, checkedInput, globals, output, withClient, type GlobalOptions } from './runtime.ts';
import { startAndReport } from './start.ts';
import { frameView, watchWorkflow } from './watch.ts';

/** The phases of a successful replacement, in order; the bar counts them. */
const REPLACE_PHASES = ['validating', 'cordoning', 'draining', 'terminating', 'provisioning', 'waiting-healthy', 'converging'] as const;

/** Validates with the workflow's own parser, so the CLI rejects exactly what the workflow would. */
function replaceInput(pool: string, nodeId: string, opts: { reason?: string; drainTimeout?: number; force?: boolean }): ReplaceNodeInput {
  const input: ReplaceNodeInput = { pool, nodeId };
  if (opts.reason !== undefined) input.reason = opts.reason;
  if (opts.drainTimeout !== undefined) input.drainTimeoutSeconds = opts.drainTimeout;
  if (opts.force) input.force = true;
  checkedInput(() => parseReplaceNodeInput(input));
  return input;
}

/** Shows the replacement's phases while it runs; returns its result or throws its failure. */
function watchReplace(handle: WorkflowHandle): Promise<ReplaceNodeResult> {
  // A replacement that must serve a model has one more phase: converging.
  let total = REPLACE_PHASES.length - 1;
  const view = frameView<ReplaceNodeStatus, ReplaceNodeResult>(
    'phases',
    () => handle.query<ReplaceNodeStatus>('status'),
    (s) => {
      if (s.model) total = REPLACE_PHASES.length;
      const note = s.phases[s.phases.length - 1]?.note;
      const done = s.phase === 'done' ? total : Math.min(total, s.phases.filter((p) => p.endedAt).length);
      return { done, total, label: `${s.phase}${note ? ` (${note})` : ''}` };
    },
    (r) => ({ done: total, total, label: `done (${r.replacementNodeId})` }),
  );
  return watchWorkflow(handle, view);
}

/** Starts replaceNode directly (the pool has no manager) and prints that it started, or follows it with --wait. */
function startReplace(client: Client, o: GlobalOptions, input: ReplaceNodeInput, wait: boolean): Promise<void> {
  const workflowId = replaceNodeWorkflowId(input.pool, input.nodeId);
  return startAndReport(
    client,
    o,
    {
      type: 'replaceNode',
      workflowId,
      input,
      summary: `replace ${input.pool}/${input.nodeId}`,
      details: `Started by the drydock CLI. Reason: ${input.reason ?? 'manual'}.`,
      alreadyStarted: `node ${input.nodeId} of pool ${input.pool} is already being replaced (${workflowId}); watch it with 'drydock pool status ${input.pool}'`,
    },
    { wait: wait ? watchReplace : undefined, resultText: (r) => replaceSummary(workflowId, r) },
  );
}

/** The latest run of `replace/<pool>/<node>` that is not `previousRunId`: the one the pool started for us. */
async function newReplaceRun(
  client: Client,
  workflowId: string,
  previousRunId: string | undefined,
  progress: (label: string) => void,
): Promise<{ handle: WorkflowHandle; runId: string }> {
  for (;;) {
    const desc = await describeIfExists(client, workflowId);
    if (desc && desc.runId !== previousRunId) return { handle: client.workflow.getHandle(workflowId, desc.runId), runId: desc.runId };
    progress('waiting for the disruption budget');
    await sleep(1_000);
  }
}

function replaceSummary(workflowId: string, result: ReplaceNodeResult): string {
  return [
    `${workflowId}: replaced by ${result.replacementNodeId} in ${(result.totalMs / 1000).toFixed(1)} s`,
    ...result.phases.map((p) => `  ${p.phase.padEnd(16)} ${((p.durationMs ?? 0) / 1000).toFixed(1).padStart(7)} s  ${p.note ?? ''}`),
  ].join('\n');
}

type ReplaceFlags = { reason?: string; drainTimeout?: number; force?: boolean; wait?: boolean };

export function registerPoolCommands(program: Command): void {
  const pool = program
    .command('pool')
    .description("node pools: each is managed by a fleetPool workflow (id pool/<name>) once 'pool apply' has started it");

  pool
    .command('apply')
    .description('start the pool\'s manager from a spec, or send the new spec to the running one (workflow fleetPool)')
    .requiredOption('-f, --file <spec>', 'pool spec as YAML or JSON (name, minNodes, maxNodes, health, autoscaling, disruption)')
    .action(async (opts: { file: string }, cmd: Command) => {
      const o = globals(cmd);
      const spec = readPoolSpec(opts.file);
      const r = await withClient(o, (client) => applySpec(client, o, spec));
      output(o, r, () => (r.action === 'started' ? `started ${r.workflowId}` : `updated ${r.workflowId} (desired ${r.desired} nodes)`));
    });

  pool
    .command('replace')
    .description(
      'cordon, drain, terminate and replace a node (workflow replaceNode, id replace/<pool>/<node>); ' +
        "through the pool's disruption budget when the pool has a manager, else started directly",
    )
    .argument('<pool>', 'pool name')
    .argument('<node>', 'node id')
    .option('--reason <text>', 'why; shown in the Web UI and the status query')
    .option('--drain-timeout <seconds>', 'how long to wait for in-flight work (default 300; without a manager only)', wholeNumber)
    .option('--force', 'on drain timeout, cancel the remaining work instead of giving up')
    .option('--wait', 'wait for the end and show the phases; exit 1 if the replacement fails')
    .action(async (poolName: string, nodeId: string, opts: ReplaceFlags, cmd: Command) => {
      const o = globals(cmd);
      const input = replaceInput(poolName, nodeId, opts);
      await withClient(o, async (client) => {
        const workflowId = replaceNodeWorkflowId(poolName, nodeId);
        if (!(await runningManager(client, poolName))) return startReplace(client, o, input, Boolean(opts.wait));
        if (opts.drainTimeout !== undefined) throw badInput(`--drain-timeout: pool ${poolName} has a manager, which drains with its spec's health.drainTimeoutSeconds`);
        const before = (await describeIfExists(client, workflowId))?.runId;
        const lease = await poolUpdate<LeaseAnswer>(client, poolName, 'replaceNode', { nodeId, reason: input.reason, force: input.force });
        const via = fleetPoolWorkflowId(poolName);
        if (!opts.wait) {
          output(o, { workflowId, via, lease, status: lease.granted ? 'RUNNING' : 'QUEUED' }, () => describeLease(`replace ${nodeId} via ${via}`, lease));
          return;
        }
        const progress = createProgress(workflowId, 'phases');
        let run: { handle: WorkflowHandle; runId: string };
        try {
          run = await newReplaceRun(client, workflowId, before, (label) => progress.update(0, REPLACE_PHASES.length, label));
        } finally {
          progress.stop();
        }
        const result = await watchReplace(run.handle);
        output(o, { workflowId, runId: run.runId, via, status: 'COMPLETED', result }, () => replaceSummary(workflowId, result));
      });
    });

  for (const [verb, update] of [
    ['cordon', 'cordonNode'],
    ['uncordon', 'uncordonNode'],
  ] as const) {
    pool
      .command(verb)
      .description(
        verb === 'cordon'
          ? "stop new work on a node, through the pool's disruption budget (queued when the budget is full)"
          : "give a node cordoned with 'pool cordon' back to service",
      )
      .argument('<pool>', 'pool name')
      .argument('<node>', 'node id')
      .action(async (poolName: string, nodeId: string, _opts, cmd: Command) => {
        const o = globals(cmd);
        checkPoolName(poolName);
        const answer = await withClient(o, (client) => poolUpdate<LeaseAnswer | { nodeId: string }>(client, poolName, update, { nodeId }));
        output(o, { pool: poolName, nodeId, ...answer }, () => ('granted' in answer ? describeLease(`${verb} ${nodeId}`, answer) : `${verb} ${nodeId}: done`));
      });
  }

  pool
    .command('status')
    .description("the pool manager's view (members, health, disruption budget) and the pool's replacements, newest first")
    .argument('<pool>', 'pool name')
    .option('--limit <n>', 'at most this many replacements', wholeNumber, 20)
    .action(async (poolName: string, opts: { limit: number }, cmd: Command) => {
      const o = globals(cmd);
      checkPoolName(poolName);
      const { manager, rows } = await withClient(o, async (client) => {
        const handle = await runningManager(client, poolName);
        const manager = handle ? await handle.query<PoolStatus>('status') : null;
        const rows = [];
        const query = `WorkflowType = 'replaceNode' AND DrydockPool = '${poolName}'`;
        for await (const wf of client.workflow.list({ query })) {
          rows.push({
            workflowId: wf.workflowId,
            runId: wf.runId,
            node: wf.searchAttributes.DrydockNode?.[0] as string | undefined,
            phase: wf.searchAttributes.DrydockPhase?.[0] as string | undefined,
            status: wf.status.name,
            startTime: wf.startTime.toISOString(),
            closeTime: wf.closeTime?.toISOString(),
          });
          if (rows.length >= opts.limit) break;
        }
        return { manager, rows };
      });
      output(o, { pool: poolName, manager, replacements: rows }, () =>
        [
          manager ? renderPoolStatus(manager) : `pool ${poolName}: no manager running ('drydock pool apply -f <spec>' starts one)`,
          rows.length === 0
            ? `pool ${poolName}: no replacements recorded`
            : `pool ${poolName}: ${rows.filter((r) => r.status === 'RUNNING').length} replacement(s) running`,
          ...rows.map((r) => `  ${(r.node ?? '?').padEnd(24)} ${r.status.padEnd(11)} ${(r.phase ?? '').padEnd(16)} ${r.startTime}`),
        ].join('\n'),
      );
    });
}

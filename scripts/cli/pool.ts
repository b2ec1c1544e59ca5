import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { InvalidArgumentError, type Command } from 'commander';
import { parseReplaceNodeInput, replaceNodeWorkflowId, type ReplaceNodeInput } from '../../workflows/inputs/replaceNode.ts';
import { POOL_NAME, POOL_NAME_HELP } from '../../workflows/inputs/validate.ts';
import type { ReplaceNodeResult, ReplaceNodeStatus } from '../../workflows/replaceNode.ts';
import { badInput, checkedInput, globals, output, withClient, type GlobalOptions } from './runtime.ts';
import { watchWorkflow } from './watch.ts';

/** The phases of a successful replacement, in order; the bar counts them. */
const REPLACE_PHASES = ['validating', 'cordoning', 'draining', 'terminating', 'provisioning', 'waiting-healthy'] as const;

function integer(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('expected a whole number of seconds');
  return Number(v);
}

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
  const total = REPLACE_PHASES.length;
  return watchWorkflow<ReplaceNodeResult>(
    handle,
    'phases',
    async () => {
      const s = await handle.query<ReplaceNodeStatus>('status');
      const note = s.phases[s.phases.length - 1]?.note;
      const done = s.phase === 'done' ? total : Math.min(total, s.phases.filter((p) => p.endedAt).length);
      return { done, total, label: `${s.phase}${note ? ` (${note})` : ''}` };
    },
    (r) => ({ done: total, total, label: `done (${r.replacementNodeId})` }),
  );
}

async function startReplace(client: Client, o: GlobalOptions, input: ReplaceNodeInput): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const workflowId = replaceNodeWorkflowId(input.pool, input.nodeId);
  try {
    return await client.workflow.start('replaceNode', {
      taskQueue: o.taskQueue,
      workflowId,
      args: [input],
      staticSummary: `replace ${input.pool}/${input.nodeId}`,
      staticDetails: `Started by the drydock CLI. Reason: ${input.reason ?? 'manual'}.`,
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw badInput(`node ${input.nodeId} of pool ${input.pool} is already being replaced (${workflowId}); watch it with 'drydock pool status ${input.pool}'`);
    }
    throw err;
  }
}

export function registerPoolCommands(program: Command): void {
  const pool = program
    .command('pool')
    .description(
      'node pools. Only what exists today: replace a node, and list the replacements of a pool. ' +
        'apply, cordon and uncordon come with the fleetPool workflow, which is not built yet.',
    );

  pool
    .command('replace')
    .description('cordon, drain, terminate and replace a node (workflow replaceNode, id replace/<pool>/<node>)')
    .argument('<pool>', 'pool name')
    .argument('<node>', 'node id')
    .option('--reason <text>', 'why; shown in the Web UI and the status query')
    .option('--drain-timeout <seconds>', 'how long to wait for in-flight work (default 300)', integer)
    .option('--force', 'on drain timeout, cancel the remaining work instead of giving up')
    .option('--wait', 'wait for the end and show the phases; exit 1 if the replacement fails')
    .action(async (poolName: string, nodeId: string, opts: { reason?: string; drainTimeout?: number; force?: boolean; wait?: boolean }, cmd: Command) => {
      const o = globals(cmd);
      const input = replaceInput(poolName, nodeId, opts);
      await withClient(o, async (client) => {
        const handle = await startReplace(client, o, input);
        const started = { workflowId: handle.workflowId, runId: handle.firstExecutionRunId };
        if (!opts.wait) {
          output(o, { ...started, status: 'RUNNING' }, () => `started ${started.workflowId} (run ${started.runId})`);
          return;
        }
        const result = await watchReplace(handle);
        output(o, { ...started, status: 'COMPLETED', result }, () =>
          [
            `${started.workflowId}: replaced by ${result.replacementNodeId} in ${(result.totalMs / 1000).toFixed(1)} s`,
            ...result.phases.map((p) => `  ${p.phase.padEnd(16)} ${((p.durationMs ?? 0) / 1000).toFixed(1).padStart(7)} s  ${p.note ?? ''}`),
          ].join('\n'),
        );
      });
    });

  pool
    .command('status')
    .description(
      'list the replacements of a pool recorded in Temporal (search attribute DrydockPool), newest first. ' +
        'Node membership and health come with the fleetPool workflow, which is not built yet.',
    )
    .argument('<pool>', 'pool name')
    .option('--limit <n>', 'at most this many rows', integer, 20)
    .action(async (poolName: string, opts: { limit: number }, cmd: Command) => {
      const o = globals(cmd);
      if (!POOL_NAME.test(poolName)) throw badInput(`pool: '${poolName}' is not valid: ${POOL_NAME_HELP}`);
      const rows = await withClient(o, async (client) => {
        const out = [];
        const query = `WorkflowType = 'replaceNode' AND DrydockPool = '${poolName}'`;
        for await (const wf of client.workflow.list({ query })) {
          out.push({
            workflowId: wf.workflowId,
            runId: wf.runId,
            node: wf.searchAttributes.DrydockNode?.[0] as string | undefined,
            phase: wf.searchAttributes.DrydockPhase?.[0] as string | undefined,
            status: wf.status.name,
            startTime: wf.startTime.toISOString(),
            closeTime: wf.closeTime?.toISOString(),
          });
          if (out.length >= opts.limit) break;
        }
        return out;
      });
      output(o, { pool: poolName, replacements: rows }, () =>
        rows.length === 0
          ? `pool ${poolName}: no replacements recorded`
          : [
              `pool ${poolName}: ${rows.filter((r) => r.status === 'RUNNING').length} replacement(s) running`,
              ...rows.map((r) => `  ${(r.node ?? '?').padEnd(24)} ${r.status.padEnd(11)} ${(r.phase ?? '').padEnd(16)} ${r.startTime}`),
            ].join('\n'),
      );
    });
}

import type { Command } from 'commander';
import type { WorkflowHandle } from '@temporalio/client';
import { rollingUpdateWorkflowId } from '../../../workflows/common/ids.ts';
import {
  abortRolloutUpdate,
  pauseRolloutUpdate,
  promoteRolloutUpdate,
  resumeRolloutUpdate,
  setMaxUnavailableUpdate,
  type RolloutPhase,
} from '../../../workflows/rollout/api.ts';
import { DRYDOCK_PHASE, DRYDOCK_POOL } from '../../../workflows/searchAttributes.ts';
import { checkPoolName, decimalNumber, wholeNumber } from '../flags.ts';
import { globals, output, withClient } from '../runtime.ts';
import { runWorkflow } from '../start.ts';
import { watchWorkflow } from '../watch.ts';
import { webUiLine } from '../webUi.ts';
import { checkMaxUnavailable, rolloutInput, rolloutRef, type RolloutRef, type StartFlags } from './input.ts';
import { renderRolloutStatus, resultText, rolloutTable, startedText, unansweredStatusText, type RolloutRow } from './render.ts';
import { downloadProgressOf, existingRollout, rolloutStatusOf, rolloutUpdate, rolloutView } from './workflow.ts';

/** `drydock rollout …`: a thin client of the rollingUpdate workflow (id rollout/<pool>/<id>). */
export function registerRolloutCommands(program: Command): void {
  const rollout = program
    .command('rollout')
    .description('roll a model across a pool in health-gated batches, or blue-green (workflow rollingUpdate, id rollout/<pool>/<id>)');
  registerStart(rollout);
  registerStatus(rollout);
  registerList(rollout);
  registerControls(rollout);
}

function registerStart(rollout: Command): void {
  rollout
    .command('start')
    .description('start a rollout from flags and/or --spec; the input is checked before anything starts (exit 2 naming the field)')
    .option('--pool <name>', 'the pool to update')
    .option('--model <file>', 'the model file as the nodes see it (made absolute; its sha256 is computed here unless --sha256)')
    .option('--sha256 <hex>', "the model file's sha256 (skips reading the file here)")
    .option('--id <id>', 'rollout id (default: the model file name and the UTC time)')
    .option('--strategy <s>', 'rolling (default) or blueGreen')
    .option('--max-unavailable <n|p%>', 'rolling: most nodes out of service at once (default 1)')
    .option('--max-surge <n|p%>', 'blue-green: most green nodes provisioning at once (default 100%)')
    .option('--steps <json>', 'rolling: batches and pauses, e.g. \'[{"batch":1},{"pause":{}},{"batch":"50%"}]\'')
    .option('--on-failure <action>', 'rollback (default) or pause')
    .option('--expect <text>', 'analysis: text the smoke generation must contain')
    .option('--prompt <text>', 'analysis: prompt of the smoke generation')
    .option('--max-latency-ms <ms>', 'analysis: slowest acceptable smoke generation', wholeNumber)
    .option('--analysis-seconds <s>', 'analysis: how long to watch each batch (0 checks once)', wholeNumber)
    .option('--max-error-rate <r>', 'analysis: largest share (0-1) of 5xx answers to client requests on updated nodes (default 0.05)', decimalNumber)
    .option('--scale-down-delay <s>', 'blue-green: seconds blue is kept after the switch', wholeNumber)
    .option('--pause-before-switch', "blue-green: wait for 'rollout promote' before switching")
    .option('--spec <file>', 'the full rollingUpdate input as JSON (or YAML); flags override its fields')
    .option('--wait', 'follow it to the end; exit 1 if it rolls back, is aborted or fails')
    .action(async (flags: StartFlags, cmd: Command) => {
      const o = globals(cmd);
      const { input, id } = await rolloutInput(flags);
      const ref = { pool: input.pool, id, workflowId: rollingUpdateWorkflowId(input.pool, id) };
      await runWorkflow(
        o,
        {
          type: 'rollingUpdate',
          workflowId: ref.workflowId,
          input,
          // An id names one rollout for good, so status and list never mix two runs.
          rejectDuplicate: true,
          summary: `rollout ${input.target.model.uri} to pool ${input.pool}`,
          details: `Started by the drydock CLI: ${input.strategy ?? 'rolling'}, on failure ${input.onFailure ?? 'rollback'}. Control it with 'drydock rollout pause|resume|abort|promote ${id} --pool ${input.pool}'.`,
          alreadyStarted: `--id: rollout '${id}' of pool ${input.pool} exists already (${ref.workflowId}); pick another --id`,
        },
        {
          fields: { id, pool: input.pool },
          startedText: (runId) => startedText(ref, runId, o.namespace, webUiLine(ref.workflowId, runId)),
          announce: true,
          wait: flags.wait ? (handle) => watchWorkflow(handle, rolloutView(handle)) : undefined,
          resultText: (result) => resultText(ref.workflowId, result),
        },
      );
    });
}

function registerStatus(rollout: Command): void {
  rollout
    .command('status')
    .description('phase, per-node states, batches and analyses of a rollout')
    .argument('<id>', 'rollout id (or the workflow id rollout/<pool>/<id>)')
    .option('--pool <name>', 'its pool')
    .action(async (idArg: string, opts: { pool?: string }, cmd: Command) => {
      const o = globals(cmd);
      const ref = rolloutRef(idArg, opts.pool);
      const { desc, status, downloads } = await withClient(o, async (client) => {
        const { handle, desc } = await existingRollout(client, ref);
        return { desc, status: await rolloutStatusOf(handle, desc), downloads: await downloadProgressOf(client, desc) };
      });
      output(o, { workflowId: ref.workflowId, runId: desc.runId, status: desc.status.name, rollout: status, downloads: Object.fromEntries(downloads) }, () =>
        status ? renderRolloutStatus(status, desc.status.name, downloads) : unansweredStatusText(ref.workflowId, desc.status.name, desc.typedSearchAttributes.get(DRYDOCK_PHASE)),
      );
    });
}

function registerList(rollout: Command): void {
  rollout
    .command('list')
    .description('rollouts known to Temporal, newest first')
    .option('--pool <name>', "only this pool's")
    .option('--limit <n>', 'at most this many', wholeNumber, 20)
    .action(async (opts: { pool?: string; limit: number }, cmd: Command) => {
      const o = globals(cmd);
      if (opts.pool !== undefined) checkPoolName(opts.pool);
      const query = `WorkflowType = 'rollingUpdate'${opts.pool ? ` AND ${DRYDOCK_POOL.name} = '${opts.pool}'` : ''}`;
      const rows = await withClient(o, async (client) => {
        const out: RolloutRow[] = [];
        for await (const wf of client.workflow.list({ query })) {
          if (out.length >= opts.limit) break;
          const [, pool = '', ...id] = wf.workflowId.split('/');
          out.push({
            workflowId: wf.workflowId,
            id: id.join('/'),
            pool: wf.typedSearchAttributes.get(DRYDOCK_POOL) ?? pool,
            status: wf.status.name,
            phase: wf.typedSearchAttributes.get(DRYDOCK_PHASE) as RolloutPhase | undefined,
            startTime: wf.startTime.toISOString(),
            closeTime: wf.closeTime?.toISOString(),
          });
        }
        return out;
      });
      output(o, { rollouts: rows }, () => rolloutTable(rows, opts.pool));
    });
}

/** pause, resume, abort, promote, set-max-unavailable: each an update of the running rollout. */
function registerControls(rollout: Command): void {
  const control = (verb: string, description: string) =>
    rollout.command(verb).description(description).argument('<id>', 'rollout id (or the workflow id rollout/<pool>/<id>)').option('--pool <name>', 'its pool');
  // Commander passes positionals first, then opts and the command; set-max-unavailable has one more positional.
  const act = <R>(
    c: Command,
    name: string,
    send: (h: WorkflowHandle, opts: Record<string, unknown>, value: unknown) => Promise<R>,
    human: (ref: RolloutRef, r: R) => string,
    check?: (value: string) => unknown,
  ) =>
    c.action(async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command;
      const opts = cmd.opts<Record<string, unknown>>();
      const [idArg, raw] = cmd.processedArgs as string[];
      const o = globals(cmd);
      const ref = rolloutRef(idArg, opts.pool as string | undefined);
      const value = check?.(raw);
      const answer = await withClient(o, (client) => rolloutUpdate(client, ref, name, (h) => send(h, opts, value)));
      output(o, { workflowId: ref.workflowId, update: name, ...answer }, () => human(ref, answer));
    });
  // pause and abort take a --reason and answer the phase.
  const withReason = (verb: 'pause' | 'abort', update: typeof pauseRolloutUpdate, description: string, did: string) =>
    act(
      control(verb, description).option('--reason <text>', 'why; shown in status and the Web UI'),
      verb,
      (h, opts) => h.executeUpdate(update, { args: [opts.reason === undefined ? {} : { reason: String(opts.reason) }] }),
      (ref, r) => `${did} ${ref.workflowId} (phase ${r.phase})`,
    );

  withReason('pause', pauseRolloutUpdate, 'stop starting nodes; nodes already walking finish their step', 'paused');
  act(
    control('resume', 'continue a paused rollout (a failed analysis it paused on is accepted)'),
    'resume',
    (h) => h.executeUpdate(resumeRolloutUpdate),
    (ref, r) => `resumed ${ref.workflowId} (phase ${r.phase})`,
  );
  withReason('abort', abortRolloutUpdate, 'stop and roll every updated node back', 'aborting');
  act(
    control('promote', 'skip the current pause (blue-green: the wait before the switch)').option('--all', 'skip every later pause too'),
    'promote',
    (h, opts) => h.executeUpdate(promoteRolloutUpdate, { args: [{ all: Boolean(opts.all) }] }),
    (ref, r) => `promoted ${ref.workflowId} (phase ${r.phase}, step ${r.step})`,
  );
  act(
    control('set-max-unavailable', 'change how many nodes may be out of service at once').argument('<value>', 'a node count or a percent like 25%'),
    'setMaxUnavailable',
    (h, _opts, value) => h.executeUpdate(setMaxUnavailableUpdate, { args: [{ maxUnavailable: value as number | string }] }),
    (ref, r) => `${ref.workflowId}: maxUnavailable now ${r.maxUnavailable}`,
    checkMaxUnavailable,
  );
}

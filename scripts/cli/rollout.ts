import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { basename, extname, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { InvalidArgumentError, type Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { connectConfig } from '../../workers/connection.ts';
import { rollingUpdateWorkflowId } from '../../workflows/common/ids.ts';
import { parseRollingUpdateInput, ROLLOUT_ID, type RollingUpdateInput } from '../../workflows/inputs/rollingUpdate.ts';
import { amount, POOL_NAME, POOL_NAME_HELP } from '../../workflows/inputs/validate.ts';
import {
  abortRolloutUpdate,
  pauseRolloutUpdate,
  promoteRolloutUpdate,
  resumeRolloutUpdate,
  rolloutStatusQuery,
  setMaxUnavailableUpdate,
  type RolloutPhase,
  type RolloutResult,
  type RolloutStatus,
} from '../../workflows/rollout/api.ts';
import { DRYDOCK_PHASE, DRYDOCK_POOL } from '../../workflows/searchAttributes.ts';
import { createProgress } from './progress.ts';
import { badInput, checkedInput, CliError, EXIT, globals, output, withClient, workflowFailure, type GlobalOptions } from './runtime.ts';

/** `drydock rollout …`: a thin client of the rollingUpdate workflow (id rollout/<pool>/<id>). */

const POLL_MS = 1_000;
/** The failure types a finished-but-unsuccessful rollout ends with; details[0] is its RolloutResult. */
const ROLLOUT_FAILURES: Record<string, string> = { RolloutRolledBack: 'rolled back', RolloutAborted: 'was aborted', RolloutFailed: 'failed' };
/** Node states worth a line of their own while watching (the steps in between would flood CI logs). */
const NOTABLE_NODE_STATES = new Set(['done', 'failed', 'rolled-back', 'standby', 'terminated', 'left']);

export interface StartFlags {
  pool?: string;
  model?: string;
  sha256?: string;
  id?: string;
  strategy?: string;
  maxUnavailable?: string;
  maxSurge?: string;
  steps?: string;
  onFailure?: string;
  expect?: string;
  prompt?: string;
  maxLatencyMs?: number;
  analysisSeconds?: number;
  maxErrorRate?: number;
  scaleDownDelay?: number;
  pauseBeforeSwitch?: boolean;
  spec?: string;
  wait?: boolean;
}

/** Which flag sets which input field, so an error the parser names by field also names the flag. */
const FLAG_OF_FIELD: [field: string, flag: keyof StartFlags, name: string][] = [
  ['pool', 'pool', '--pool'],
  ['target.model.uri', 'model', '--model'],
  ['target.model.sha256', 'sha256', '--sha256'],
  ['strategy', 'strategy', '--strategy'],
  ['maxUnavailable', 'maxUnavailable', '--max-unavailable'],
  ['maxSurge', 'maxSurge', '--max-surge'],
  ['steps', 'steps', '--steps'],
  ['onFailure', 'onFailure', '--on-failure'],
  ['analysis.expect', 'expect', '--expect'],
  ['analysis.prompt', 'prompt', '--prompt'],
  ['analysis.maxLatencyMs', 'maxLatencyMs', '--max-latency-ms'],
  ['analysis.intervalSeconds', 'analysisSeconds', '--analysis-seconds'],
  ['analysis.maxErrorRate', 'maxErrorRate', '--max-error-rate'],
  ['scaleDownDelaySeconds', 'scaleDownDelay', '--scale-down-delay'],
  ['pauseBeforeSwitch', 'pauseBeforeSwitch', '--pause-before-switch'],
];

function wholeNumber(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('expected a whole number');
  return Number(v);
}

function decimalNumber(v: string): number {
  if (!/^\d+(\.\d+)?$/.test(v.trim())) throw new InvalidArgumentError('expected a number such as 0.05');
  return Number(v);
}

/** "3" is a node count, "25%" a percent; anything else goes to the parser as-is, which names the field. */
function countOrPercent(v: string): number | string {
  return /^\d+$/.test(v.trim()) ? Number(v.trim()) : v.trim();
}

function readSpec(file: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw badInput(`--spec: cannot read ${file} as JSON or YAML: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw badInput(`--spec: ${file} must hold one object (the rollingUpdate input)`);
  return doc as Record<string, unknown>;
}

function asObject(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** The sha256 of a local file, streamed so multi-GB models do not sit in memory. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    await pipeline(createReadStream(file), hash);
  } catch (err) {
    throw badInput(
      `--model: cannot read ${file} to compute its sha256 (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); ` +
        'give --sha256 when the file exists on the nodes only',
    );
  }
  return hash.digest('hex');
}

/** A path or file:// URI as the absolute path the nodes are given. */
function absoluteModelPath(model: string): string {
  if (model.startsWith('file://')) {
    try {
      return fileURLToPath(model);
    } catch (err) {
      throw badInput(`--model: '${model}' is not a file:/// URI: ${(err as Error).message}`);
    }
  }
  return resolve(model);
}

/** A unique, readable rollout id: the model's base name and the UTC time, cut to ROLLOUT_ID. */
export function defaultRolloutId(modelPath: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
  const base = basename(modelPath, extname(modelPath))
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 64 - stamp.length - 1)
    .replace(/[^A-Za-z0-9]+$/, '');
  return base ? `${base}-${stamp}` : `rollout-${stamp}`;
}

/**
 * The workflow input from --spec with flags on top, checked by the workflow's own parser (exit 2
 * naming the field, and the flag that set it); computes the model's sha256 when none is given.
 */
export async function rolloutInput(flags: StartFlags): Promise<{ input: RollingUpdateInput; id: string }> {
  const input: Record<string, unknown> = flags.spec ? readSpec(flags.spec) : {};
  const set = (k: string, v: unknown) => v !== undefined && (input[k] = v);
  set('pool', flags.pool);
  set('strategy', flags.strategy);
  set('maxUnavailable', flags.maxUnavailable === undefined ? undefined : countOrPercent(flags.maxUnavailable));
  set('maxSurge', flags.maxSurge === undefined ? undefined : countOrPercent(flags.maxSurge));
  set('onFailure', flags.onFailure);
  set('scaleDownDelaySeconds', flags.scaleDownDelay);
  if (flags.pauseBeforeSwitch) input.pauseBeforeSwitch = true;
  if (flags.steps !== undefined) {
    try {
      input.steps = JSON.parse(flags.steps);
    } catch (err) {
      throw badInput(`--steps: not JSON (${(err as Error).message}); expected e.g. '[{"batch":1},{"pause":{}},{"batch":"50%"}]'`);
    }
  }
  const analysis = { ...asObject(input.analysis) };
  const setA = (k: string, v: unknown) => v !== undefined && (analysis[k] = v);
  setA('expect', flags.expect);
  setA('prompt', flags.prompt);
  setA('maxLatencyMs', flags.maxLatencyMs);
  setA('intervalSeconds', flags.analysisSeconds);
  setA('maxErrorRate', flags.maxErrorRate);
  if (Object.keys(analysis).length) input.analysis = analysis;

  if (input.pool === undefined) throw badInput('pool: is required (--pool)');
  const target = asObject(input.target);
  const model = { ...asObject(target.model) };
  if (flags.model !== undefined) {
    model.uri = absoluteModelPath(flags.model);
    // A new file makes the spec's checksum stale.
    delete model.sha256;
  }
  if (flags.sha256 !== undefined) model.sha256 = flags.sha256;
  if (model.uri === undefined) throw badInput('target.model.uri: is required (--model FILE: the model file as the nodes see it)');
  if (model.sha256 === undefined && typeof model.uri === 'string') model.sha256 = await sha256File(absoluteModelPath(model.uri));
  input.target = { ...target, model };

  try {
    checkedInput(() => parseRollingUpdateInput(input));
  } catch (err) {
    if (err instanceof CliError && err.exitCode === EXIT.badInput) {
      const field = err.message.slice(0, err.message.indexOf(':'));
      const hit = FLAG_OF_FIELD.find(([f]) => field === f || field.startsWith(`${f}[`) || field.startsWith(`${f}.`));
      const from = hit && flags[hit[1]] !== undefined ? ` (from ${hit[2]})` : flags.spec ? ` (in ${flags.spec})` : '';
      throw badInput(`${err.message}${from}`);
    }
    throw err;
  }
  const id = flags.id ?? defaultRolloutId(String(model.uri));
  if (!ROLLOUT_ID.test(id)) throw badInput(`--id: '${id}' is not valid: letters, digits, . _ -, at most 64, starting with a letter or digit`);
  return { input: input as unknown as RollingUpdateInput, id };
}

/** Where the Web UI shows a workflow: Temporal Cloud, or a dev server (its UI listens on port + 1000). */
function webUiUrl(workflowId: string, runId?: string): string | undefined {
  const { connectionOptions, namespace } = connectConfig();
  const address = connectionOptions.address ?? 'localhost:7233';
  const path = `/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}${runId ? `/${runId}` : ''}`;
  const [host, port] = address.split(':');
  if (host.endsWith('.tmprl.cloud')) return `https://cloud.temporal.io${path}`;
  if (['localhost', '127.0.0.1', '::1', '[::1]'].includes(host)) return `http://localhost:${Number(port ?? 7233) + 1000}${path}`;
  return undefined;
}

/** The id and pool of a rollout from `ID --pool P`, or from a full workflow id `rollout/<pool>/<id>`. */
function rolloutRef(arg: string, pool: string | undefined): { pool: string; id: string; workflowId: string } {
  let id = arg;
  if (arg.startsWith('rollout/')) {
    const [, p, ...rest] = arg.split('/');
    if (pool !== undefined && pool !== p) throw badInput(`--pool: '${pool}' does not match the workflow id ${arg}`);
    pool = p;
    id = rest.join('/');
  }
  if (pool === undefined) throw badInput('pool: is required (--pool, or give the workflow id rollout/<pool>/<id>)');
  if (!POOL_NAME.test(pool)) throw badInput(`pool: '${pool}' is not valid: ${POOL_NAME_HELP}`);
  if (!ROLLOUT_ID.test(id)) throw badInput(`id: '${id}' is not a rollout id (letters, digits, . _ -, at most 64)`);
  return { pool, id, workflowId: rollingUpdateWorkflowId(pool, id) };
}

/** A handle on a rollout that exists, with its description, or exit 2 saying so. */
async function existingRollout(client: Client, ref: { pool: string; id: string; workflowId: string }): Promise<{ handle: WorkflowHandle; desc: WorkflowExecutionDescription }> {
  const handle = client.workflow.getHandle(ref.workflowId);
  try {
    return { handle, desc: await handle.describe() };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw badInput(`no rollout '${ref.id}' in pool ${ref.pool} (workflow ${ref.workflowId}); 'drydock rollout list --pool ${ref.pool}' shows them`);
    throw err;
  }
}

/** gRPC UNAVAILABLE: the server itself is gone (withClient turns that into exit 3), not just the worker. */
function serverGone(err: unknown): boolean {
  return [err, (err as { cause?: unknown })?.cause].some((e) => (e as { code?: unknown })?.code === 14);
}

/** The RolloutResult a finished rollout failed with (details[0] of its RolloutRolledBack/Aborted/Failed). */
function failedResult(err: unknown): { type: string; result?: RolloutResult } | undefined {
  const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
  if (!(cause instanceof ApplicationFailure) || !cause.type || !(cause.type in ROLLOUT_FAILURES)) return undefined;
  const result = cause.details?.[0] as RolloutResult | undefined;
  return { type: cause.type, result: result?.status ? result : undefined };
}

/** Exit 1 for a rollout that rolled back, was aborted or failed, with its reason and its RolloutResult in the details. */
function rolloutFailure(err: unknown, workflowId: string): { error: CliError; result?: RolloutResult } {
  const base = workflowFailure(err, workflowId);
  const f = failedResult(err);
  if (!f) return { error: base };
  const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
  const reason = f.result?.status.reason ?? cause.message;
  return { error: new CliError(EXIT.workflowFailed, `${workflowId} ${ROLLOUT_FAILURES[f.type]}: ${reason}`, { ...(base.details as object), result: f.result }), result: f.result };
}

const nodeCount = (s: RolloutStatus) => `${s.counts.done}/${s.counts.total}`;

/**
 * What changed between two polls, as lines: nodes finishing or failing and new analyses (under the
 * phase they happened in), then a phase change last, so the final line is where the rollout stands.
 */
export function rolloutChanges(prev: RolloutStatus | undefined, s: RolloutStatus): string[] {
  const lines: string[] = [];
  const during = prev?.phase ?? s.phase;
  const before = new Map((prev?.nodes ?? []).map((n) => [n.id, n.state]));
  for (const n of s.nodes) {
    if (before.get(n.id) === n.state || !NOTABLE_NODE_STATES.has(n.state)) continue;
    lines.push(`${during}: node ${n.id} ${n.state}${n.role ? ` (${n.role})` : ''}${n.error ? `: ${n.error}` : ''}`);
  }
  for (const a of s.analyses.slice(prev?.analyses.length ?? 0)) lines.push(`${during}: ${describeAnalysis(a)}`);
  if (!prev || prev.phase !== s.phase || (prev.reason ?? '') !== (s.reason ?? '')) lines.push(`${s.phase}${s.reason ? `: ${s.reason}` : ''}`);
  return lines;
}

function describeAnalysis(a: RolloutStatus['analyses'][number]): string {
  return (
    `analysis of batch ${a.batch + 1} ${a.ok ? 'passed' : 'FAILED'}: ${a.checks} checks, ${a.failures} failed, ` +
    `latency max ${Math.round(a.maxLatencyMs)} ms mean ${Math.round(a.meanLatencyMs)} ms` +
    `${a.traffic?.requests ? `; client traffic ${a.traffic.requests} requests, ${a.traffic.errors} 5xx, mean ${a.traffic.meanLatencyMs} ms` : ''}${a.reason ? ` (${a.reason})` : ''}`
  );
}

/**
 * Follows a rollout until it ends: a bar of nodes done on a terminal, a line per change otherwise.
 * Not watch.ts's watchWorkflow: a failed rollout's RolloutResult (the failure's details) is needed too.
 */
async function watchRollout(handle: WorkflowHandle): Promise<RolloutResult> {
  const progress = createProgress(handle.workflowId, 'nodes');
  const outcome = handle.result().then(
    (value: RolloutResult) => ({ ok: true as const, value }),
    (err: unknown) => ({ ok: false as const, err }),
  );
  let closed = false;
  void outcome.then(() => (closed = true));
  let last: RolloutStatus | undefined;
  // cli-progress draws 0/0 as a full bar: on a terminal, wait for the plan before drawing one.
  const draw = (done: number, total: number, label: string) => (total > 0 || !process.stderr.isTTY) && progress.update(done, total, label);
  const show = (s: RolloutStatus) => {
    for (const line of rolloutChanges(last, s)) draw(s.counts.done, s.counts.total, line);
    last = s;
  };
  try {
    while (!closed) {
      try {
        show(await handle.query(rolloutStatusQuery));
      } catch (err) {
        if (serverGone(err)) throw err;
        // No worker answers queries right now (none running, or it is restarting).
        if (!closed) draw(last?.counts.done ?? 0, last?.counts.total ?? 0, 'waiting for a drydock worker');
      }
      await Promise.race([sleep(POLL_MS), outcome]);
    }
    const r = await outcome;
    if (r.ok) {
      show(r.value.status);
      return r.value;
    }
    if (!(r.err instanceof WorkflowFailedError)) throw r.err;
    const failure = rolloutFailure(r.err, handle.workflowId);
    if (failure.result) show(failure.result.status);
    throw failure.error;
  } finally {
    progress.stop();
  }
}

function seconds(from: string, to?: string): string {
  return `${((new Date(to ?? Date.now()).getTime() - new Date(from).getTime()) / 1000).toFixed(0)} s`;
}

/** One screen of a rollout for people. */
export function renderRolloutStatus(s: RolloutStatus, workflowStatus?: string): string {
  const c = s.counts;
  const head = `rollout/${s.pool}/${s.id}: ${workflowStatus ? `${workflowStatus}, ` : ''}${s.phase}${s.reason ? ` (${s.reason})` : ''}`;
  const lines = [
    head,
    `  ${s.strategy} to ${s.target.uri} (sha256 ${s.target.sha256.slice(0, 12)}…), step ${Math.min(s.step + 1, Math.max(s.steps, 1))}/${Math.max(s.steps, 1)}, ` +
      `maxUnavailable ${s.maxUnavailable} (at most ${s.maxDisrupted} out of service${s.poolBudget ? ", within the pool's budget" : ''})`,
    `  nodes: ${c.done}/${c.total} done, ${c.inProgress} in progress, ${c.pending} pending, ${c.failed} failed, ${c.rolledBack} rolled back; ` +
      `started ${s.startedAt}${s.finishedAt ? `, took ${seconds(s.startedAt, s.finishedAt)}` : `, running ${seconds(s.startedAt)}`}`,
  ];
  if (s.batches.length) lines.push(`  batches: ${s.batches.map((b, i) => `${i + 1}: ${b.join(' ')}`).join(' | ')}`);
  for (const n of s.nodes) {
    const extra = [n.role, n.direction === 'rollback' ? 'rolling back' : '', n.error ?? ''].filter(Boolean).join(', ');
    lines.push(`  ${n.id.padEnd(24)} ${(n.batch === undefined ? '' : `batch ${n.batch + 1}`).padEnd(9)} ${n.state.padEnd(14)} ${extra}`.trimEnd());
  }
  if (s.analyses.length) lines.push('  analyses:', ...s.analyses.map((a) => `    ${describeAnalysis(a)}`));
  const recent = s.events.slice(-5);
  if (recent.length) lines.push('  recent events:', ...recent.map((e) => `    ${e.at} ${e.nodeId ? `${e.nodeId}: ` : ''}${e.message}`));
  return lines.join('\n');
}

/**
 * A rollout's status: a closed one from its result (no worker needed), a running one from its
 * query. Null when no worker answers and no result holds one.
 */
async function rolloutStatusOf(handle: WorkflowHandle, desc: WorkflowExecutionDescription): Promise<RolloutStatus | null> {
  if (desc.status.name === 'COMPLETED') return ((await handle.result()) as RolloutResult).status;
  if (desc.status.name === 'FAILED') {
    const f = await handle.result().then(
      () => undefined,
      (err: unknown) => failedResult(err),
    );
    if (f?.result) return f.result.status;
  }
  try {
    return await handle.query(rolloutStatusQuery);
  } catch (err) {
    if (serverGone(err)) throw err;
    return null;
  }
}

/** Sends an update to a running rollout; a rejection (by its validator or handler) is bad input. */
async function rolloutUpdate<R>(client: Client, ref: ReturnType<typeof rolloutRef>, name: string, send: (h: WorkflowHandle) => Promise<R>): Promise<R> {
  const { handle, desc } = await existingRollout(client, ref);
  if (desc.status.name !== 'RUNNING') throw badInput(`${name}: rollout '${ref.id}' in pool ${ref.pool} is ${desc.status.name.toLowerCase()}, not running`);
  try {
    return await send(handle);
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const message = (err.cause as Error | undefined)?.message ?? err.message;
      throw badInput(message.startsWith(`${name}:`) ? message : `${name}: ${message}`);
    }
    throw err;
  }
}

function startedText(o: GlobalOptions, workflowId: string, runId: string, ref: { pool: string; id: string }): string {
  const ui = webUiUrl(workflowId, runId);
  return [
    `started ${workflowId} (run ${runId})`,
    `  follow it: drydock rollout status ${ref.id} --pool ${ref.pool}${o.namespace ? ` --namespace ${o.namespace}` : ''}`,
    ui ? `  Web UI:    ${ui}` : `  Web UI:    namespace ${connectConfig().namespace}, workflow id ${workflowId}`,
  ].join('\n');
}

function resultText(workflowId: string, r: RolloutResult): string {
  const s = r.status;
  return [
    `${workflowId} ${r.outcome}: ${s.counts.done}/${s.counts.total} nodes on ${s.target.uri}${s.finishedAt ? ` in ${seconds(s.startedAt, s.finishedAt)}` : ''}`,
    ...s.analyses.map((a) => `  ${describeAnalysis(a)}`),
  ].join('\n');
}

type Ref = ReturnType<typeof rolloutRef>;

export function registerRolloutCommands(program: Command): void {
  const rollout = program
    .command('rollout')
    .description('roll a model across a pool in health-gated batches, or blue-green (workflow rollingUpdate, id rollout/<pool>/<id>)');

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
    .option('--expect <text>', "analysis: text the smoke generation must contain")
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
      const ref = { pool: input.pool, id };
      const workflowId = rollingUpdateWorkflowId(input.pool, id);
      await withClient(o, async (client) => {
        let handle;
        try {
          handle = await client.workflow.start('rollingUpdate', {
            taskQueue: o.taskQueue,
            workflowId,
            // An id names one rollout for good, so status and list never mix two runs.
            workflowIdReusePolicy: 'REJECT_DUPLICATE',
            args: [input],
            staticSummary: `rollout ${input.target.model.uri} to pool ${input.pool}`,
            staticDetails: `Started by the drydock CLI: ${input.strategy ?? 'rolling'}, on failure ${input.onFailure ?? 'rollback'}. Control it with 'drydock rollout pause|resume|abort|promote ${id} --pool ${input.pool}'.`,
          });
        } catch (err) {
          if (err instanceof WorkflowExecutionAlreadyStartedError) throw badInput(`--id: rollout '${id}' of pool ${input.pool} exists already (${workflowId}); pick another --id`);
          throw err;
        }
        const started = { workflowId, id, pool: input.pool, runId: handle.firstExecutionRunId };
        if (!flags.wait) {
          output(o, { ...started, status: 'RUNNING' }, () => startedText(o, workflowId, started.runId, ref));
          return;
        }
        if (!o.json) process.stderr.write(`${startedText(o, workflowId, started.runId, ref)}\n`);
        const result = await watchRollout(handle);
        output(o, { ...started, status: 'COMPLETED', result }, () => resultText(workflowId, result));
      });
    });

  rollout
    .command('status')
    .description('phase, per-node states, batches and analyses of a rollout')
    .argument('<id>', 'rollout id (or the workflow id rollout/<pool>/<id>)')
    .option('--pool <name>', 'its pool')
    .action(async (idArg: string, opts: { pool?: string }, cmd: Command) => {
      const o = globals(cmd);
      const ref = rolloutRef(idArg, opts.pool);
      const { desc, status } = await withClient(o, async (client) => {
        const { handle, desc } = await existingRollout(client, ref);
        return { desc, status: await rolloutStatusOf(handle, desc) };
      });
      const phase = desc.typedSearchAttributes.get(DRYDOCK_PHASE);
      output(o, { workflowId: ref.workflowId, runId: desc.runId, status: desc.status.name, rollout: status }, () =>
        status
          ? renderRolloutStatus(status, desc.status.name)
          : `${ref.workflowId}: ${desc.status.name}${phase ? `, ${phase}` : ''} (no drydock worker answered the status query)`,
      );
    });

  rollout
    .command('list')
    .description('rollouts known to Temporal, newest first')
    .option('--pool <name>', "only this pool's")
    .option('--limit <n>', 'at most this many', wholeNumber, 20)
    .action(async (opts: { pool?: string; limit: number }, cmd: Command) => {
      const o = globals(cmd);
      if (opts.pool !== undefined && !POOL_NAME.test(opts.pool)) throw badInput(`pool: '${opts.pool}' is not valid: ${POOL_NAME_HELP}`);
      const query = `WorkflowType = 'rollingUpdate'${opts.pool ? ` AND ${DRYDOCK_POOL.name} = '${opts.pool}'` : ''}`;
      const rows = await withClient(o, async (client) => {
        const out = [];
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
      output(o, { rollouts: rows }, () =>
        rows.length === 0
          ? `no rollouts recorded${opts.pool ? ` for pool ${opts.pool}` : ''}`
          : [
              `${'ID'.padEnd(40)} ${'POOL'.padEnd(16)} ${'STATUS'.padEnd(11)} ${'PHASE'.padEnd(13)} STARTED`,
              ...rows.map((r) => `${r.id.padEnd(40)} ${r.pool.padEnd(16)} ${r.status.padEnd(11)} ${(r.phase ?? '').padEnd(13)} ${r.startTime}`),
            ].join('\n'),
      );
    });

  const control = (verb: string, description: string) =>
    rollout.command(verb).description(description).argument('<id>', 'rollout id (or the workflow id rollout/<pool>/<id>)').option('--pool <name>', 'its pool');
  // Commander passes positionals first, then opts and the command; set-max-unavailable has one more positional.
  const act = <R>(c: Command, name: string, send: (h: WorkflowHandle, opts: Record<string, unknown>, value: unknown) => Promise<R>, human: (ref: Ref, r: R) => string, check?: (value: string) => unknown) =>
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

  act(
    control('pause', 'stop starting nodes; nodes already walking finish their step').option('--reason <text>', 'why; shown in status and the Web UI'),
    'pause',
    (h, opts) => h.executeUpdate(pauseRolloutUpdate, { args: [opts.reason === undefined ? {} : { reason: String(opts.reason) }] }),
    (ref, r) => `paused ${ref.workflowId} (phase ${r.phase})`,
  );
  act(
    control('resume', 'continue a paused rollout (a failed analysis it paused on is accepted)'),
    'resume',
    (h) => h.executeUpdate(resumeRolloutUpdate),
    (ref, r) => `resumed ${ref.workflowId} (phase ${r.phase})`,
  );
  act(
    control('abort', 'stop and roll every updated node back').option('--reason <text>', 'why; shown in status and the Web UI'),
    'abort',
    (h, opts) => h.executeUpdate(abortRolloutUpdate, { args: [opts.reason === undefined ? {} : { reason: String(opts.reason) }] }),
    (ref, r) => `aborting ${ref.workflowId} (phase ${r.phase})`,
  );
  act(
    control('promote', "skip the current pause (blue-green: the wait before the switch)").option('--all', 'skip every later pause too'),
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

/** The value argument of set-max-unavailable, checked as the input's maxUnavailable is (exit 2 before connecting). */
export function checkMaxUnavailable(value: string): number | string {
  const v = countOrPercent(value);
  checkedInput(() => amount({ maxUnavailable: v }, 'maxUnavailable', 'maxUnavailable', 1, { count: 1 }));
  return v;
}

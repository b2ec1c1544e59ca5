import { parseRollingUpdateInput, ROLLOUT_ID, type RollingUpdateInput } from '../../../workflows/inputs/rollingUpdate.ts';
import { amount } from '../../../workflows/inputs/validate.ts';
import { rollingUpdateWorkflowId } from '../../../workflows/common/ids.ts';
import { checkPoolName } from '../flags.ts';
import { badInput, checkedInput, CliError, EXIT } from '../runtime.ts';
import { assignDefined, objectOrEmpty, readSpecFile } from '../spec.ts';
import { absoluteModelPath, defaultRolloutId, sha256File } from './model.ts';

/** `rollout start` flags and `--spec` → a rollingUpdate input the workflow accepts, or exit 2 naming the field and the flag. */

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

/** "3" is a node count, "25%" a percent; anything else goes to the parser as-is, which names the field. */
export function countOrPercent(v: string): number | string {
  return /^\d+$/.test(v.trim()) ? Number(v.trim()) : v.trim();
}

/** The input from --spec with the flags on top, before any check; the model's fields are left to rolloutInput. */
function mergeFlags(flags: StartFlags): Record<string, unknown> {
  const input: Record<string, unknown> = flags.spec ? readSpecFile(flags.spec, '--spec', 'the rollingUpdate input') : {};
  assignDefined(input, {
    pool: flags.pool,
    strategy: flags.strategy,
    maxUnavailable: flags.maxUnavailable === undefined ? undefined : countOrPercent(flags.maxUnavailable),
    maxSurge: flags.maxSurge === undefined ? undefined : countOrPercent(flags.maxSurge),
    onFailure: flags.onFailure,
    scaleDownDelaySeconds: flags.scaleDownDelay,
    pauseBeforeSwitch: flags.pauseBeforeSwitch || undefined,
  });
  if (flags.steps !== undefined) {
    try {
      input.steps = JSON.parse(flags.steps);
    } catch (err) {
      throw badInput(`--steps: not JSON (${(err as Error).message}); expected e.g. '[{"batch":1},{"pause":{}},{"batch":"50%"}]'`);
    }
  }
  const analysis = objectOrEmpty(input.analysis);
  assignDefined(analysis, {
    expect: flags.expect,
    prompt: flags.prompt,
    maxLatencyMs: flags.maxLatencyMs,
    intervalSeconds: flags.analysisSeconds,
    maxErrorRate: flags.maxErrorRate,
  });
  if (Object.keys(analysis).length) input.analysis = analysis;
  return input;
}

/** The parser's exit-2 error, with the flag (or the spec file) that set the field it names. */
function withOrigin(err: CliError, flags: StartFlags): CliError {
  const field = err.message.slice(0, err.message.indexOf(':'));
  const hit = FLAG_OF_FIELD.find(([f]) => field === f || field.startsWith(`${f}[`) || field.startsWith(`${f}.`));
  const from = hit && flags[hit[1]] !== undefined ? ` (from ${hit[2]})` : flags.spec ? ` (in ${flags.spec})` : '';
  return badInput(`${err.message}${from}`);
}

/**
 * The workflow input from --spec with flags on top, checked by the workflow's own parser (exit 2
 * naming the field, and the flag that set it); computes the model's sha256 when none is given.
 */
export async function rolloutInput(flags: StartFlags): Promise<{ input: RollingUpdateInput; id: string }> {
  const input = mergeFlags(flags);
  if (input.pool === undefined) throw badInput('pool: is required (--pool)');
  const target = objectOrEmpty(input.target);
  const model = objectOrEmpty(target.model);
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
    throw err instanceof CliError && err.exitCode === EXIT.badInput ? withOrigin(err, flags) : err;
  }
  const id = flags.id ?? defaultRolloutId(String(model.uri));
  if (!ROLLOUT_ID.test(id)) throw badInput(`--id: '${id}' is not valid: letters, digits, . _ -, at most 64, starting with a letter or digit`);
  return { input: input as unknown as RollingUpdateInput, id };
}

export interface RolloutRef {
  pool: string;
  id: string;
  workflowId: string;
}

/** The id and pool of a rollout from `ID --pool P`, or from a full workflow id `rollout/<pool>/<id>`. */
export function rolloutRef(arg: string, pool: string | undefined): RolloutRef {
  let id = arg;
  if (arg.startsWith('rollout/')) {
    const [, p, ...rest] = arg.split('/');
    if (pool !== undefined && pool !== p) throw badInput(`--pool: '${pool}' does not match the workflow id ${arg}`);
    pool = p;
    id = rest.join('/');
  }
  if (pool === undefined) throw badInput('pool: is required (--pool, or give the workflow id rollout/<pool>/<id>)');
  checkPoolName(pool);
  if (!ROLLOUT_ID.test(id)) throw badInput(`id: '${id}' is not a rollout id (letters, digits, . _ -, at most 64)`);
  return { pool, id, workflowId: rollingUpdateWorkflowId(pool, id) };
}

/** The value argument of set-max-unavailable, checked as the input's maxUnavailable is (exit 2 before connecting). */
export function checkMaxUnavailable(value: string): number | string {
  const v = countOrPercent(value);
  checkedInput(() => amount({ maxUnavailable: v }, 'maxUnavailable', 'maxUnavailable', 1, { count: 1 }));
  return v;
}

/**
 * Scenario files (YAML): a simulated fleet, then steps the runner (scripts/sim/run.ts) performs in
 * order against a real dev server, the real workers and the fleet simulator. Validation is strict:
 * every error names the step (index, line and action) and the field. See docs/operations.md.
 */
import { LineCounter, parseDocument, isMap, isSeq } from 'yaml';
import { parseBackupInput } from '../../workflows/inputs/backup.ts';
import { parseFleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import { parseRollingUpdateInput } from '../../workflows/inputs/rollingUpdate.ts';
import { parseTrainingJobInput } from '../../workflows/inputs/trainingJob.ts';
import { parseCondition, type Condition } from './expr.ts';

export class ScenarioError extends Error {}

/** Node faults (on agents), provider faults (on the simulator's control API), both recoverable. */
export const NODE_FAULTS = ['xid', 'thermal', 'ecc', 'missing-gpu', 'smi-hang', 'agent-crash', 'unreachable', 'dead'] as const;
export const PROVIDER_FAULTS = ['capacity', 'throttle'] as const;
export const FAULT_KINDS = [...NODE_FAULTS, ...PROVIDER_FAULTS] as const;
export type NodeFaultKind = (typeof NODE_FAULTS)[number];
export type ProviderFaultKind = (typeof PROVIDER_FAULTS)[number];
export type FaultKind = (typeof FAULT_KINDS)[number];
export const WORKFLOW_KINDS = ['pool', 'rollout', 'backup', 'training'] as const;
export type WorkflowKind = (typeof WORKFLOW_KINDS)[number];

export interface FleetConfig {
  pools: { name: string; nodes: number }[];
  /** Nodes per rack (rack r holds nodes r*rackSize … in provisioning order) and racks per zone. */
  rackSize: number;
  racksPerZone: number;
  /** Seconds a provisioned (or rebooted) node boots before its agent answers. */
  bootSeconds: number;
  /** Simulated inference on every agent (models are paths; their sha256 is derived from the path). */
  inference?: { initialModel: string; swapSeconds: number; drainSeconds: number; generationMs: number; failModels: string[] };
  /** Trainer worker processes (for training steps). */
  trainers: number;
  /** A tree of files at ${work}/data for backups: `files` files of `kib` KiB each. */
  data?: { files: number; kib: number };
}

/** Which nodes a fault or recovery applies to: by index in the pool's live list (sorted by id), a count, a rack or a zone. */
export interface Target {
  pool: string;
  node?: number | string;
  nodes?: number;
  rack?: number;
  zone?: string;
}

export type Step = { index: number; line?: number; label: string } & (
  | { action: 'start'; kind: WorkflowKind; as: string; input: Record<string, unknown> }
  | { action: 'inject'; fault: NodeFaultKind; target: Target; code: number; gpu: number; celsius: number; persistent: boolean; seconds?: number }
  | { action: 'inject'; fault: ProviderFaultKind; seconds?: number }
  | { action: 'recover'; fault: 'all' | FaultKind; target?: Target }
  | { action: 'kill'; worker: 'control' | 'trainer'; which: number; restart: boolean; restartAfterSeconds: number }
  | { action: 'restart'; what: 'temporal'; downSeconds: number }
  | { action: 'wait'; conditions: Condition[]; timeoutSeconds: number }
  | { action: 'assert'; conditions: Condition[] }
  | { action: 'update' | 'signal'; name: string; target: string; args: unknown[] }
);

export interface Scenario {
  name: string;
  description?: string;
  fleet: FleetConfig;
  steps: Step[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => (typeof v === 'string' ? `'${v}'` : JSON.stringify(v));

/** Field checks that throw ScenarioError naming `at.field`. */
class Fields {
  constructor(readonly obj: Obj, readonly at: string, allowed: readonly string[], what: string) {
    for (const k of Object.keys(obj)) if (!allowed.includes(k)) this.fail(k, `unknown field for ${what} (allowed: ${allowed.join(', ')})`);
  }
  fail(field: string, problem: string): never {
    throw new ScenarioError(`${this.at}${field ? `.${field}` : ''}: ${problem}`);
  }
  str(field: string, fallback?: string, oneOf?: readonly string[]): string {
    const v = this.obj[field];
    if (v === undefined && fallback !== undefined) return fallback;
    if (v === undefined) this.fail(field, 'is required');
    if (typeof v !== 'string' || v === '') this.fail(field, `expected a non-empty string, got ${show(v)}`);
    if (oneOf && !oneOf.includes(v)) this.fail(field, `expected one of ${oneOf.join(', ')}, got ${show(v)}`);
    return v;
  }
  num(field: string, min: number, max: number, fallback?: number, integer = false): number {
    const v = this.obj[field];
    if (v === undefined && fallback !== undefined) return fallback;
    if (v === undefined) this.fail(field, 'is required');
    if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v))) this.fail(field, `expected ${integer ? 'an integer' : 'a number'}, got ${show(v)}`);
    if (v < min || v > max) this.fail(field, `must be between ${min} and ${max}, got ${v}`);
    return v;
  }
  int(field: string, min: number, max: number, fallback?: number): number {
    return this.num(field, min, max, fallback, true);
  }
  optNum(field: string, min: number, max: number): number | undefined {
    return this.obj[field] === undefined ? undefined : this.num(field, min, max);
  }
  bool(field: string, fallback: boolean): boolean {
    const v = this.obj[field];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') this.fail(field, `expected true or false, got ${show(v)}`);
    return v;
  }
  obj_(field: string): Obj {
    const v = this.obj[field];
    if (!isObj(v)) this.fail(field, `expected a mapping, got ${v === undefined ? 'nothing' : show(v)}`);
    return v;
  }
}

const STEP_ACTIONS = ['start', 'inject', 'recover', 'kill', 'restart', 'wait', 'assert', 'update', 'signal'] as const;
const TARGET_FIELDS = ['pool', 'node', 'nodes', 'rack', 'zone'];

/** Parses and validates a scenario; `vars` fills `${name}` placeholders in string values (e.g. `${work}`). */
export function parseScenario(text: string, vars: Record<string, string> = {}): Scenario {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  if (doc.errors.length) throw new ScenarioError(`not valid YAML: ${doc.errors[0].message}`);
  const stepsNode = doc.get('steps', true);
  const lineOf = (i: number): number | undefined => {
    const item = isSeq(stepsNode) ? stepsNode.items[i] : undefined;
    const start = (item as { range?: [number, number, number] } | undefined)?.range?.[0];
    return start === undefined ? undefined : lines.linePos(start).line;
  };
  const raw = substitute(doc.toJS(), vars);
  if (!isObj(raw) || (isMap(doc.contents) === false && !isObj(raw))) throw new ScenarioError('a scenario is a YAML mapping with name, fleet and steps');
  const top = new Fields(raw, 'scenario', ['name', 'description', 'fleet', 'steps'], 'a scenario');
  const name = top.str('name');
  if (!/^[a-z0-9][-a-z0-9]{0,62}$/.test(name)) top.fail('name', `expected lowercase letters, digits and dashes, got ${show(name)}`);
  const fleet = parseFleet(top.obj_('fleet'));
  if (!Array.isArray(raw.steps) || raw.steps.length === 0) top.fail('steps', 'expected a non-empty list of steps');
  const labels = new Map<string, WorkflowKind>();
  for (const p of fleet.pools) labels.set(`pool.${p.name}`, 'pool');
  const steps = (raw.steps as unknown[]).map((s, i) => parseStep(s, i, lineOf(i), fleet, labels));
  return { name, description: raw.description === undefined ? undefined : top.str('description'), fleet, steps };
}

function substitute(v: unknown, vars: Record<string, string>): unknown {
  if (typeof v === 'string') return v.replace(/\$\{(\w+)\}/g, (m, k: string) => vars[k] ?? m);
  if (Array.isArray(v)) return v.map((x) => substitute(x, vars));
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substitute(x, vars)]));
  return v;
}

function parseFleet(obj: Obj): FleetConfig {
  const f = new Fields(obj, 'fleet', ['pools', 'rackSize', 'racksPerZone', 'bootSeconds', 'inference', 'trainers', 'data'], 'the fleet');
  if (!Array.isArray(obj.pools) || obj.pools.length === 0) f.fail('pools', 'expected a non-empty list of pools ({name, nodes})');
  const pools = (obj.pools as unknown[]).map((p, i) => {
    if (!isObj(p)) f.fail(`pools[${i}]`, `expected a mapping {name, nodes}, got ${show(p)}`);
    const pf = new Fields(p as Obj, `fleet.pools[${i}]`, ['name', 'nodes'], 'a pool');
    const pname = pf.str('name');
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(pname)) pf.fail('name', `expected a pool name (lowercase letters, digits, dashes), got ${show(pname)}`);
    return { name: pname, nodes: pf.int('nodes', 0, 500) };
  });
  const dup = pools.find((p, i) => pools.findIndex((q) => q.name === p.name) !== i);
  if (dup) f.fail('pools', `pool '${dup.name}' is listed twice`);
  let inference: FleetConfig['inference'];
  if (obj.inference !== undefined && obj.inference !== false) {
    const inf = new Fields(f.obj_('inference'), 'fleet.inference', ['initialModel', 'swapSeconds', 'drainSeconds', 'generationMs', 'failModels'], 'simulated inference');
    const failModels = obj.inference && (obj.inference as Obj).failModels;
    if (failModels !== undefined && (!Array.isArray(failModels) || failModels.some((m) => typeof m !== 'string'))) inf.fail('failModels', 'expected a list of model paths');
    inference = {
      initialModel: inf.str('initialModel', '/models/base.gguf'),
      swapSeconds: inf.num('swapSeconds', 0, 600, 1),
      drainSeconds: inf.num('drainSeconds', 0, 600, 0.5),
      generationMs: inf.int('generationMs', 0, 60_000, 50),
      failModels: (failModels as string[] | undefined) ?? [],
    };
  }
  let data: FleetConfig['data'];
  if (obj.data !== undefined) {
    const d = new Fields(f.obj_('data'), 'fleet.data', ['files', 'kib'], 'backup data');
    data = { files: d.int('files', 1, 10_000), kib: d.int('kib', 0, 1 << 20, 64) };
  }
  return {
    pools,
    rackSize: f.int('rackSize', 1, 10_000, 25),
    racksPerZone: f.int('racksPerZone', 1, 10_000, 4),
    bootSeconds: f.num('bootSeconds', 0, 600, 1),
    inference,
    trainers: f.int('trainers', 0, 8, 0),
    data,
  };
}

function parseStep(raw: unknown, index: number, line: number | undefined, fleet: FleetConfig, labels: Map<string, WorkflowKind>): Step {
  const at = `steps[${index}]${line ? ` (line ${line})` : ''}`;
  if (!isObj(raw)) throw new ScenarioError(`${at}: expected a mapping with one action (${STEP_ACTIONS.join(', ')}), got ${show(raw)}`);
  const actions = STEP_ACTIONS.filter((a) => a in raw);
  if (actions.length !== 1) {
    throw new ScenarioError(`${at}: expected exactly one action (${STEP_ACTIONS.join(', ')}), got ${actions.length ? actions.join(' and ') : `only ${Object.keys(raw).join(', ') || 'nothing'}`}`);
  }
  const action = actions[0];
  const where = `${at} (${action})`;
  const base = { index, line, label: '' };
  const targetOf = (f: Fields): Target => {
    const pool = f.str('pool', fleet.pools.length === 1 ? fleet.pools[0].name : undefined);
    if (!fleet.pools.some((p) => p.name === pool)) f.fail('pool', `no pool ${show(pool)} in the fleet (pools: ${fleet.pools.map((p) => p.name).join(', ')})`);
    const t: Target = { pool };
    const given = ['node', 'nodes', 'rack', 'zone'].filter((k) => f.obj[k] !== undefined);
    if (given.length > 1) f.fail(given[1], `give one of node, nodes, rack or zone, not ${given.join(' and ')}`);
    const node = f.obj.node;
    if (node !== undefined) {
      if (typeof node === 'number') t.node = f.int('node', 0, 10_000);
      else t.node = f.str('node');
    }
    if (f.obj.nodes !== undefined) t.nodes = f.int('nodes', 1, 10_000);
    if (f.obj.rack !== undefined) t.rack = f.int('rack', 0, 10_000);
    if (f.obj.zone !== undefined) t.zone = f.str('zone');
    return t;
  };
  const conditions = (f: Fields): Condition[] => {
    const v = f.obj[action];
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0) f.fail(action, 'expected a condition or a list of conditions');
    return list.map((c, i) => {
      if (typeof c !== 'string') f.fail(Array.isArray(v) ? `${action}[${i}]` : action, `expected a condition like "pool.demo.counts.healthy == 4", got ${show(c)}`);
      try {
        return parseCondition(c, [...labels.keys()]);
      } catch (err) {
        f.fail(Array.isArray(v) ? `${action}[${i}]` : action, (err as Error).message);
      }
    });
  };
  switch (action) {
    case 'start': {
      const f = new Fields(raw, where, ['start', 'as', 'input'], "a 'start' step");
      const kind = f.str('start', undefined, WORKFLOW_KINDS) as WorkflowKind;
      const input = f.obj_('input');
      const filled = kind === 'training' ? { checkpoint: { uri: 'file:///tmp/placeholder' }, ...input } : input;
      try {
        if (kind === 'pool') parseFleetPoolSpec(filled);
        else if (kind === 'rollout') parseRollingUpdateInput(filled);
        else if (kind === 'backup') parseBackupInput(filled);
        else parseTrainingJobInput(filled);
      } catch (err) {
        f.fail('input', `not a valid ${kind} input: ${(err as Error).message}`);
      }
      const pool = typeof input.pool === 'string' ? input.pool : typeof input.name === 'string' ? input.name : '';
      if ((kind === 'pool' || kind === 'rollout') && !fleet.pools.some((p) => p.name === pool)) {
        f.fail(kind === 'pool' ? 'input.name' : 'input.pool', `no pool ${show(pool)} in the fleet (pools: ${fleet.pools.map((p) => p.name).join(', ')})`);
      }
      if (kind === 'training' && fleet.trainers === 0) f.fail('start', 'a training job needs trainers: set fleet.trainers');
      if (kind === 'rollout' && !fleet.inference) f.fail('start', 'a rollout needs simulated inference: set fleet.inference');
      const as = kind === 'pool' ? pool : f.str('as', String(input.name ?? kind));
      if (!/^[a-z0-9][-a-z0-9_]*$/.test(as)) f.fail('as', `expected a label of lowercase letters, digits, dashes, got ${show(as)}`);
      const label = `${kind}.${as}`;
      if (kind !== 'pool' && labels.has(label)) f.fail('as', `label '${label}' is used by an earlier step; give this one another 'as'`);
      labels.set(label, kind);
      return { ...base, action, kind, as, input, label: `start ${kind} ${as}` };
    }
    case 'inject': {
      const f = new Fields(raw, where, ['inject', 'code', 'gpu', 'celsius', 'persistent', 'seconds', ...TARGET_FIELDS], "an 'inject' step");
      const fault = f.str('inject', undefined, FAULT_KINDS) as FaultKind;
      const seconds = f.optNum('seconds', 0, 86_400);
      if ((PROVIDER_FAULTS as readonly string[]).includes(fault)) {
        new Fields(raw, where, ['inject', 'seconds'], `a provider fault ('${fault}')`);
        return { ...base, action, fault: fault as ProviderFaultKind, seconds, label: `inject ${fault}${seconds ? ` for ${seconds} s` : ''}` };
      }
      const target = targetOf(f);
      return {
        ...base,
        action,
        fault: fault as NodeFaultKind,
        target,
        code: f.int('code', 0, 1000, 79),
        gpu: f.int('gpu', 0, 15, 0),
        celsius: f.num('celsius', 0, 200, 96),
        persistent: f.bool('persistent', false),
        seconds,
        label: `inject ${fault} on ${describeTarget(target)}`,
      };
    }
    case 'recover': {
      const f = new Fields(raw, where, ['recover', ...TARGET_FIELDS], "a 'recover' step");
      const fault = f.str('recover', undefined, ['all', ...FAULT_KINDS]) as 'all' | FaultKind;
      const target = (PROVIDER_FAULTS as readonly string[]).includes(fault) ? undefined : targetOf(f);
      return { ...base, action, fault, target, label: `recover ${fault}${target ? ` on ${describeTarget(target)}` : ''}` };
    }
    case 'kill': {
      const f = new Fields(raw, where, ['kill', 'which', 'respawn', 'respawnAfterSeconds'], "a 'kill' step");
      const worker = f.str('kill', undefined, ['control', 'trainer']) as 'control' | 'trainer';
      if (worker === 'trainer' && fleet.trainers === 0) f.fail('kill', 'no trainer to kill: set fleet.trainers');
      const which = f.int('which', 0, worker === 'trainer' ? Math.max(0, fleet.trainers - 1) : 0, 0);
      const restart = f.bool('respawn', true);
      return { ...base, action, worker, which, restart, restartAfterSeconds: f.num('respawnAfterSeconds', 0, 600, 0), label: `kill ${worker} worker${worker === 'trainer' ? ` ${which}` : ''}${restart ? ' (and start a new one)' : ''}` };
    }
    case 'restart': {
      const f = new Fields(raw, where, ['restart', 'downSeconds'], "a 'restart' step");
      f.str('restart', undefined, ['temporal']);
      const downSeconds = f.num('downSeconds', 0, 600, 2);
      return { ...base, action, what: 'temporal', downSeconds, label: `restart the Temporal server (down ${downSeconds} s)` };
    }
    case 'wait': {
      const f = new Fields(raw, where, ['wait', 'timeoutSeconds'], "a 'wait' step");
      const conds = conditions(f);
      return { ...base, action, conditions: conds, timeoutSeconds: f.num('timeoutSeconds', 0.1, 3600, 60), label: `wait until ${conds.map((c) => c.text).join(' and ')}` };
    }
    case 'assert': {
      const f = new Fields(raw, where, ['assert'], "an 'assert' step");
      const conds = conditions(f);
      return { ...base, action, conditions: conds, label: `assert ${conds.map((c) => c.text).join(' and ')}` };
    }
    case 'update':
    case 'signal': {
      const f = new Fields(raw, where, [action, 'target', 'args'], `a '${action}' step`);
      const name = f.str(action);
      const target = f.str('target', fleet.pools.length === 1 ? `pool.${fleet.pools[0].name}` : undefined);
      if (!labels.has(target)) f.fail('target', `no workflow labelled ${show(target)} (known: ${[...labels.keys()].join(', ')})`);
      const args = raw.args === undefined ? [] : raw.args;
      if (!Array.isArray(args)) f.fail('args', `expected a list of arguments, got ${show(args)}`);
      return { ...base, action, name, target, args: args as unknown[], label: `${action} ${name} on ${target}` };
    }
  }
}

export function describeTarget(t: Target): string {
  if (t.node !== undefined) return `node ${t.node} of ${t.pool}`;
  if (t.nodes !== undefined) return `${t.nodes} node${t.nodes === 1 ? '' : 's'} of ${t.pool}`;
  if (t.rack !== undefined) return `rack ${t.rack} of ${t.pool}`;
  if (t.zone !== undefined) return `zone ${t.zone} of ${t.pool}`;
  return `every node of ${t.pool}`;
}

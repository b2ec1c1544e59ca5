import { invalidArgument } from '../common/errors.ts';

/** Small, deterministic checkers for workflow inputs; every error names the field. */
export type Obj = Record<string, unknown>;

export function requireObject(value: unknown, field: string): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidArgument(field, `expected a JSON object, got ${describe(value)}`);
  }
  return value as Obj;
}

export function rejectUnknown(obj: Obj, allowed: readonly string[], prefix = ''): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw invalidArgument(prefix + key, `unknown field (allowed: ${allowed.join(', ')})`);
  }
}

export function requireString(obj: Obj, field: string, pattern?: RegExp, patternHelp?: string): string {
  const v = obj[field];
  if (v === undefined || v === null) throw invalidArgument(field, 'is required');
  if (typeof v !== 'string') throw invalidArgument(field, `expected a string, got ${describe(v)}`);
  if (v.length === 0) throw invalidArgument(field, 'must not be empty');
  if (pattern && !pattern.test(v)) throw invalidArgument(field, `'${v}' is not valid: ${patternHelp ?? `must match ${pattern}`}`);
  return v;
}

export function optionalString(obj: Obj, field: string, maxLength: number): string | undefined {
  const v = obj[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidArgument(field, `expected a string, got ${describe(v)}`);
  if (v.length > maxLength) throw invalidArgument(field, `must be at most ${maxLength} characters`);
  return v;
}

function optionalNumberIn(obj: Obj, field: string, min: number, max: number, fallback: number, integer: boolean): number {
  const v = obj[field];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !(integer ? Number.isInteger(v) : Number.isFinite(v))) {
    throw invalidArgument(field, `expected ${integer ? 'an integer' : 'a number'}, got ${describe(v)}`);
  }
  if (v < min || v > max) throw invalidArgument(field, `must be between ${min} and ${max}, got ${v}`);
  return v;
}

export function optionalInteger(obj: Obj, field: string, min: number, max: number, fallback: number): number {
  return optionalNumberIn(obj, field, min, max, fallback, true);
}

export function optionalNumber(obj: Obj, field: string, min: number, max: number, fallback: number): number {
  return optionalNumberIn(obj, field, min, max, fallback, false);
}

export function optionalBoolean(obj: Obj, field: string, fallback: boolean): boolean {
  const v = obj[field];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw invalidArgument(field, `expected true or false, got ${describe(v)}`);
  return v;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string '${v.length > 40 ? v.slice(0, 40) + '…' : v}'`;
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

/** Pool names: lowercase DNS labels, so they fit tags, labels and workflow ids everywhere. */
export const POOL_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
export const POOL_NAME_HELP = 'lowercase letters, digits and dashes, 1-63 characters, starting and ending with a letter or digit';
export const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const NODE_ID_HELP = 'letters, digits, dots, dashes and underscores, 1-128 characters';

/** A count or a percentage of the pool's size. */
export type Amount = { count: number } | { percent: number };

export const MAX_POOL_NODES = 10_000;

/** Resolves a count or percentage against the pool size: percentages of budgets round down (at least 1), floors round up. */
export function resolveAmount(a: Amount, size: number, round: 'down-min-1' | 'up'): number {
  if ('count' in a) return a.count;
  const exact = (size * a.percent) / 100;
  return round === 'up' ? Math.ceil(exact) : Math.max(1, Math.floor(exact));
}

export function amount(obj: Obj, key: string, field: string, min: number, fallback: Amount): Amount {
  const v = obj[key];
  if (v === undefined) return fallback;
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < min || v > MAX_POOL_NODES) throw invalidArgument(field, `expected a whole number of nodes >= ${min} or a percent like "25%", got ${v}`);
    return { count: v };
  }
  if (typeof v === 'string') {
    const m = /^(\d{1,3})%$/.exec(v);
    const p = m ? Number(m[1]) : NaN;
    if (!m || p > 100 || (min > 0 && p === 0)) throw invalidArgument(field, `expected a percent like "25%" (${min > 0 ? 1 : 0}-100) or a node count, got '${v}'`);
    return { percent: p };
  }
  throw invalidArgument(field, `expected a node count or a percent string like "25%", got ${v === null ? 'null' : typeof v}`);
}

export function section(obj: Obj, key: string): Obj {
  const v = obj[key];
  return v === undefined ? {} : requireObject(v, key);
}

/** Prefixes the field of an InvalidArgument thrown by a nested check (`health.` + `unhealthyAfter`). */
export function nested<T>(prefix: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Error && err.message && (err as { type?: string }).type === 'InvalidArgument') {
      throw invalidArgument(prefix + err.message.split(':')[0], err.message.slice(err.message.indexOf(':') + 2));
    }
    throw err;
  }
}


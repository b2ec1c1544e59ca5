import { invalidArgument } from '../common/errors.ts';
import { MAX_POOL_NODES, nested, optionalInteger, optionalNumber, rejectUnknown, requireObject, type Obj } from './validate.ts';

/**
 * The `autoscaling` section of a pool spec (public API, docs/pools.md): `none`, `reactive` (GPU
 * utilisation), `queue` (waiting requests and busy slots), `latency` (p95 of inference requests),
 * `scheduled` (time windows with their own min/max) and `composite` (the largest of several).
 */
export type AutoscalingType = 'none' | 'reactive' | 'queue' | 'latency' | 'scheduled' | 'composite';
export const AUTOSCALING_TYPES: readonly AutoscalingType[] = ['none', 'reactive', 'queue', 'latency', 'scheduled', 'composite'];

export interface ScheduleWindowSpec {
  /** `mon-fri`, `sat,sun`, `daily` (or `*`), or a list of those. */
  days?: string | string[];
  /** Local `HH:MM` (or `HH:MM:SS`) in the policy's time zone; the window is [start, end). */
  start: string;
  end: string;
  minNodes: number;
  maxNodes?: number;
}

export interface AutoscalingPolicySpec {
  type: 'reactive' | 'queue' | 'latency' | 'scheduled';
  scaleUpAt?: number;
  scaleDownAt?: number;
  targetQueuePerNode?: number;
  targetSlotUtilization?: number;
  targetP95Ms?: number;
  scaleDownBelowP95Ms?: number;
  timeZone?: string;
  windows?: ScheduleWindowSpec[];
}

export interface AutoscalingSpec extends Partial<Omit<AutoscalingPolicySpec, 'type'>> {
  type?: AutoscalingType;
  /** reactive only: seconds after any scale action before the next one. */
  cooldownSeconds?: number;
  /** queue, latency, scheduled, composite: how long the pool must want more (fewer) nodes before it scales up (down). */
  upAfterSeconds?: number;
  downAfterSeconds?: number;
  /** Most nodes added or removed by one decision. */
  maxStep?: number;
  /** composite: the policies whose largest desired size wins. */
  policies?: AutoscalingPolicySpec[];
}

export interface ScheduleWindow {
  /** Days of the week it applies on (0 Sunday … 6 Saturday), in the policy's time zone. */
  days: number[];
  /** Seconds after local midnight: [start, end). */
  start: number;
  end: number;
  minNodes: number;
  maxNodes: number;
  /** As written, e.g. `mon-fri 08:00-20:00`, for events and status. */
  label: string;
}

export type AutoscalingPolicy =
  | { type: 'reactive'; scaleUpAt: number; scaleDownAt: number }
  | { type: 'queue'; targetQueuePerNode: number; targetSlotUtilization: number }
  | { type: 'latency'; targetP95Ms: number; scaleDownBelowP95Ms: number }
  | { type: 'scheduled'; timeZone: string; windows: ScheduleWindow[] };

export interface AutoscalingConfig {
  type: AutoscalingType;
  scaleUpAt: number;
  scaleDownAt: number;
  cooldownSeconds: number;
  upAfterSeconds: number;
  downAfterSeconds: number;
  maxStep: number;
  /** The policies the decision combines: one for queue / latency / scheduled, the list for composite, none for none / reactive. */
  policies: AutoscalingPolicy[];
}

export const AUTOSCALING_DEFAULTS = {
  type: 'none',
  scaleUpAt: 80,
  scaleDownAt: 20,
  cooldownSeconds: 300,
  upAfterSeconds: 30,
  downAfterSeconds: 300,
  maxStep: 2,
  targetQueuePerNode: 2,
  targetSlotUtilization: 0.8,
  timeZone: 'UTC',
} as const;

const COMMON = ['type', 'cooldownSeconds', 'upAfterSeconds', 'downAfterSeconds', 'maxStep'];
const POLICY_FIELDS: Record<AutoscalingPolicy['type'], string[]> = {
  reactive: ['scaleUpAt', 'scaleDownAt'],
  queue: ['targetQueuePerNode', 'targetSlotUtilization'],
  latency: ['targetP95Ms', 'scaleDownBelowP95Ms'],
  scheduled: ['timeZone', 'windows'],
};
const POLICY_TYPES = Object.keys(POLICY_FIELDS) as AutoscalingPolicy['type'][];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const MAX_WINDOWS = 32;
const MAX_POLICIES = 8;

/** Whether `zone` is an IANA time zone this runtime knows (Intl throws a RangeError otherwise). */
export function knownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Seconds after midnight of a local "HH:MM" or "HH:MM:SS" (00:00 to 24:00). */
function timeOfDay(obj: Obj, key: 'start' | 'end'): number {
  const v = obj[key];
  if (v === undefined) throw invalidArgument(key, 'is required (local time "HH:MM")');
  const m = typeof v === 'string' ? /^(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(v) : null;
  const t = m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3] ?? 0) : NaN;
  if (!m || Number(m[2]) > 59 || Number(m[3] ?? 0) > 59 || t > 24 * 3600) throw invalidArgument(key, `expected a local time "HH:MM" (or "HH:MM:SS") from 00:00 to 24:00, got ${JSON.stringify(v)}`);
  return t;
}

function days(v: unknown): number[] {
  if (v === undefined) return [0, 1, 2, 3, 4, 5, 6];
  const parts = (Array.isArray(v) ? v : [v]).flatMap((x) => (typeof x === 'string' ? x.split(',') : [x]));
  const out = new Set<number>();
  for (const raw of parts) {
    const p = typeof raw === 'string' ? raw.trim().toLowerCase() : raw;
    if (p === 'daily' || p === '*') [0, 1, 2, 3, 4, 5, 6].forEach((d) => out.add(d));
    else if (p === 'weekdays') [1, 2, 3, 4, 5].forEach((d) => out.add(d));
    else if (p === 'weekends') [0, 6].forEach((d) => out.add(d));
    else {
      const m = typeof p === 'string' ? /^([a-z]{3})(?:-([a-z]{3}))?$/.exec(p) : null;
      const a = m ? DAYS.indexOf(m[1]) : -1;
      const b = m?.[2] ? DAYS.indexOf(m[2]) : a;
      if (a < 0 || b < 0) throw invalidArgument('days', `expected days like "mon-fri", "sat,sun", "weekdays" or "daily", got ${JSON.stringify(raw)}`);
      for (let d = a; ; d = (d + 1) % 7) {
        out.add(d);
        if (d === b) break;
      }
    }
  }
  if (!out.size) throw invalidArgument('days', 'must name at least one day');
  return [...out].sort();
}

function windows(v: unknown, pool: { minNodes: number; maxNodes: number }): ScheduleWindow[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_WINDOWS) throw invalidArgument('windows', `expected a list of 1-${MAX_WINDOWS} windows like {"days":"mon-fri","start":"08:00","end":"20:00","minNodes":4}`);
  return v.map((raw, i) =>
    nested(`windows[${i}].`, () => {
      const w = requireObject(raw, 'window');
      rejectUnknown(w, ['days', 'start', 'end', 'minNodes', 'maxNodes']);
      const start = timeOfDay(w, 'start');
      const end = timeOfDay(w, 'end');
      if (end <= start) throw invalidArgument('end', `must be after start (${w.start}); split a window that crosses midnight in two`);
      if (w.minNodes === undefined) throw invalidArgument('minNodes', 'is required');
      const minNodes = optionalInteger(w, 'minNodes', 0, MAX_POOL_NODES, 0);
      const maxNodes = optionalInteger(w, 'maxNodes', 1, MAX_POOL_NODES, Math.max(pool.maxNodes, minNodes, 1));
      if (maxNodes < minNodes) throw invalidArgument('maxNodes', `must be >= minNodes (${minNodes}), got ${maxNodes}`);
      const d = days(w.days);
      const dayLabel = w.days === undefined ? 'daily' : (Array.isArray(w.days) ? w.days.join(',') : String(w.days));
      return { days: d, start, end, minNodes, maxNodes, label: `${dayLabel} ${w.start}-${w.end}` };
    }),
  );
}

/** One policy's own fields (already checked for unknown keys). */
function policy(type: AutoscalingPolicy['type'], s: Obj, pool: { minNodes: number; maxNodes: number }): AutoscalingPolicy {
  const D = AUTOSCALING_DEFAULTS;
  switch (type) {
    case 'reactive': {
      const scaleUpAt = optionalInteger(s, 'scaleUpAt', 1, 100, D.scaleUpAt);
      const scaleDownAt = optionalInteger(s, 'scaleDownAt', 0, 99, D.scaleDownAt);
      if (scaleDownAt >= scaleUpAt) throw invalidArgument('scaleDownAt', `must be below scaleUpAt (${scaleUpAt}), got ${scaleDownAt}`);
      return { type, scaleUpAt, scaleDownAt };
    }
    case 'queue': {
      const targetQueuePerNode = optionalNumber(s, 'targetQueuePerNode', 0, 10_000, D.targetQueuePerNode);
      const u = s.targetSlotUtilization;
      if (u !== undefined && (typeof u !== 'number' || !(u > 0 && u <= 1))) throw invalidArgument('targetSlotUtilization', `expected a fraction in (0, 1], e.g. 0.8 for 80 % of slots busy, got ${JSON.stringify(u)}`);
      return { type, targetQueuePerNode, targetSlotUtilization: (u as number | undefined) ?? D.targetSlotUtilization };
    }
    case 'latency': {
      if (s.targetP95Ms === undefined) throw invalidArgument('targetP95Ms', 'is required for latency autoscaling (milliseconds, e.g. 5000)');
      const targetP95Ms = optionalNumber(s, 'targetP95Ms', 1, 3_600_000, 0);
      const scaleDownBelowP95Ms = optionalNumber(s, 'scaleDownBelowP95Ms', 0, 3_600_000, targetP95Ms / 2);
      if (scaleDownBelowP95Ms >= targetP95Ms) throw invalidArgument('scaleDownBelowP95Ms', `must be below targetP95Ms (${targetP95Ms}), got ${scaleDownBelowP95Ms}`);
      return { type, targetP95Ms, scaleDownBelowP95Ms };
    }
    case 'scheduled': {
      const tz = s.timeZone ?? D.timeZone;
      if (typeof tz !== 'string' || tz.length > 64 || !knownTimeZone(tz)) throw invalidArgument('timeZone', `expected an IANA time zone such as "Europe/Berlin" or "UTC", got ${JSON.stringify(tz)}`);
      return { type, timeZone: tz, windows: windows(s.windows, pool) };
    }
  }
}

function policyType(v: unknown, allowed: readonly string[]): string {
  if (typeof v !== 'string' || !allowed.includes(v)) throw invalidArgument('type', `expected one of ${allowed.map((t) => `'${t}'`).join(', ')}, got ${JSON.stringify(v)}`);
  return v;
}

/** Validates `autoscaling` (field names are relative: the caller prefixes `autoscaling.`) and fills in defaults. */
export function parseAutoscaling(s: Obj, pool: { minNodes: number; maxNodes: number }): AutoscalingConfig {
  const D = AUTOSCALING_DEFAULTS;
  const type = policyType(s.type ?? D.type, AUTOSCALING_TYPES) as AutoscalingType;
  const own = type === 'composite' ? ['policies'] : type === 'none' ? POLICY_FIELDS.reactive : POLICY_FIELDS[type];
  rejectUnknown(s, [...COMMON, ...own]);
  const timing = {
    cooldownSeconds: optionalInteger(s, 'cooldownSeconds', 0, 86_400, D.cooldownSeconds),
    upAfterSeconds: optionalInteger(s, 'upAfterSeconds', 0, 86_400, D.upAfterSeconds),
    downAfterSeconds: optionalInteger(s, 'downAfterSeconds', 0, 86_400, D.downAfterSeconds),
    maxStep: optionalInteger(s, 'maxStep', 1, MAX_POOL_NODES, D.maxStep),
  };
  if (type === 'none' || type === 'reactive') {
    const r = policy('reactive', s, pool) as Extract<AutoscalingPolicy, { type: 'reactive' }>;
    return { type, scaleUpAt: r.scaleUpAt, scaleDownAt: r.scaleDownAt, ...timing, policies: [] };
  }
  let policies: AutoscalingPolicy[];
  if (type === 'composite') {
    const list = s.policies;
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_POLICIES) {
      throw invalidArgument('policies', `expected a list of 1-${MAX_POLICIES} policies like {"type":"queue","targetQueuePerNode":2}`);
    }
    policies = list.map((raw, i) =>
      nested(`policies[${i}].`, () => {
        const p = requireObject(raw, 'policy');
        const t = policyType(p.type, POLICY_TYPES) as AutoscalingPolicy['type'];
        rejectUnknown(p, ['type', ...POLICY_FIELDS[t]]);
        return policy(t, p, pool);
      }),
    );
    const scheduled = policies.filter((p) => p.type === 'scheduled').length;
    if (scheduled > 1) throw invalidArgument('policies', 'at most one scheduled policy (put all its windows in one)');
  } else {
    policies = [policy(type, s, pool)];
  }
  return { type, scaleUpAt: D.scaleUpAt, scaleDownAt: D.scaleDownAt, ...timing, policies };
}

import { invalidArgument } from '../common/errors.ts';
import { parseServing, type ServingConfig, type ServingSpec } from './serving.ts';
import { amount, MAX_POOL_NODES, nested, optionalBoolean, optionalInteger, optionalString, POOL_NAME, POOL_NAME_HELP, rejectUnknown, requireObject, requireString, section, type Amount, type Obj } from './validate.ts';

export { MAX_POOL_NODES, resolveAmount, type Amount } from './validate.ts';

/**
 * Input of the `fleetPool` workflow (public API): the pool spec. Where the nodes come from
 * (provider, zones, credentials) is the worker's pools file; `provider`, when given, is checked
 * against it. See docs/pools.md.
 */
export interface FleetPoolSpec {
  name: string;
  /** Expected provider of the pool in the worker's pools file (`local`, `aws-ec2`, `gce`, `multi`); checked at start. */
  provider?: string;
  /** Informational; the pools file's instance type is what gets provisioned. */
  instanceType?: string;
  minNodes: number;
  maxNodes: number;
  /** Initial desired size (default: minNodes, or the live count if larger, capped at maxNodes). */
  desiredNodes?: number;
  health?: {
    probeIntervalSeconds?: number;
    /** Consecutive unhealthy probes before a node is remediated. */
    unhealthyAfter?: number;
    /** An agent unreachable this long is remediated. */
    unreachableAfterSeconds?: number;
    autoReplace?: boolean;
    /** What happens to a degraded node: `report` (only option today; degraded is never replaced automatically). */
    degraded?: 'report';
    /** Per-request probe timeout (ms) and how many agents are probed at once. */
    probeTimeoutMs?: number;
    probeConcurrency?: number;
    /** Passed to replaceNode children and used by scale-down drains. */
    drainTimeoutSeconds?: number;
    forceDrain?: boolean;
  };
  autoscaling?: {
    type?: 'none' | 'reactive' | 'scheduled' | 'queue';
    /** reactive: mean GPU utilisation % of active nodes at or above which one node is added. */
    scaleUpAt?: number;
    /** reactive: at or below which one node is removed. */
    scaleDownAt?: number;
    /** Seconds after any scale action before the next one. */
    cooldownSeconds?: number;
  };
  disruption?: {
    /** Most nodes cordoned, draining or terminating at once: a count, or a percent string like `"25%"`. */
    maxUnavailable?: number | string;
    /** Automatic remediation stops when fewer healthy nodes than this remain (count or percent). */
    minHealthy?: number | string;
    breaker?: { maxUnhealthyFraction?: number; windowSeconds?: number };
  };
  membership?: {
    /** Unknown drydock-tagged instances of the pool: `adopt` into the pool or only `report` them. */
    unknownInstances?: 'adopt' | 'report';
  };
  /** What the pool serves (absent: a training or batch pool, no model is managed). See docs/pools.md. */
  serving?: ServingSpec;
}

export interface FleetPoolConfig {
  name: string;
  provider?: string;
  instanceType?: string;
  minNodes: number;
  maxNodes: number;
  desiredNodes?: number;
  health: {
    probeIntervalSeconds: number;
    unhealthyAfter: number;
    unreachableAfterSeconds: number;
    autoReplace: boolean;
    degraded: 'report';
    probeTimeoutMs: number;
    probeConcurrency: number;
    drainTimeoutSeconds: number;
    forceDrain: boolean;
  };
  autoscaling: { type: 'none' | 'reactive'; scaleUpAt: number; scaleDownAt: number; cooldownSeconds: number };
  disruption: { maxUnavailable: Amount; minHealthy: Amount; breaker: { maxUnhealthyFraction: number; windowSeconds: number } };
  membership: { unknownInstances: 'adopt' | 'report' };
  serving?: ServingConfig;
}

/** Every default of the pool spec, in one place (documented in docs/pools.md). */
export const FLEET_POOL_DEFAULTS = {
  health: {
    probeIntervalSeconds: 10,
    unhealthyAfter: 2,
    unreachableAfterSeconds: 30,
    autoReplace: true,
    degraded: 'report',
    probeTimeoutMs: 3000,
    probeConcurrency: 100,
    drainTimeoutSeconds: 300,
    forceDrain: false,
  },
  autoscaling: { type: 'none', scaleUpAt: 80, scaleDownAt: 20, cooldownSeconds: 300 },
  disruption: { maxUnavailable: { count: 1 }, minHealthy: { percent: 51 }, breaker: { maxUnhealthyFraction: 0.3, windowSeconds: 300 } },
  membership: { unknownInstances: 'adopt' },
} as const satisfies Omit<FleetPoolConfig, 'name' | 'minNodes' | 'maxNodes'>;

function fraction(obj: Obj, key: string, fallback: number): number {
  const v = obj[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !(v > 0 && v <= 1)) throw invalidArgument(key, `expected a fraction in (0, 1], e.g. 0.3 for 30 %, got ${String(v)}`);
  return v;
}

/** Validates a pool spec and fills in defaults; every error names the field (e.g. `disruption.maxUnavailable`). */
export function parseFleetPoolSpec(raw: unknown): FleetPoolConfig {
  const D = FLEET_POOL_DEFAULTS;
  const obj = requireObject(raw, 'input');
  rejectUnknown(obj, ['name', 'provider', 'instanceType', 'minNodes', 'maxNodes', 'desiredNodes', 'health', 'autoscaling', 'disruption', 'membership', 'serving']);
  const name = requireString(obj, 'name', POOL_NAME, POOL_NAME_HELP);
  const provider = optionalString(obj, 'provider', 32);
  const instanceType = optionalString(obj, 'instanceType', 128);
  if (obj.minNodes === undefined) throw invalidArgument('minNodes', 'is required');
  if (obj.maxNodes === undefined) throw invalidArgument('maxNodes', 'is required');
  const minNodes = optionalInteger(obj, 'minNodes', 0, MAX_POOL_NODES, 0);
  const maxNodes = optionalInteger(obj, 'maxNodes', 1, MAX_POOL_NODES, 1);
  if (maxNodes < minNodes) throw invalidArgument('maxNodes', `must be >= minNodes (${minNodes}), got ${maxNodes}`);
  const desiredNodes = obj.desiredNodes === undefined ? undefined : optionalInteger(obj, 'desiredNodes', minNodes, maxNodes, minNodes);

  const hs = section(obj, 'health');
  const h = nested('health.', () => {
    const s = hs;
    rejectUnknown(s, ['probeIntervalSeconds', 'unhealthyAfter', 'unreachableAfterSeconds', 'autoReplace', 'degraded', 'probeTimeoutMs', 'probeConcurrency', 'drainTimeoutSeconds', 'forceDrain']);
    if (s.degraded !== undefined && s.degraded !== 'report') throw invalidArgument('degraded', `only 'report' is supported: degraded nodes are reported, never replaced automatically`);
    return {
      probeIntervalSeconds: optionalInteger(s, 'probeIntervalSeconds', 1, 3600, D.health.probeIntervalSeconds),
      unhealthyAfter: optionalInteger(s, 'unhealthyAfter', 1, 100, D.health.unhealthyAfter),
      unreachableAfterSeconds: optionalInteger(s, 'unreachableAfterSeconds', 1, 86_400, D.health.unreachableAfterSeconds),
      autoReplace: optionalBoolean(s, 'autoReplace', D.health.autoReplace),
      degraded: 'report' as const,
      probeTimeoutMs: optionalInteger(s, 'probeTimeoutMs', 100, 60_000, D.health.probeTimeoutMs),
      probeConcurrency: optionalInteger(s, 'probeConcurrency', 1, 1000, D.health.probeConcurrency),
      drainTimeoutSeconds: optionalInteger(s, 'drainTimeoutSeconds', 0, 86_400, D.health.drainTimeoutSeconds),
      forceDrain: optionalBoolean(s, 'forceDrain', D.health.forceDrain),
    };
  });

  const as = section(obj, 'autoscaling');
  const a = nested('autoscaling.', () => {
    const s = as;
    rejectUnknown(s, ['type', 'scaleUpAt', 'scaleDownAt', 'cooldownSeconds']);
    const type = s.type ?? D.autoscaling.type;
    if (type === 'scheduled' || type === 'queue') {
      throw invalidArgument('type', `'${type}' is not supported yet; use 'none' or 'reactive'`);
    }
    if (type !== 'none' && type !== 'reactive') throw invalidArgument('type', `expected 'none' or 'reactive', got ${JSON.stringify(type)}`);
    const scaleUpAt = optionalInteger(s, 'scaleUpAt', 1, 100, D.autoscaling.scaleUpAt);
    const scaleDownAt = optionalInteger(s, 'scaleDownAt', 0, 99, D.autoscaling.scaleDownAt);
    if (scaleDownAt >= scaleUpAt) throw invalidArgument('scaleDownAt', `must be below scaleUpAt (${scaleUpAt}), got ${scaleDownAt}`);
    return { type: type as 'none' | 'reactive', scaleUpAt, scaleDownAt, cooldownSeconds: optionalInteger(s, 'cooldownSeconds', 0, 86_400, D.autoscaling.cooldownSeconds) };
  });

  const ds = section(obj, 'disruption');
  const d = nested('disruption.', () => {
    const s = ds;
    rejectUnknown(s, ['maxUnavailable', 'minHealthy', 'breaker']);
    const maxUnavailable = amount(s, 'maxUnavailable', 'maxUnavailable', 1, D.disruption.maxUnavailable);
    const minHealthy = amount(s, 'minHealthy', 'minHealthy', 0, D.disruption.minHealthy);
    const bs = section(s, 'breaker');
    const breaker = nested('breaker.', () => {
      const b = bs;
      rejectUnknown(b, ['maxUnhealthyFraction', 'windowSeconds']);
      return {
        maxUnhealthyFraction: fraction(b, 'maxUnhealthyFraction', D.disruption.breaker.maxUnhealthyFraction),
        windowSeconds: optionalInteger(b, 'windowSeconds', 1, 86_400, D.disruption.breaker.windowSeconds),
      };
    });
    return { maxUnavailable, minHealthy, breaker };
  });

  const ms = section(obj, 'membership');
  const m = nested('membership.', () => {
    const s = ms;
    rejectUnknown(s, ['unknownInstances']);
    const u = s.unknownInstances ?? D.membership.unknownInstances;
    if (u !== 'adopt' && u !== 'report') throw invalidArgument('unknownInstances', `expected 'adopt' or 'report', got ${JSON.stringify(u)}`);
    return { unknownInstances: u as 'adopt' | 'report' };
  });

  const serving = obj.serving === undefined ? undefined : parseServing(section(obj, 'serving'));

  return { name, provider, instanceType, minNodes, maxNodes, desiredNodes, health: h, autoscaling: a, disruption: d, membership: m, ...(serving ? { serving } : {}) };
}

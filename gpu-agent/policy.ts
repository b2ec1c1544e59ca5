import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

/**
 * The health policy: one versioned document (YAML or JSON) that turns telemetry into a verdict.
 * Defaults live here and only here; a policy file overrides any subset of them.
 */
export interface HealthPolicy {
  version: string;
  xid: {
    /** Codes that make a GPU unhealthy at once; they stay until the agent restarts (a GPU reset or reboot). */
    fatal: number[];
    /** Codes that make a GPU degraded while they are within `windowSeconds`. */
    degraded: number[];
    /** Codes recorded and counted but that do not change health (usually an application's own fault). */
    ignored: number[];
    /** What a code in none of the lists counts as. */
    unknown: 'degraded' | 'ignored' | 'fatal';
    windowSeconds: number;
    /** This many degraded events on one GPU within the window make it unhealthy. */
    escalateAfter: number;
  };
  thermal: { degradedC: number; unhealthyC: number };
  ecc: { correctedDegradedAbove: number; uncorrectedUnhealthyAbove: number };
  /** Active throttle reasons that make a GPU degraded (idle and application clocks are normal). */
  throttle: { degradedReasons: string[] };
  /** A pending row remap or page retirement needs a GPU reset: degraded; a remap failure: unhealthy. */
  memory: { pendingIsDegraded: boolean; remapFailureIsUnhealthy: boolean };
}

/*
 * XID classes. Fatal starts from the union of Navarch's and the EKS node monitoring agent's fatal
 * lists. The codes the anchors disagree on, and our decision:
 *   13 graphics engine exception, 31 MMU fault: Navarch fatal, device plugin ignores. Usually the
 *      application's bug, sometimes hardware -> degraded; repeats escalate to unhealthy.
 *   43 GPU stopped processing, 45 preemptive cleanup: Navarch fatal, device plugin ignores. Both
 *      follow an application being killed or failing -> ignored (recorded and counted only).
 *   68 NVDEC exception: Navarch fatal, device plugin ignores -> degraded (video engine only).
 *   109 context switch timeout: EKS fatal, device plugin ignores -> degraded, repeats escalate.
 *   32 corrupted push buffer stream (Navarch only): fatal, it points at PCIe corruption.
 *   92 high single-bit ECC rate, 94 contained ECC error (Navarch only): fatal, the memory needs a reset.
 */
export const DEFAULT_HEALTH_POLICY: HealthPolicy = {
  version: '2026-11-23.2',
  xid: {
    fatal: [32, 46, 48, 54, 61, 62, 63, 64, 69, 74, 79, 92, 94, 95, 100, 110, 119, 120, 136, 140, 142, 143, 151, 155, 156, 158],
    degraded: [13, 31, 68, 109],
    ignored: [43, 45],
    unknown: 'degraded',
    windowSeconds: 3600,
    escalateAfter: 3,
  },
  thermal: { degradedC: 85, unhealthyC: 95 },
  ecc: { correctedDegradedAbove: 100, uncorrectedUnhealthyAbove: 0 },
  throttle: { degradedReasons: ['hw_slowdown', 'hw_thermal_slowdown', 'hw_power_brake_slowdown', 'sw_thermal_slowdown'] },
  memory: { pendingIsDegraded: true, remapFailureIsUnhealthy: true },
};

export class PolicyError extends Error {}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function merge(path: string, base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (isObj(base)) {
    if (!isObj(over)) throw new PolicyError(`${path}: expected an object`);
    const out: Obj = { ...base };
    for (const [k, v] of Object.entries(over)) {
      if (!(k in base)) throw new PolicyError(`${path ? `${path}.` : ''}${k}: unknown policy field (known: ${Object.keys(base).join(', ')})`);
      out[k] = merge(path ? `${path}.${k}` : k, base[k], v);
    }
    return out;
  }
  if (Array.isArray(base)) {
    if (!Array.isArray(over)) throw new PolicyError(`${path}: expected a list`);
    const want = typeof base[0] === 'string' ? 'string' : 'number';
    over.forEach((x, i) => {
      if (typeof x !== want || (want === 'number' && !(Number.isInteger(x) && (x as number) > 0))) {
        throw new PolicyError(`${path}[${i}]: expected ${want === 'number' ? 'a positive integer' : 'a string'}`);
      }
    });
    return over;
  }
  if (typeof over !== typeof base) throw new PolicyError(`${path}: expected a ${typeof base}`);
  if (typeof over === 'number' && (!Number.isFinite(over) || over < 0)) throw new PolicyError(`${path}: expected a number >= 0`);
  return over;
}

/** Validates a policy document (any subset of the fields) and fills in the defaults. */
export function parsePolicy(doc: unknown): HealthPolicy {
  if (!isObj(doc)) throw new PolicyError('policy: expected an object');
  if (typeof doc.version !== 'string' || doc.version === '') throw new PolicyError('version: a policy document must name its version');
  const p = merge('', DEFAULT_HEALTH_POLICY, doc) as HealthPolicy;
  if (!['degraded', 'ignored', 'fatal'].includes(p.xid.unknown)) throw new PolicyError(`xid.unknown: expected degraded, ignored or fatal`);
  if (p.thermal.degradedC > p.thermal.unhealthyC) throw new PolicyError('thermal.degradedC: must not exceed thermal.unhealthyC');
  if (!Number.isInteger(p.xid.escalateAfter) || p.xid.escalateAfter < 1) throw new PolicyError('xid.escalateAfter: expected an integer >= 1');
  const seen = new Map<number, string>();
  for (const cls of ['fatal', 'degraded', 'ignored'] as const) {
    for (const code of p.xid[cls]) {
      if (seen.has(code)) throw new PolicyError(`xid.${cls}: code ${code} is also listed in xid.${seen.get(code)}`);
      seen.set(code, cls);
    }
  }
  return p;
}

/** Loads a policy file: YAML (which includes JSON). */
export function loadPolicyFile(path: string): HealthPolicy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PolicyError(`--policy: cannot read ${path} (${(err as Error).message})`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new PolicyError(`--policy: ${path} is not valid YAML/JSON (${(err as Error).message})`);
  }
  try {
    return parsePolicy(doc);
  } catch (err) {
    throw new PolicyError(`--policy ${path}: ${(err as Error).message}`);
  }
}

export type XidClass = 'fatal' | 'degraded' | 'ignored';

export function classifyXid(policy: HealthPolicy, code: number): XidClass {
  if (policy.xid.fatal.includes(code)) return 'fatal';
  if (policy.xid.degraded.includes(code)) return 'degraded';
  if (policy.xid.ignored.includes(code)) return 'ignored';
  return policy.xid.unknown;
}

import { invalidArgument } from '../common/errors.ts';
import { FAULT_CLASSES, REMEDIATION_DEFAULTS, REMEDY_ACTIONS, type FaultClass, type RemediationConfig, type RemedyAction } from '../pool/ladder.ts';
import { nested, optionalBoolean, optionalInteger, rejectUnknown, section, type Obj } from './validate.ts';

/** `health.remediation` of the pool spec (docs/pools.md, "The remediation ladder"). */
export interface RemediationSpec {
  quarantine?: boolean;
  /** Per fault class, the ordered actions; classes not given keep their default ladder. */
  ladders?: Partial<Record<FaultClass, RemedyAction[]>>;
  recurrenceWindowSeconds?: number;
  waitSeconds?: number;
  rebootTimeoutSeconds?: number;
}

/** Parses `health.remediation` (errors name the field, e.g. `health.remediation.ladders.xid[1]`). */
export function parseRemediation(health: Obj): RemediationConfig {
  const D = REMEDIATION_DEFAULTS;
  const rs = section(health, 'remediation');
  return nested('remediation.', () => {
    rejectUnknown(rs, ['quarantine', 'ladders', 'recurrenceWindowSeconds', 'waitSeconds', 'rebootTimeoutSeconds']);
    const ls = section(rs, 'ladders');
    const ladders = nested('ladders.', () => {
      rejectUnknown(ls, FAULT_CLASSES);
      const out = { ...D.ladders };
      for (const [cls, v] of Object.entries(ls)) {
        if (!Array.isArray(v) || v.length === 0 || v.length > 10) throw invalidArgument(cls, `expected a list of 1 to 10 actions (${REMEDY_ACTIONS.join(', ')}), e.g. ["reboot", "replace"]`);
        v.forEach((a, i) => {
          if (!REMEDY_ACTIONS.includes(a as RemedyAction)) throw invalidArgument(`${cls}[${i}]`, `expected one of ${REMEDY_ACTIONS.join(', ')}, got ${JSON.stringify(a)}`);
        });
        if (cls === 'dead' && v.includes('reboot')) throw invalidArgument(cls, 'an instance dead at the provider cannot be rebooted: use replace (or wait)');
        out[cls as FaultClass] = v as RemedyAction[];
      }
      return out;
    });
    return {
      quarantine: optionalBoolean(rs, 'quarantine', D.quarantine),
      ladders,
      recurrenceWindowSeconds: optionalInteger(rs, 'recurrenceWindowSeconds', 0, 30 * 86_400, D.recurrenceWindowSeconds),
      waitSeconds: optionalInteger(rs, 'waitSeconds', 1, 86_400, D.waitSeconds),
      rebootTimeoutSeconds: optionalInteger(rs, 'rebootTimeoutSeconds', 10, 86_400, D.rebootTimeoutSeconds),
    };
  });
}

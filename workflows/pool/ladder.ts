import { isDead } from '../common/health.ts';

/**
 * The remediation ladder (pure): each fault class maps to an ordered list of actions. An incident
 * starts on the first rung; a fault of the same class that comes back within
 * `recurrenceWindowSeconds` of the last remediation starts one rung higher, and a rung that does
 * not bring the node back (a reboot after which it is still not healthy, a wait that ends with the
 * fault still there) moves on to the next rung at once. Past the last rung the last one repeats.
 */
export type RemedyAction = 'reboot' | 'replace' | 'wait';
export const REMEDY_ACTIONS: readonly RemedyAction[] = ['reboot', 'replace', 'wait'];

export const FAULT_CLASSES = ['xid-bus', 'xid', 'ecc', 'row-remap-failure', 'row-remap-pending', 'thermal', 'gpu-missing', 'gpu-backend', 'unreachable', 'dead', 'other'] as const;
export type FaultClass = (typeof FAULT_CLASSES)[number];

/**
 * Defaults drawn from the anchors (EKS node repair, HyperPod, NVSentinel, Slurm): a GPU fallen
 * off the bus (XID 79) or another fatal XID is often cleared by a reset, so reboot first; an
 * uncorrectable ECC error or a failed row remap is a bad part, so replace; a pending row remap
 * needs a GPU reset (reboot); heat may pass (wait, then reboot, then replace); an agent that does
 * not answer may be hung (reboot); an instance dead at the provider cannot be rebooted.
 */
export const DEFAULT_LADDERS: Record<FaultClass, RemedyAction[]> = {
  'xid-bus': ['reboot', 'replace'],
  xid: ['reboot', 'replace'],
  ecc: ['replace'],
  'row-remap-failure': ['replace'],
  'row-remap-pending': ['reboot', 'replace'],
  thermal: ['wait', 'reboot', 'replace'],
  'gpu-missing': ['reboot', 'replace'],
  'gpu-backend': ['reboot', 'replace'],
  unreachable: ['reboot', 'replace'],
  dead: ['replace'],
  other: ['replace'],
};

export interface RemediationConfig {
  /** Cordon a node at once when it turns unhealthy (unless the breaker is open or remediation paused). */
  quarantine: boolean;
  ladders: Record<FaultClass, RemedyAction[]>;
  recurrenceWindowSeconds: number;
  /** How long a `wait` rung waits for the fault to clear by itself. */
  waitSeconds: number;
  /** How long a rebooted node has to come back healthy before the next rung runs. */
  rebootTimeoutSeconds: number;
}

export const REMEDIATION_DEFAULTS: RemediationConfig = {
  quarantine: true,
  ladders: DEFAULT_LADDERS,
  recurrenceWindowSeconds: 3600,
  waitSeconds: 300,
  rebootTimeoutSeconds: 600,
};

/** The fault class of a bad node from its health and the agent's reasons (worst first: replace-only classes win). */
export function classify(health: string, reasons: string[] | undefined): FaultClass {
  if (health === 'unreachable') return isDead(reasons) ? 'dead' : 'unreachable';
  const text = (reasons ?? []).join('\n');
  if (/uncorrected ECC|xid (48|63|64|94|95)\b/.test(text)) return 'ecc';
  if (/row remapping failed/.test(text)) return 'row-remap-failure';
  if (/xid 79\b/.test(text)) return 'xid-bus';
  if (/expected \d+ GPUs, found/.test(text)) return 'gpu-missing';
  if (/gpu backend .* failed/.test(text)) return 'gpu-backend';
  if (/xid \d+/.test(text)) return 'xid';
  if (/temperature/.test(text)) return 'thermal';
  if (/row remap pending|page retirement pending/.test(text)) return 'row-remap-pending';
  return 'other';
}

/** What a node remembers of its last remediation, to climb the ladder when the fault comes back. */
export interface LastRemedy {
  class: FaultClass;
  rung: number;
  endedAt: number;
}

/** The rung a new incident of `cls` starts on, given the node's last remediation. */
export function startRung(cls: FaultClass, last: LastRemedy | undefined, now: number, cfg: RemediationConfig): number {
  if (!last || last.class !== cls || now - last.endedAt > cfg.recurrenceWindowSeconds * 1000) return 0;
  return last.rung + 1;
}

/** The action on `rung` (the last one repeats past the end; an empty ladder means replace). */
export function actionAt(cls: FaultClass, rung: number, cfg: RemediationConfig): RemedyAction {
  const ladder = cfg.ladders[cls] ?? [];
  if (ladder.length === 0) return 'replace';
  return ladder[Math.min(rung, ladder.length - 1)];
}

import { appendFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The header the control plane's activities send, naming the workflow that asked for the call. */
export const WORKFLOW_ID_HEADER = 'x-drydock-workflow-id';

/** Control actions the audit trail records, by route. */
export const AUDITED_ROUTES: Readonly<Record<string, string>> = {
  'POST /cordon': 'cordon',
  'POST /uncordon': 'uncordon',
  'POST /drain': 'drain',
  'PUT /model': 'model-swap',
  'POST /smoke': 'smoke',
  'POST /jobs': 'sim-jobs',
  'POST /sim/faults': 'fault-inject',
  'POST /sim/faults/clear': 'fault-clear',
};

export interface AuditRecord {
  time: string;
  action: string;
  /** The role the caller's token has (`shared` in the dev-only shared-token mode), or `none` when it had no valid token. */
  role: string;
  /** The token's name from the tokens file, or its fingerprint (never the token). */
  caller: string;
  address: string;
  workflowId?: string;
  args: Record<string, unknown>;
  result: { status: number; outcome?: string; error?: string };
  durationMs: number;
}

export interface AuditSettings {
  /** Where audit.log lives (the agent's data dir); none: stdout only, when asked. */
  dir?: string;
  stdout: boolean;
  /** audit.log is rotated (audit.log.1 …) once it passes this size. */
  maxBytes: number;
  /** Rotated files kept. */
  keep: number;
}

export const AUDIT_DEFAULTS = { maxBytes: 10 * 2 ** 20, keep: 3 } as const;

const MAX_STRING = 200;

/** Removes what may be secret from a URI: user info, query and fragment (signed URLs carry credentials there). */
export function redactUri(uri: string): string {
  try {
    const u = new URL(uri);
    if (u.protocol === 'file:') return uri.split(/[?#]/)[0];
    u.username = '';
    u.password = '';
    const had = u.search !== '' || u.hash !== '';
    u.search = '';
    u.hash = '';
    return had ? `${u.toString()}?<redacted>` : u.toString();
  } catch {
    return uri.split(/[?#]/)[0]; // a plain path
  }
}

/** URIs inside free text (error messages) redacted as redactUri does. */
export function redactText(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, '$1').replace(/\b((?:https?|s3):\/\/[^\s?#'")]+)[?#][^\s'")]*/gi, '$1?<redacted>');
}

/** The body's fields as the audit line shows them: URIs redacted, long strings cut, nothing else kept from nested objects. */
export function auditArgs(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (k === 'uri' && typeof v === 'string') out[k] = redactUri(v);
    else if (typeof v === 'string') out[k] = v.length > MAX_STRING ? `${v.slice(0, MAX_STRING)}…` : v;
    else if (typeof v === 'number' || typeof v === 'boolean' || v === null) out[k] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) out[k] = v.slice(0, 16);
    else out[k] = '<omitted>';
  }
  return out;
}

/** A workflow id as a header gives it, if it looks like one (printable, bounded). */
export function workflowIdFrom(header: string | string[] | undefined): string | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  if (!v || v.length > 512 || !/^[\x21-\x7e][\x20-\x7e]*$/.test(v)) return undefined;
  return v;
}

/** One JSON line per control action, into `<dir>/audit.log` (rotated by size) and, when asked, stdout. */
export class AuditLog {
  private size = 0;
  readonly file?: string;

  constructor(private readonly settings: AuditSettings) {
    if (settings.dir) {
      mkdirSync(settings.dir, { recursive: true });
      this.file = join(settings.dir, 'audit.log');
      this.size = existsSync(this.file) ? statSync(this.file).size : 0;
    }
  }

  describe(): string {
    return `audit: ${[this.file, this.settings.stdout ? 'stdout' : undefined].filter(Boolean).join(' + ') || 'off (no --data-dir, no --audit-stdout)'}`;
  }

  write(rec: AuditRecord): void {
    const line = `${JSON.stringify(rec)}\n`;
    if (this.settings.stdout) process.stdout.write(`audit ${line}`);
    if (!this.file) return;
    try {
      if (this.size > 0 && this.size + line.length > this.settings.maxBytes) this.rotate();
      appendFileSync(this.file, line, { mode: 0o600 });
      this.size += Buffer.byteLength(line);
    } catch (err) {
      // The action already happened: say the trail has a gap rather than fail it.
      console.error(`gpu-agent: cannot write the audit log ${this.file}: ${(err as Error).message}`);
    }
  }

  private rotate(): void {
    const f = this.file!;
    const keep = Math.max(1, this.settings.keep);
    rmSync(`${f}.${keep}`, { force: true });
    for (let i = keep - 1; i >= 1; i--) if (existsSync(`${f}.${i}`)) renameSync(`${f}.${i}`, `${f}.${i + 1}`);
    renameSync(f, `${f}.1`);
    this.size = 0;
  }
}

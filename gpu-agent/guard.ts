import type { IncomingMessage } from 'node:http';
import type { AgentConfig } from './config.ts';
import { AUDITED_ROUTES, auditArgs, AuditLog, redactText, workflowIdFrom, WORKFLOW_ID_HEADER } from './audit.ts';
import { describeAuth, roleForRoute, TokenStore, type Principal } from './auth.ts';
import { HttpError } from './http.ts';
import { RequestLimits } from './limits.ts';

/** What one admitted request carries to the end: who asked, and how to give back its slot and audit it. */
export interface Gate {
  principal?: Principal;
  /** Gives back the control slot (idempotent). */
  release(): void;
  /** Writes the audit line of a control action (a no-op for other routes). */
  done(status: number, body: Record<string, unknown>, out?: unknown, error?: string): void;
}

const article = (role: string) => (role === 'inference' ? 'an inference' : `a ${role}`);

function outcomeOf(out: unknown): string | undefined {
  if (!out || typeof out !== 'object') return undefined;
  const o = out as { state?: unknown; model?: { sha256?: unknown } | null; text?: unknown; status?: unknown };
  if (typeof o.state === 'string') return o.state;
  if (o.model && typeof o.model.sha256 === 'string') return `serving ${o.model.sha256}`;
  if (typeof o.status === 'string') return o.status;
  return undefined;
}

/**
 * The agent's front door, in one place: who the caller is (401), whether its token's role opens
 * the route (403 naming the role needed), request limits (429 + Retry-After), and the audit line
 * of every control action, with the workflow id the control plane sends in a header.
 */
export class Guard {
  readonly tokens: TokenStore;
  readonly limits: RequestLimits;
  readonly audit: AuditLog;

  constructor(private readonly config: AgentConfig) {
    this.tokens = new TokenStore(config.auth);
    this.limits = new RequestLimits(config.limits);
    this.audit = new AuditLog({ ...config.audit, dir: config.dataDir });
  }

  describe(): string {
    return `${describeAuth(this.tokens)}; ${this.audit.describe()}`;
  }

  private line(req: IncomingMessage, key: string, principal: Principal | undefined, started: number, status: number, body: Record<string, unknown>, out?: unknown, error?: string): void {
    const action = AUDITED_ROUTES[key];
    if (!action) return;
    const roles = principal?.roles;
    this.audit.write({
      time: new Date().toISOString(),
      action,
      role: !roles ? 'none' : roles.length > 1 ? 'shared' : roles[0],
      caller: principal?.name ?? 'unknown',
      address: req.socket.remoteAddress ?? 'unknown',
      workflowId: workflowIdFrom(req.headers[WORKFLOW_ID_HEADER]),
      args: auditArgs(body),
      result: { status, ...(outcomeOf(out) ? { outcome: outcomeOf(out) } : {}), ...(error ? { error: redactText(error).slice(0, 300) } : {}) },
      durationMs: Date.now() - started,
    });
  }

  /** Admits the request for route `key` or throws the HttpError to answer (recording denied control actions). */
  admit(req: IncomingMessage, key: string): Gate {
    const started = Date.now();
    const role = roleForRoute(key);
    const open = key === 'GET /metrics' && this.config.auth.metricsPublic;
    const principal = this.tokens.authenticate(req.headers.authorization);
    const deny = (err: HttpError): never => {
      this.line(req, key, principal, started, err.status, {}, undefined, err.message);
      throw err;
    };
    if (!open) {
      if (!principal) deny(new HttpError(401, 'authorization: missing or wrong bearer token', { 'www-authenticate': 'Bearer' }));
      else if (!principal.roles.includes(role)) {
        deny(new HttpError(403, `authorization: ${key} needs ${article(role)} token; this is ${principal.roles.map(article).join(' and ')} token`));
      }
    }
    if (principal) this.limits.charge(principal.id);
    const release = role === 'control' && !open ? this.limits.enterControl() : () => {};
    return {
      principal,
      release,
      done: (status, body, out, error) => this.line(req, key, principal, started, status, body, out, error),
    };
  }

  close(): void {
    this.tokens.stop();
  }
}

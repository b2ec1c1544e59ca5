import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';

/**
 * Who may call what on the agent. `inference`: the OpenAI-compatible routes applications call.
 * `control`: everything else (health, watch, cordon, drain, model, smoke, traffic, metrics, faults),
 * which only the control plane (and operators) should hold. A `shared` token (the dev-only
 * shared-token mode) has both roles.
 */
export type Role = 'inference' | 'control';
export const ROLES: readonly Role[] = ['inference', 'control'];

/** Routes an inference token opens; every other authenticated route needs a control token. */
export const INFERENCE_ROUTES: ReadonlySet<string> = new Set(['POST /v1/chat/completions', 'POST /v1/completions', 'GET /v1/models']);

export function roleForRoute(key: string): Role {
  return INFERENCE_ROUTES.has(key) ? 'inference' : 'control';
}

/** A caller the agent knows: its roles and a name safe to log (the token's own name, or a fingerprint). */
export interface Principal {
  roles: readonly Role[];
  name: string;
  /** Stable per token and not secret: keys rate limits and audit lines. */
  id: string;
}

export class AuthConfigError extends Error {}

/** Token text a bearer header may carry (no spaces, no control characters). */
const TOKEN_RE = /^[A-Za-z0-9._~+/=-]+$/;
const NAME_RE = /^[A-Za-z0-9._@-]{1,64}$/;
export const MIN_TOKEN_CHARS = 16;

export function fingerprint(token: string): string {
  return `sha256:${createHash('sha256').update(token).digest('hex').slice(0, 12)}`;
}

export function checkToken(where: string, token: string): void {
  if (!TOKEN_RE.test(token)) throw new AuthConfigError(`${where}: a token may hold only letters, digits and . _ ~ + / = -`);
  if (token.length < MIN_TOKEN_CHARS) throw new AuthConfigError(`${where}: a token must be at least ${MIN_TOKEN_CHARS} characters`);
}

interface Entry {
  digest: Buffer;
  principal: Principal;
}

function entry(token: string, roles: readonly Role[], name?: string): Entry {
  const id = fingerprint(token);
  return { digest: createHash('sha256').update(token).digest(), principal: { roles, name: name ?? id, id } };
}

/**
 * Parses a tokens file: one token per line as `<role> <token>[,<token>…] [<name>]`, role `inference` or
 * `control`; blank lines and lines starting with `#` are skipped. Throws naming the line.
 */
export function parseTokensFile(text: string, where: string): Array<{ role: Role; token: string; name?: string }> {
  const out: Array<{ role: Role; token: string; name?: string }> = [];
  const seen = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const at = `${where}: line ${i + 1}`;
    const fields = line.split(/\s+/);
    if (fields.length < 2 || fields.length > 3) throw new AuthConfigError(`${at}: expected '<role> <token> [<name>]' (role inference or control)`);
    const [role, tokens, name] = fields;
    if (!ROLES.includes(role as Role)) throw new AuthConfigError(`${at}: unknown role '${role}' (expected inference or control)`);
    if (name !== undefined && !NAME_RE.test(name)) throw new AuthConfigError(`${at}: name '${name}': expected 1-64 letters, digits, . _ @ -`);
    // Comma-separated: a node's control tokens of every key during a rotation, as {{controlToken}} fills them in.
    for (const token of tokens.split(',')) {
      checkToken(at, token);
      if (seen.has(token)) throw new AuthConfigError(`${at}: this token is listed twice`);
      seen.add(token);
      out.push({ role: role as Role, token, name });
    }
  });
  return out;
}

export function readTokensFile(path: string): ReturnType<typeof parseTokensFile> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new AuthConfigError(`--tokens-file: cannot read ${path} (${(err as Error).message})`);
  }
  return parseTokensFile(text, `--tokens-file ${path}`);
}

export interface AuthSettings {
  mode: 'per-node' | 'shared-token';
  /** shared-token mode: the one token that opens everything. */
  sharedToken?: string;
  /** per-node mode: this node's control token(s) from the control plane (several during a key rotation). */
  controlTokens: string[];
  /** Extra tokens with roles (applications' inference tokens, more control tokens); re-read on SIGHUP or change. */
  tokensFile?: string;
  /** `/metrics` answers without a token. */
  metricsPublic: boolean;
}

/**
 * The agent's tokens: fixed ones from its environment plus those of the tokens file, which
 * `reload()` re-reads (on SIGHUP, and when the file changes). A reload that finds the file
 * malformed keeps the tokens it had and reports why, so a typo does not lock every caller out.
 */
export class TokenStore {
  private fixed: Entry[];
  private fromFile: Entry[] = [];
  private watching = false;

  constructor(readonly settings: AuthSettings, private readonly log: (line: string) => void = console.error) {
    if (settings.mode === 'shared-token') this.fixed = [entry(settings.sharedToken!, ROLES, 'shared-token')];
    else this.fixed = settings.controlTokens.map((t, i) => entry(t, ['control'], `node-control-${i + 1}`));
    if (settings.tokensFile) this.fromFile = this.read();
  }

  private read(): Entry[] {
    return readTokensFile(this.settings.tokensFile!).map((t) => entry(t.token, [t.role], t.name));
  }

  /** Re-reads the tokens file; returns false (keeping the old tokens) when it cannot. */
  reload(): boolean {
    if (!this.settings.tokensFile) return true;
    try {
      this.fromFile = this.read();
      this.log(`gpu-agent: tokens file reloaded (${this.counts()})`);
      return true;
    } catch (err) {
      this.log(`gpu-agent: ${(err as Error).message}; keeping the tokens read before`);
      return false;
    }
  }

  /** Reloads whenever the file's modification time or size changes (polled, so it works across editors' renames). */
  watch(intervalMs = 1000): void {
    if (!this.settings.tokensFile || this.watching) return;
    this.watching = true;
    watchFile(this.settings.tokensFile, { interval: intervalMs, persistent: false }, (cur, prev) => {
      if (cur.mtimeMs !== prev.mtimeMs || cur.size !== prev.size || cur.ino !== prev.ino) this.reload();
    });
  }

  stop(): void {
    if (this.watching) unwatchFile(this.settings.tokensFile!);
    this.watching = false;
  }

  counts(): string {
    const all = [...this.fixed, ...this.fromFile];
    const n = (r: Role) => all.filter((e) => e.principal.roles.includes(r)).length;
    return `${n('control')} control, ${n('inference')} inference token(s)`;
  }

  /** The caller a bearer header names, or undefined; compared in constant time per stored token. */
  authenticate(header: string | undefined): Principal | undefined {
    if (!header?.startsWith('Bearer ')) return undefined;
    const given = createHash('sha256').update(header.slice(7)).digest();
    let found: Principal | undefined;
    for (const e of [...this.fixed, ...this.fromFile]) if (timingSafeEqual(given, e.digest) && !found) found = e.principal;
    return found;
  }
}

/** The agent's start-up words for its auth mode (shared-token mode says it is for development). */
export function describeAuth(store: TokenStore): string {
  const s = store.settings;
  if (s.mode === 'shared-token') return 'auth: SHARED TOKEN (dev only: one token opens every endpoint of every node)';
  return `auth: per-node (${store.counts()}${s.tokensFile ? `, tokens file ${s.tokensFile}` : ''}${s.metricsPublic ? ', /metrics public' : ''})`;
}

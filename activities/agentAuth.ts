import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * How workers authenticate to agents. Per node (production): each node's control token is
 * HMAC-SHA256(key, `<pool>/<nodeId>`), so a token read from one node opens no other; only workers
 * hold the key. Shared token (dev only): one token for every node and every endpoint.
 *
 * Keys come as a list, like the payload codec's: the first key's token is offered first and every
 * key's token is tried in turn (so nodes made before a rotation stay reachable), and a new node is
 * handed the tokens of every key (so workers on either side of a rotation reach it).
 */
export class AgentAuthError extends Error {}

export interface AgentKey {
  id: string;
  secret: Buffer;
}

export const MIN_KEY_BYTES = 32;
const KEY_ID_RE = /^[A-Za-z0-9_-]{1,32}$/;

export interface AgentAuth {
  readonly mode: 'per-node' | 'shared-token';
  /** Tokens to present to a node, in the order to try them (the signing key's first). */
  tokensFor(pool: string, nodeId: string): string[];
  /** Key ids, first = signing (per-node), for start-up lines; never the keys. */
  describe(): string;
}

/** The per-node token of `<pool>/<nodeId>` under one key: `ddn1.<key id>.<base64url HMAC>`. */
export function deriveNodeToken(key: AgentKey, pool: string, nodeId: string): string {
  const mac = createHmac('sha256', key.secret).update(`${pool}/${nodeId}`).digest('base64url');
  return `ddn1.${key.id}.${mac}`;
}

function parseKey(entry: string, source: string, index: number): AgentKey {
  const colon = entry.indexOf(':');
  const id = colon >= 0 ? entry.slice(0, colon) : undefined;
  const secret = Buffer.from(colon >= 0 ? entry.slice(colon + 1) : entry, 'utf8');
  const where = `${source} (key ${index + 1})`;
  if (secret.length === 0) throw new AgentAuthError(`${where}: the key is empty; generate one with 'openssl rand -base64 32'`);
  if (secret.length < MIN_KEY_BYTES) {
    throw new AgentAuthError(`${where}: the key is ${secret.length} bytes, shorter than ${MIN_KEY_BYTES}; generate one with 'openssl rand -base64 32'`);
  }
  if (id !== undefined && !KEY_ID_RE.test(id)) throw new AgentAuthError(`${where}: key id '${id}' must be 1-32 letters, digits, '_' or '-'`);
  return { id: id ?? `k${createHash('sha256').update(secret).digest('hex').slice(0, 8)}`, secret };
}

/** Parses a key list (comma- or newline-separated, `#` comments): each `[<id>:]<secret of 32+ bytes>`. */
export function parseAgentKeys(text: string, source: string): AgentKey[] {
  const entries = text.split(/[,\n]/).map((s) => s.trim()).filter((s) => !s.startsWith('#'));
  if (entries.every((e) => e === '')) throw new AgentAuthError(`${source}: no key found (it is empty); generate one with 'openssl rand -base64 32'`);
  const keys = entries.filter(Boolean).map((e, i) => parseKey(e, source, i));
  if (new Set(keys.map((k) => k.id)).size !== keys.length) throw new AgentAuthError(`${source}: two keys share an id; give each key its own id`);
  return keys;
}

export class PerNodeAuth implements AgentAuth {
  readonly mode = 'per-node';
  constructor(readonly keys: AgentKey[]) {
    if (keys.length === 0) throw new AgentAuthError('per-node agent auth needs at least one key');
  }
  tokensFor(pool: string, nodeId: string): string[] {
    return this.keys.map((k) => deriveNodeToken(k, pool, nodeId));
  }
  describe(): string {
    return `per-node tokens, signing key ${this.keys[0].id}${this.keys.length > 1 ? `, also accepted ${this.keys.slice(1).map((k) => k.id).join(', ')}` : ''}`;
  }
}

export class SharedTokenAuth implements AgentAuth {
  readonly mode = 'shared-token';
  constructor(private readonly token: string) {}
  tokensFor(): string[] {
    return [this.token];
  }
  describe(): string {
    return 'SHARED TOKEN (dev only: one token opens every endpoint of every node)';
  }
}

/**
 * The worker's agent auth from env: DRYDOCK_AGENT_KEY (comma-separated) or DRYDOCK_AGENT_KEY_FILE
 * (one per line); or, with DRYDOCK_AGENT_AUTH=shared-token (dev only), DRYDOCK_AGENT_TOKEN.
 */
export function loadAgentAuth(env: NodeJS.ProcessEnv): AgentAuth {
  const mode = env.DRYDOCK_AGENT_AUTH ?? 'per-node';
  if (mode === 'shared-token') {
    const token = env.DRYDOCK_AGENT_TOKEN ?? '';
    if (token.length < 16) throw new AgentAuthError("DRYDOCK_AGENT_TOKEN: DRYDOCK_AGENT_AUTH=shared-token needs the agents' shared secret (at least 16 characters)");
    return new SharedTokenAuth(token);
  }
  if (mode !== 'per-node') throw new AgentAuthError(`DRYDOCK_AGENT_AUTH: expected per-node or shared-token, got '${mode}'`);
  if (env.DRYDOCK_AGENT_KEY !== undefined) return new PerNodeAuth(parseAgentKeys(env.DRYDOCK_AGENT_KEY, 'DRYDOCK_AGENT_KEY'));
  if (env.DRYDOCK_AGENT_KEY_FILE) {
    const source = `DRYDOCK_AGENT_KEY_FILE (${env.DRYDOCK_AGENT_KEY_FILE})`;
    let text: string;
    try {
      text = readFileSync(env.DRYDOCK_AGENT_KEY_FILE, 'utf8');
    } catch (err) {
      throw new AgentAuthError(`${source}: cannot read the key file: ${(err as Error).message}`);
    }
    return new PerNodeAuth(parseAgentKeys(text, source));
  }
  const hint = env.DRYDOCK_AGENT_TOKEN ? ' (DRYDOCK_AGENT_TOKEN alone is the dev-only shared-token mode: set DRYDOCK_AGENT_AUTH=shared-token to use it)' : '';
  throw new AgentAuthError(`DRYDOCK_AGENT_KEY: set DRYDOCK_AGENT_KEY or DRYDOCK_AGENT_KEY_FILE to the key(s) agent tokens are derived from ('openssl rand -base64 32')${hint}`);
}

/**
 * What a node process is started with, so it holds only its own credentials: its control
 * token(s), or in shared-token mode the shared token. Worker secrets in `base` (the master key,
 * codec keys, Temporal credentials) are dropped.
 */
export function agentEnv(auth: AgentAuth, pool: string, nodeId: string, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) if (!WORKER_SECRET_ENV.test(k)) env[k] = v;
  if (auth.mode === 'shared-token') return { ...env, DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: auth.tokensFor(pool, nodeId)[0] };
  return { ...env, DRYDOCK_AGENT_CONTROL_TOKEN: auth.tokensFor(pool, nodeId).join(',') };
}

/** Env a worker holds that a node must never inherit. */
const WORKER_SECRET_ENV = /^(DRYDOCK_AGENT_(KEY|KEY_FILE|TOKEN|AUTH|CONTROL_TOKEN|TOKENS_FILE)|DRYDOCK_CODEC_KEY.*|DRYDOCK_CODEC_SERVER_TOKEN|DRYDOCK_GCE_ACCESS_TOKEN|TEMPORAL_API_KEY|TEMPORAL_TLS_.*)$/;

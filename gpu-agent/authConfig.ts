import { AUDIT_DEFAULTS, type AuditSettings } from './audit.ts';
import { AuthConfigError, checkToken, readTokensFile, type AuthSettings } from './auth.ts';
import { LIMIT_DEFAULTS, type LimitSettings } from './limits.ts';

/** The agent's security flags (parsed with the others in config.ts). */
export const SECURITY_OPTIONS = {
  auth: { type: 'string' },
  'tokens-file': { type: 'string' },
  'metrics-public': { type: 'boolean' },
  'allow-fault-injection': { type: 'boolean' },
  'max-control-concurrency': { type: 'string' },
  'rate-limit': { type: 'string' },
  'rate-burst': { type: 'string' },
  'audit-stdout': { type: 'boolean' },
  'audit-max-bytes': { type: 'string' },
} as const;

export interface SecuritySettings {
  auth: AuthSettings;
  limits: LimitSettings;
  audit: Omit<AuditSettings, 'dir'>;
  allowFaultInjection: boolean;
}

type Values = Partial<Record<keyof typeof SECURITY_OPTIONS, string | boolean>>;

const truthy = (v: string | undefined) => v === '1' || v === 'true';

function count(flag: string, raw: string | boolean | undefined, fallback: number, min = 0): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(v) || v < min) throw new AuthConfigError(`--${flag}: expected a number >= ${min}, got '${String(raw)}'`);
  return v;
}

/**
 * Auth, limits, audit and fault-injection settings from flags and env. Tokens come only from the
 * environment or the tokens file, never from argv (which any local user can read in /proc).
 */
export function loadSecuritySettings(v: Values, env: NodeJS.ProcessEnv): SecuritySettings {
  const mode = (v.auth as string | undefined) ?? env.DRYDOCK_AGENT_AUTH ?? 'per-node';
  if (mode !== 'per-node' && mode !== 'shared-token') throw new AuthConfigError(`--auth: expected per-node or shared-token, got '${mode}'`);
  const tokensFile = (v['tokens-file'] as string | undefined) ?? (env.DRYDOCK_AGENT_TOKENS_FILE || undefined);
  const metricsPublic = v['metrics-public'] === true || truthy(env.DRYDOCK_AGENT_METRICS_PUBLIC);
  // Read once here so a malformed file stops the start (later reloads keep the old tokens instead).
  const listed = tokensFile ? readTokensFile(tokensFile) : [];
  let auth: AuthSettings;
  if (mode === 'shared-token') {
    const token = env.DRYDOCK_AGENT_TOKEN ?? '';
    if (token.length < 16) throw new AuthConfigError('DRYDOCK_AGENT_TOKEN: --auth shared-token needs the shared secret (at least 16 characters) in DRYDOCK_AGENT_TOKEN');
    checkToken('DRYDOCK_AGENT_TOKEN', token);
    auth = { mode, sharedToken: token, controlTokens: [], tokensFile, metricsPublic };
  } else {
    if (env.DRYDOCK_AGENT_TOKEN) {
      throw new AuthConfigError('DRYDOCK_AGENT_TOKEN: a shared token is only accepted with --auth shared-token (dev only); production nodes get their own DRYDOCK_AGENT_CONTROL_TOKEN from the control plane');
    }
    const raw = env.DRYDOCK_AGENT_CONTROL_TOKEN;
    if (raw !== undefined && raw.trim() === '') throw new AuthConfigError('DRYDOCK_AGENT_CONTROL_TOKEN: is set but empty');
    const controlTokens = (raw ?? '').split(',').map((t) => t.trim()).filter(Boolean);
    controlTokens.forEach((t, i) => checkToken(`DRYDOCK_AGENT_CONTROL_TOKEN (entry ${i + 1})`, t));
    if (controlTokens.length === 0 && !listed.some((t) => t.role === 'control')) {
      throw new AuthConfigError('DRYDOCK_AGENT_CONTROL_TOKEN: set it to this node\'s control token (the control plane derives it and hands it over in user data), or list control tokens in --tokens-file; the agent refuses to run without auth');
    }
    auth = { mode, controlTokens, tokensFile, metricsPublic };
  }
  return {
    auth,
    limits: {
      maxControlConcurrency: count('max-control-concurrency', v['max-control-concurrency'], LIMIT_DEFAULTS.maxControlConcurrency),
      ratePerToken: count('rate-limit', v['rate-limit'], LIMIT_DEFAULTS.ratePerToken),
      burstPerToken: count('rate-burst', v['rate-burst'], LIMIT_DEFAULTS.burstPerToken, 1),
    },
    audit: {
      stdout: v['audit-stdout'] === true || truthy(env.DRYDOCK_AGENT_AUDIT_STDOUT),
      maxBytes: count('audit-max-bytes', v['audit-max-bytes'], AUDIT_DEFAULTS.maxBytes, 1024),
      keep: AUDIT_DEFAULTS.keep,
    },
    allowFaultInjection: v['allow-fault-injection'] === true || truthy(env.DRYDOCK_AGENT_ALLOW_FAULT_INJECTION),
  };
}

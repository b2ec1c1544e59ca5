import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAgentKeys, PerNodeAuth, type AgentAuth } from '../../activities/agentAuth.ts';

/**
 * The credentials of a test or dev fleet, made as production makes them: a master key the workers
 * hold (each node gets only HMAC(key, `<pool>/<nodeId>`)), and a tokens file every agent reads with
 * an application's inference token and an operator's control token (so a test or script can poke
 * any agent directly, as an operator with their own token would; the audit trail names it).
 */
export interface FleetCredentials {
  /** DRYDOCK_AGENT_KEY for the workers (never given to a node). */
  key: string;
  auth: AgentAuth;
  /** The operator's control token (`control … operator` in the tokens file): opens control endpoints on every agent of the fleet. */
  token: string;
  /** An application's inference token (`inference … app`): opens only the inference endpoints. */
  inferenceToken: string;
  tokensFile: string;
  /** What a control worker of this fleet needs in its env. */
  workerEnv: NodeJS.ProcessEnv;
  /** A node's own control token (the signing key's), as the control plane hands it over. */
  controlToken(pool: string, nodeId: string): string;
}

export function makeFleetCredentials(dir: string, key = randomBytes(32).toString('base64')): FleetCredentials {
  const auth = new PerNodeAuth(parseAgentKeys(key, 'fleet key'));
  const token = `op-${randomBytes(24).toString('hex')}`;
  const inferenceToken = `app-${randomBytes(24).toString('hex')}`;
  const tokensFile = join(dir, 'agent-tokens');
  writeFileSync(tokensFile, `# role token name\ncontrol ${token} operator\ninference ${inferenceToken} app\n`, { mode: 0o600 });
  return {
    key,
    auth,
    token,
    inferenceToken,
    tokensFile,
    workerEnv: { DRYDOCK_AGENT_KEY: key },
    controlToken: (pool, nodeId) => auth.tokensFor(pool, nodeId)[0],
  };
}

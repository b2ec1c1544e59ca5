import { dirname, join } from 'node:path';
import { agentEnv, type AgentAuth } from '../agentAuth.ts';
import { agentUrl, restartAgentProcess, startAgentProcess, stopAgentProcess, type AgentProcessOptions } from './agentProcess.ts';
import { ProviderConfigError, TAG_SERVING, type NodeInstance } from './types.ts';

/** Finds the gpu-agent of a cloud instance. */
export interface AgentLocator {
  /** The agent's base URL for a running instance, or undefined while it has none yet. */
  locate(node: NodeInstance): string | undefined;
  /** The instance is gone: release whatever stood in for its agent. */
  gone(nodeId: string): Promise<void>;
  /** The instance was rebooted: restart whatever stands in for its agent (a real instance reboots its own). */
  rebooted(node: NodeInstance): Promise<void>;
  /** What each node's user data hands its agent (`{{controlToken}}`); unset: templates may not ask for it. */
  readonly auth?: AgentAuth;
}

/**
 * Fills a user-data / startup-script template: `{{pool}}`, `{{nodeId}}`, and `{{controlToken}}`
 * (the node's own control token(s), comma-separated during a key rotation). The filled text holds
 * a secret: it goes to the provider API only, never into workflow results or logs.
 */
export function fillBootTemplate(template: string | undefined, pool: string, nodeId: string, auth: AgentAuth | undefined, where: string): string | undefined {
  if (template === undefined) return undefined;
  let out = template.replaceAll('{{pool}}', pool).replaceAll('{{nodeId}}', nodeId);
  if (out.includes('{{controlToken}}')) {
    if (!auth) throw new ProviderConfigError(`${where}: the template asks for {{controlToken}} but this provider was built without agent auth`);
    const tokens = auth.tokensFor(pool, nodeId);
    out = out.replaceAll('{{controlToken}}', auth.mode === 'shared-token' ? tokens[0] : tokens.join(','));
  }
  return out;
}

export const DEFAULT_AGENT_PORT = 9400;

/** Production: the instance boots its agent from user-data; it listens on the private IP. */
export class PrivateIpAgent implements AgentLocator {
  constructor(private readonly port: number = DEFAULT_AGENT_PORT, readonly auth?: AgentAuth, private readonly tls = false) {}
  locate(node: NodeInstance): string | undefined {
    return node.state === 'running' && node.privateIp ? `${this.tls ? 'https' : 'http'}://${node.privateIp}:${this.port}` : undefined;
  }
  async gone(): Promise<void> {}
  async rebooted(): Promise<void> {}
}

/** Settings of the local boot hook (pools file: `bootHook: { type: local-agent, … }`). */
export interface LocalBootHookOptions {
  /** One folder per instance holds its agent's data, lock and log. */
  stateDir: string;
  gpusPerNode?: number;
  /** Seconds the stand-in "instance" takes to boot its agent. */
  bootSeconds?: number;
  simJobs?: number;
  simJobSeconds?: number;
  agentTokensFile?: string;
  faultInjection?: boolean;
}

/**
 * Dev and tests against moto or the GCE fake: stands in for an instance booting its agent from
 * user-data by starting a local gpu-agent process for each running instance, and stopping it once
 * the instance is terminated. Idempotent: a second call finds the agent by its data dir's lock.
 */
export class LocalAgentBootHook implements AgentLocator {
  constructor(private readonly opts: LocalBootHookOptions, readonly auth: AgentAuth) {}

  private dir(nodeId: string): string {
    return join(this.opts.stateDir, 'nodes', nodeId);
  }

  private agentOptions(node: NodeInstance): AgentProcessOptions {
    return {
      nodeId: node.id,
      pool: node.pool,
      dataDir: this.dir(node.id),
      // What the instance's user data would hand its agent: this node's own token(s).
      env: agentEnv(this.auth, node.pool, node.id),
      tokensFile: this.opts.agentTokensFile,
      faultInjection: this.opts.faultInjection,
      gpus: this.opts.gpusPerNode,
      bootSeconds: this.opts.bootSeconds,
      simJobs: this.opts.simJobs,
      simJobSeconds: this.opts.simJobSeconds,
      modelDirs: [join(dirname(this.opts.stateDir), 'models')],
      requireModel: node.tags[TAG_SERVING] === 'true',
    };
  }

  locate(node: NodeInstance): string | undefined {
    if (node.state !== 'running') return undefined;
    const url = agentUrl(this.dir(node.id));
    if (url) return url;
    startAgentProcess(this.agentOptions(node));
    return undefined;
  }

  rebooted(node: NodeInstance): Promise<void> {
    return restartAgentProcess(this.agentOptions(node));
  }

  gone(nodeId: string): Promise<void> {
    return stopAgentProcess(this.dir(nodeId));
  }
}

/** Fills in agentUrl for running instances and releases the agent of terminated ones. */
export async function withAgent(locator: AgentLocator, node: NodeInstance): Promise<NodeInstance> {
  if (node.state === 'terminated' || node.state === 'terminating') {
    await locator.gone(node.id);
    return node;
  }
  return { ...node, agentUrl: locator.locate(node) };
}

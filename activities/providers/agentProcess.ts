import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { agentAlive } from '../../gpu-agent/dataDirLock.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const AGENT_MAIN = join(REPO_ROOT, 'gpu-agent/main.ts');

/** What a node's gpu-agent is started with (its token travels in its env, never in argv). */
export interface AgentProcessOptions {
  nodeId: string;
  pool: string;
  /** The agent's data dir: it holds the agent's lock, address file (agent.json), audit log and log. */
  dataDir: string;
  /** The node's whole environment, holding only its own credentials (activities/agentAuth.ts agentEnv). */
  env: NodeJS.ProcessEnv;
  /** A tokens file with the applications' inference tokens (and operators' control tokens). */
  tokensFile?: string;
  /** Simulated GPUs accept /sim/faults (dev and tests). */
  faultInjection?: boolean;
  gpus?: number;
  bootSeconds?: number;
  simJobs?: number;
  simJobSeconds?: number;
  /** Folders the agent may load local model files from (--model-dir); created if missing. */
  modelDirs?: string[];
  /** A serving pool's node: not ready while it serves no model. */
  requireModel?: boolean;
}

interface AgentFile {
  pid: number;
  port: number;
  host: string;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The live agent process of a data dir, from the lock it holds (present while booting too). */
export function agentPid(dataDir: string): number | undefined {
  const lock = join(dataDir, 'agent.lock');
  if (!existsSync(lock)) return undefined;
  const pid = Number(readFileSync(lock, 'utf8'));
  return agentAlive(pid, dataDir) ? pid : undefined;
}

/** Base URL of the agent serving a data dir, once it listens. */
export function agentUrl(dataDir: string): string | undefined {
  const file = join(dataDir, 'agent.json');
  if (!existsSync(file)) return undefined;
  try {
    const a = JSON.parse(readFileSync(file, 'utf8')) as AgentFile;
    return agentAlive(a.pid, dataDir) ? `http://${a.host}:${a.port}` : undefined;
  } catch {
    return undefined; // being rewritten
  }
}

/** Starts a gpu-agent for the data dir unless one already holds its lock (the agent itself refuses a second copy). */
export function startAgentProcess(o: AgentProcessOptions): void {
  if (agentPid(o.dataDir)) return;
  mkdirSync(o.dataDir, { recursive: true });
  for (const d of o.modelDirs ?? []) mkdirSync(d, { recursive: true });
  const log = openSync(join(o.dataDir, 'agent.log'), 'a');
  const child = spawn(
    process.execPath,
    [
      '--import', 'tsx', AGENT_MAIN,
      '--node-id', o.nodeId,
      '--pool', o.pool,
      '--port', '0',
      '--data-dir', o.dataDir,
      '--gpus', String(o.gpus ?? 8),
      '--boot-delay', String(o.bootSeconds ?? 0),
      '--sim-jobs', String(o.simJobs ?? 0),
      '--sim-job-seconds', String(o.simJobSeconds ?? 5),
      ...(o.modelDirs ?? []).flatMap((d) => ['--model-dir', d]),
      ...(o.tokensFile ? ['--tokens-file', o.tokensFile] : []),
      ...(o.faultInjection ? ['--allow-fault-injection'] : []),
      ...(o.requireModel ? ['--require-model'] : []),
    ],
    // Detached: a node outlives the worker that created it, as a cloud instance would.
    { cwd: REPO_ROOT, detached: true, stdio: ['ignore', log, log], env: o.env },
  );
  child.unref();
  closeSync(log);
  // The lock names the child at once (the agent takes it over as its own): a node is never seen with
  // no live agent between this spawn and the agent's start, which would read as dead.
  if (child.pid) writeFileSync(join(o.dataDir, 'agent.lock'), String(child.pid));
}

/** Stops the data dir's agent: SIGTERM, then SIGKILL after 5 s. */
export async function stopAgentProcess(dataDir: string): Promise<void> {
  const pid = agentPid(dataDir);
  if (!pid) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && agentAlive(pid, dataDir); i++) await sleep(100);
  if (agentAlive(pid, dataDir)) process.kill(pid, 'SIGKILL');
}

/** What a reboot does to a node's agent: stop it (SIGTERM, then SIGKILL), then start a fresh process. */
export async function restartAgentProcess(o: AgentProcessOptions): Promise<void> {
  await stopAgentProcess(o.dataDir);
  startAgentProcess(o);
}

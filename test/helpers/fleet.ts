import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bundleWorkflowCode } from '@temporalio/worker';
import { LocalProvider, REPO_ROOT, type LocalProviderOptions } from '../../activities/providers/local.ts';
import { WORKFLOWS_PATH } from '../../workers/workflowsPath.ts';

export interface TestFleet {
  dir: string;
  pool: string;
  token: string;
  poolsFile: string;
  provider: LocalProvider;
  nodeIds: string[];
  cleanup(): Promise<void>;
}

/** A real local fleet: N gpu-agent processes under a temp dir, and a pools file naming them. */
export async function startFleet(opts: { pool?: string; nodes: number } & Partial<LocalProviderOptions>): Promise<TestFleet> {
  const dir = mkdtempSync(join(tmpdir(), 'drydock-fleet-'));
  const { pool = 'test', nodes, ...local } = opts;
  const token = randomBytes(24).toString('hex');
  const providerOpts: LocalProviderOptions = { stateDir: join(dir, 'state'), gpusPerNode: 2, ...local };
  const poolsFile = join(dir, 'pools.yaml');
  writeFileSync(poolsFile, JSON.stringify({ pools: [{ name: pool, instanceType: 'sim.h100x2', provider: { type: 'local', ...providerOpts } }] }));
  // The initial nodes boot at once; `bootSeconds` applies to replacements.
  const provider = new LocalProvider({ ...providerOpts, bootSeconds: 0 }, token);
  const nodeIds: string[] = [];
  for (let i = 0; i < nodes; i++) nodeIds.push((await provider.provision({ pool, instanceType: 'sim.h100x2' }, `initial/${pool}/${i}`)).id);
  await waitFor(async () => (await provider.list(pool)).every((n) => n.state === 'running'), 20_000, 'initial agents to start');
  return {
    dir,
    pool,
    token,
    poolsFile,
    provider: new LocalProvider(providerOpts, token),
    nodeIds,
    cleanup: () => removeFleetDir(dir),
  };
}

/** Kills every agent process whose data lies under `dir`, then removes `dir`. */
export async function removeFleetDir(dir: string): Promise<void> {
  for (const p of agentProcesses(dir)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

/** PIDs of gpu-agent processes whose data dir lies under `dir` (found in /proc, not in our records). */
export function agentProcesses(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.endsWith('gpu-agent/main.ts')) && cmd.some((a) => a.startsWith(dir))) pids.push(Number(entry));
    } catch {
      /* process ended while we looked */
    }
  }
  return pids;
}

export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

let bundlePath: Promise<string> | undefined;

/** Bundles the workflows once per test process, so each worker process starts fast. */
export function workflowBundle(): Promise<string> {
  bundlePath ??= (async () => {
    const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
    const file = join(mkdtempSync(join(tmpdir(), 'drydock-bundle-')), 'workflows.js');
    writeFileSync(file, code);
    return file;
  })();
  return bundlePath;
}

const quietLogger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: console.error };

/**
 * Every worker a test started. They stay referenced (the native Temporal client does not keep the
 * event loop alive while a test awaits a result), so one a failed test left behind is killed at exit;
 * `npm test` runs with --test-force-exit, so a finished file exits even with such a worker.
 */
const liveWorkers = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of liveWorkers) c.kill('SIGKILL');
});

export interface WorkerProcess {
  child: ChildProcess;
  output: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * A drydock worker entrypoint (workers/control.ts, workers/trainer.ts) as a real child process,
 * started with `env` and ready once it prints `ready`; tests SIGKILL it to prove crash safety.
 */
export async function spawnWorkerProcess(script: string, env: NodeJS.ProcessEnv, ready: string): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, script)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TEMPORAL_NAMESPACE: 'default', ...env },
  });
  liveWorkers.add(child);
  child.once('exit', () => liveWorkers.delete(child));
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  await waitFor(() => out.includes(ready) || child.exitCode !== null, 120_000, `${script} to start`);
  if (child.exitCode !== null) throw new Error(`${script} exited: ${out}`);
  return {
    child,
    output: () => out,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await done;
    },
  };
}

/** The real control worker as a child process, serving the fleet's pools. */
export async function spawnWorker(fleet: Pick<TestFleet, 'poolsFile' | 'token'>, address: string, taskQueue: string): Promise<WorkerProcess> {
  return spawnWorkerProcess(
    'workers/control.ts',
    {
      TEMPORAL_ADDRESS: address,
      DRYDOCK_TASK_QUEUE: taskQueue,
      DRYDOCK_POOLS_FILE: fleet.poolsFile,
      DRYDOCK_AGENT_TOKEN: fleet.token,
      DRYDOCK_WORKFLOW_BUNDLE: await workflowBundle(),
    },
    'control worker:',
  );
}

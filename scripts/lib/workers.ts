import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { WorkerDeploymentVersion } from '@temporalio/common';
import type { WorkerDeploymentOptions } from '@temporalio/worker';
import { checkoutBuildId, deploymentOptions, loadWorkerVersion } from '../../workers/versioning.ts';
import { workflowBundle } from './bundle.ts';
import type { TestFleet } from './fleet.ts';
import { REPO_ROOT } from './paths.ts';
import { setCurrentVersion } from './versioning.ts';
import { waitFor } from './waitFor.ts';

/**
 * Every worker this process started. They stay referenced (the native Temporal client does not keep
 * the event loop alive while a test awaits a result), so one a failed test left behind is killed at
 * exit; `npm test` runs with --test-force-exit, so a finished file exits even with such a worker.
 */
const liveWorkers = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of liveWorkers) c.kill('SIGKILL');
});

export interface WorkerProcess {
  child: ChildProcess;
  /** The Worker Deployment Version it polls as (from its start line). */
  version: WorkerDeploymentVersion;
  output: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Makes `version` the deployment's current version on the server at `address` (what the dev stack and every test do with their build). */
export async function makeVersionCurrent(address: string, version: WorkerDeploymentVersion): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    await setCurrentVersion(new Client({ connection, namespace: 'default' }), version);
  } finally {
    await connection.close();
  }
}

/**
 * The checkout's build id as this process first saw it. Like the workflow bundle (built once per
 * process), it does not change when files are edited while the process runs: a worker a test
 * restarts stays the build its pinned workflows started on.
 */
let processBuildId: string | undefined;
function buildIdOfThisProcess(): string | undefined {
  return (processBuildId ??= checkoutBuildId());
}

/**
 * An in-process worker's versioning, as the real workers run: this checkout's build (pinned
 * workflow types cannot complete a task on an unversioned worker). Call `makeCurrent` once the
 * worker runs, so the server hands it tasks.
 */
export function inProcessVersioning(): { workerDeploymentOptions: WorkerDeploymentOptions; makeCurrent(client: Client): Promise<void> } {
  const version = loadWorkerVersion(process.env, buildIdOfThisProcess);
  return { workerDeploymentOptions: deploymentOptions(version), makeCurrent: (client) => setCurrentVersion(client, version) };
}

/**
 * A drydock worker entrypoint (workers/control.ts, workers/trainer.ts) as a real child process,
 * started with `env` and ready once it prints `ready`; tests SIGKILL it to prove crash safety. It runs
 * versioned (this process's checkout build unless env sets DRYDOCK_BUILD_ID), and unless
 * `makeCurrent` is false its version is made current so the task queue's workflows reach it.
 */
export async function spawnWorkerProcess(script: string, env: NodeJS.ProcessEnv, ready: string, makeCurrent = true): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, script)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Not NODE_TEST_CONTEXT: a worker started from a test file would take it for a test child of
    // node's runner (seen: the backup scenario's worker never ran its copy under `node --test`).
    env: { ...withoutTestContext(process.env), TEMPORAL_NAMESPACE: 'default', ...sameBuild(), ...env },
  });
  liveWorkers.add(child);
  child.once('exit', () => liveWorkers.delete(child));
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  await waitFor(() => out.includes(ready) || child.exitCode !== null, 120_000, `${script} to start`);
  if (child.exitCode !== null) throw new Error(`${script} exited: ${out}`);
  const m = / version ([^:\s]+):(\S+?),/.exec(out);
  if (!m) throw new Error(`${script} did not say its version: ${out}`);
  const version = { deploymentName: m[1], buildId: m[2] };
  if (makeCurrent) await makeVersionCurrent(String(env.TEMPORAL_ADDRESS), version);
  return {
    child,
    version,
    output: () => out,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await done;
    },
  };
}

/**
 * The real control worker as a child process, serving the fleet's pools. By default it runs this
 * checkout's workflows as this checkout's build and is made current; the upgrade test starts a
 * second build beside it (another `workflowBundle`, `env` with its DRYDOCK_BUILD_ID, `makeCurrent: false`).
 */
export async function spawnWorker(
  fleet: Pick<TestFleet, 'poolsFile' | 'workerEnv'>,
  address: string,
  taskQueue: string,
  opts: { workflowBundle?: string; env?: NodeJS.ProcessEnv; makeCurrent?: boolean } = {},
): Promise<WorkerProcess> {
  return spawnWorkerProcess(
    'workers/control.ts',
    {
      TEMPORAL_ADDRESS: address,
      DRYDOCK_TASK_QUEUE: taskQueue,
      DRYDOCK_POOLS_FILE: fleet.poolsFile,
      ...fleet.workerEnv,
      DRYDOCK_WORKFLOW_BUNDLE: opts.workflowBundle ?? (await workflowBundle()),
      ...opts.env,
    },
    'control worker:',
    opts.makeCurrent ?? true,
  );
}

export interface TrainerProcess extends WorkerProcess {
  /** The worker identity it reports (lastWorkerIdentity of its activities). */
  identity: string;
}

/** The real trainer worker (workers/trainer.ts) as a child process, so tests can SIGKILL it. */
export async function spawnTrainer(address: string, taskQueue: string, env: NodeJS.ProcessEnv = {}): Promise<TrainerProcess> {
  const worker = await spawnWorkerProcess(
    'workers/trainer.ts',
    { TEMPORAL_ADDRESS: address, DRYDOCK_TRAINER_TASK_QUEUE: taskQueue, DRYDOCK_METRICS_ADDRESS: '127.0.0.1:0', ...env },
    'trainer worker:',
  );
  return { ...worker, identity: /trainer worker: (\S+),/.exec(worker.output())![1] };
}

/** DRYDOCK_BUILD_ID for a spawned worker: the caller's, else this process's checkout build. */
function sameBuild(): NodeJS.ProcessEnv {
  if (process.env.DRYDOCK_BUILD_ID) return {};
  const id = buildIdOfThisProcess();
  return id ? { DRYDOCK_BUILD_ID: id } : {};
}

function withoutTestContext(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_TEST_CONTEXT: _runner, ...rest } = env;
  return rest;
}

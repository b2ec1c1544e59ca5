/**
 * The local dev stack: Temporal dev server (SQLite file + Web UI), the control worker on
 * task queue `drydock`, and pool `demo` of 3 gpu-agent processes with simulated GPUs.
 * Ctrl-C stops all of it; running it again picks up the same state from the data dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalProvider } from '../activities/providers/local.ts';
import { REPO_ROOT } from './lib/paths.ts';
import { waitFor } from './lib/waitFor.ts';
import { makeVersionCurrent } from './lib/workers.ts';
import { devServerDynamicConfigArgs } from '../workers/serverSettings.ts';
import { DRYDOCK_SEARCH_ATTRIBUTES } from '../workflows/searchAttributes.ts';
import { devCredentials, loadDevConfig } from './devConfig.ts';
import { prepareDemoModels, type DemoModel } from './devModels.ts';
import { ensureDemoBackupSchedule } from './schedules/backup.ts';

const config = loadDevConfig(process.env);
const temporalBin = process.env.DRYDOCK_TEMPORAL_BIN ?? 'temporal';
const children: ChildProcess[] = [];
let stopping = false;

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

function start(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const child = spawn(cmd, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const prefix = (d: Buffer) => d.toString().split('\n').filter(Boolean).map((l) => `[${name}] ${l}`).join('\n');
  child.stdout!.on('data', (d: Buffer) => console.log(prefix(d)));
  child.stderr!.on('data', (d: Buffer) => console.error(prefix(d)));
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`dev: ${name} exited (${signal ?? code}); stopping the stack`);
      void stop(1);
    }
  });
  children.push(child);
  return child;
}

const creds = devCredentials(config.dir);
const provider = new LocalProvider(config.pool.provider, creds.auth);

async function stop(code: number): Promise<never> {
  stopping = true;
  console.log('\ndev: stopping worker, agents and Temporal server...');
  const running = () => children.filter((c) => c.exitCode === null && c.signalCode === null);
  for (const c of running().reverse()) c.kill('SIGTERM');
  await provider.stopAgents();
  const exited = Promise.all(running().map((c) => new Promise((r) => c.once('exit', r))));
  await Promise.race([exited, sleep(15_000)]);
  for (const c of running()) c.kill('SIGKILL'); // nothing may outlive the stack
  console.log('dev: stopped. Run `npm run dev` again to pick up where you left off.');
  process.exit(code);
}

/** The README's example inputs, with this machine's absolute paths (backup and checkpoint stores need them). */
function writeExampleInputs(dir: string, models: { v1: DemoModel; v2: DemoModel }): void {
  const examples = join(dir, 'examples');
  mkdirSync(examples, { recursive: true });
  const write = (name: string, input: unknown) => writeFileSync(join(examples, name), JSON.stringify(input, null, 2) + '\n');
  write('backup.json', {
    name: 'demo',
    sources: [{ type: 'files', name: 'models', path: join(dir, 'model-store') }],
    destination: `file://${join(dir, 'backups')}`,
    retention: { keepLast: 7 },
  });
  // The demo pool serves demo-v1: every node that joins (replacement, scale-up) serves it before it takes traffic.
  write('pool.json', {
    name: config.pool.name,
    minNodes: 3,
    maxNodes: 5,
    health: { probeIntervalSeconds: 5, unhealthyAfter: 2 },
    disruption: { maxUnavailable: 1, minHealthy: '51%', breaker: { maxUnhealthyFraction: 0.3 } },
    serving: { model: { uri: models.v1.path, sha256: models.v1.sha256 } },
  });
  write('rollout.json', {
    pool: config.pool.name,
    target: { model: { uri: models.v2.path, sha256: models.v2.sha256 } },
    strategy: 'rolling',
    maxUnavailable: 1,
    analysis: { prompt: 'Say hello.', maxLatencyMs: 60_000, intervalSeconds: 5, everySeconds: 5 },
    onFailure: 'rollback',
  });
  write('restore.json', { backupId: 'demo/20261123T120000Z', store: `file://${join(dir, 'backups')}`, destination: join(dir, 'restored') });
  write('training.json', {
    name: 'digits',
    dataset: 'mnist',
    model: 'mlp',
    workers: 2,
    rounds: 3,
    innerSteps: 20,
    batchSize: 32,
    inner: { lr: 0.001 },
    outer: { lr: 0.7, momentum: 0.9 },
    checkpoint: { uri: `file://${join(dir, 'checkpoints')}`, everyRounds: 1, keepLast: 3 },
    evalEvery: 1,
    seed: 1,
  });
}

async function main(): Promise<void> {
  process.once('SIGINT', () => void stop(0));
  process.once('SIGTERM', () => void stop(0));
  mkdirSync(config.dir, { recursive: true });
  if (await portOpen(config.temporalPort)) {
    throw new Error(`dev: port ${config.temporalPort} is in use; stop the other Temporal server (or set DRYDOCK_DEV_PORT)`);
  }

  const address = `127.0.0.1:${config.temporalPort}`;
  start('temporal', temporalBin, [
    'server', 'start-dev',
    '--ip', '127.0.0.1',
    '--port', String(config.temporalPort),
    '--ui-port', String(config.uiPort),
    '--db-filename', join(config.dir, 'temporal.db'),
    '--log-level', 'warn',
    ...DRYDOCK_SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=${k.type}`]),
    ...devServerDynamicConfigArgs(),
  ]);
  await waitFor(() => portOpen(config.temporalPort), 60_000, 'the Temporal server', 200);

  // The demo pool: created once, restarted on later runs.
  const poolsFile = join(config.dir, 'pools.yaml');
  writeFileSync(poolsFile, JSON.stringify({ pools: [config.pool] }, null, 2));
  if (provider.records(config.pool.name).length === 0) {
    // A serving pool's nodes: their agents are not ready until they serve a model (demo-v1, loaded below).
    for (let i = 0; i < config.nodes; i++) await provider.provision({ pool: config.pool.name, instanceType: config.pool.instanceType, serving: true }, `dev/${config.pool.name}/${i}`);
  }
  await provider.ensureRunning(config.pool.name);
  await waitFor(async () => (await provider.list(config.pool.name)).every((n) => n.state === 'running' && n.agentUrl), 60_000, 'the demo agents', 200);

  const worker = start('worker', process.execPath, ['--import', 'tsx', 'workers/control.ts'], {
    ...process.env,
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: 'default',
    DRYDOCK_TASK_QUEUE: config.taskQueue,
    DRYDOCK_POOLS_FILE: poolsFile,
    DRYDOCK_AGENT_KEY_FILE: creds.keyFile,
  });
  let workerOut = '';
  worker.stdout!.on('data', (d: Buffer) => (workerOut += d.toString()));
  await waitFor(async () => {
    if (worker.exitCode !== null) throw new Error('dev: the control worker exited during start; see its output above');
    return workerOut.includes('control worker:');
  }, 180_000, 'the control worker', 200);

  const trainer = start('trainer', process.execPath, ['--import', 'tsx', 'workers/trainer.ts'], {
    ...process.env,
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: 'default',
  });
  let trainerOut = '';
  trainer.stdout!.on('data', (d: Buffer) => (trainerOut += d.toString()));

  // Demo data for the README's backup and training examples, and a backup schedule over it.
  for (const d of ['model-store', 'backups', 'checkpoints']) mkdirSync(join(config.dir, d), { recursive: true });
  const demoModel = join(config.dir, 'model-store', 'README.txt');
  if (!existsSync(demoModel)) writeFileSync(demoModel, 'the demo model store: put model files here to see them backed up\n');
  const models = await prepareDemoModels(config.dir, provider, config.pool.name, creds.operatorToken);
  writeExampleInputs(config.dir, models);
  const connection = await Connection.connect({ address });
  const schedule = await ensureDemoBackupSchedule(new Client({ connection }), {
    taskQueue: config.taskQueue,
    destination: `file://${join(config.dir, 'backups')}`,
    sources: [{ name: 'models', path: join(config.dir, 'model-store') }],
  });
  await connection.close();
  await waitFor(async () => {
    if (trainer.exitCode !== null) throw new Error('dev: the trainer worker exited during start; see its output above');
    return trainerOut.includes('trainer worker:');
  }, 180_000, 'the trainer worker', 200);
  // Both workers poll as this checkout's build: make it the deployment's current version, so new
  // workflows (and auto-upgrading pools) run on it; workflows pinned to an earlier build stay there.
  const [deploymentName, buildId] = /control worker: .* version (\S+?),/.exec(workerOut)![1].split(':');
  await makeVersionCurrent(address, { deploymentName, buildId });

  const nodes = await provider.list(config.pool.name);
  const target = nodes[0];
  const addressFlag = config.temporalPort === 7233 ? '' : ` --address ${address}`;
  const input = JSON.stringify({ pool: config.pool.name, nodeId: target.id, reason: 'demo', drainTimeoutSeconds: 60 });
  console.log(
    [
      '',
      'drydock dev stack is ready',
      `  Temporal Web UI:  http://localhost:${config.uiPort}/namespaces/default/workflows`,
      `  Temporal server:  ${address}  (data: ${join(config.dir, 'temporal.db')})`,
      `  control worker:   task queue ${config.taskQueue}, version ${deploymentName}:${buildId} (current; \`drydock workers status\`)`,
      `  trainer worker:   task queue drydock-trainer`,
      `  backup schedule:  ${schedule.scheduleId} (every 6h; \`temporal schedule list\`)`,
      `  demo data:        ${config.dir} (model-store/, backups/, checkpoints/, models/)`,
      `  demo models:      every agent serves models/demo-v1.gguf; examples/rollout.json rolls out demo-v2`,
      `  agent auth:       per-node control tokens from ${creds.keyFile}; applications' tokens in ${creds.tokensFile}`,
      `                    (audit: fleet/nodes/<node>/audit.log)`,
      `  pool ${config.pool.name} (local provider, simulated GPUs):`,
      ...nodes.map((n) => `    ${n.id}  ${n.state}  ${n.agentUrl}`),
      '',
      'Replace a node (paste this in another terminal):',
      `  ${temporalBin} workflow start --type replaceNode --task-queue ${config.taskQueue} --workflow-id replace/${config.pool.name}/${target.id}${addressFlag} --static-summary 'replace ${config.pool.name}/${target.id}: demo' --input '${input}'`,
      '',
      'Make a node sick first, if you like:',
      `  npm run dev:fault -- ${target.id} 79`,
      '',
      'Press Ctrl-C to stop everything.',
    ].join('\n'),
  );
}

main().catch(async (err) => {
  const message = (err as Error).message;
  console.error(message.startsWith('dev: ') ? message : `dev: ${message}`);
  await stop(1);
});

/**
 * What a scenario or a chaos run runs against: a real Temporal dev server (on a database file, so
 * it can be restarted), the fleet simulator (in this process, served over HTTP to the worker), the
 * real control worker (scripts/fleet-sim/worker.ts) and trainer workers as child processes that
 * can be SIGKILLed.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { simulatedModelSha256 } from '../../gpu-agent/inference/simulated.ts';
import { DRYDOCK_TRAIN_LOSS } from '../../workflows/trainingJob.ts';
import { SimClient } from '../fleet-sim/client.ts';
import { FleetSimulator } from '../fleet-sim/simulator.ts';
import { mulberry32 } from '../../activities/training/random.ts';
import { workflowBundle } from '../lib/bundle.ts';
import { freePort } from '../lib/ports.ts';
import { startDevServer } from '../lib/temporal.ts';
import { spawnTrainer, spawnWorkerProcess, type TrainerProcess, type WorkerProcess } from '../lib/workers.ts';
import type { FleetConfig } from './scenario.ts';

export class SimStack {
  env!: TestWorkflowEnvironment;
  readonly token = randomBytes(24).toString('hex');
  readonly sim: FleetSimulator;
  simClient!: SimClient;
  control: WorkerProcess | undefined;
  trainers: (TrainerProcess | undefined)[] = [];
  private closeSim?: () => Promise<void>;
  private server!: { port: number; dbFilename: string };
  /**
   * The harness's own client, kept across server restarts (same port: gRPC reconnects). The dev
   * environment's client is closed with its server, and a call of it still retrying then throws
   * from a timer ("Channel has been shut down"), which ended a chaos soak at its first restart.
   */
  private connection?: Connection;
  private ownClient?: Client;

  constructor(readonly fleet: FleetConfig, readonly work: string, readonly taskQueue = 'drydock-sim') {
    this.sim = new FleetSimulator({
      token: this.token,
      dataDir: join(work, 'fleet'),
      bootSeconds: fleet.bootSeconds,
      rackSize: fleet.rackSize,
      racksPerZone: fleet.racksPerZone,
      inference: fleet.inference && {
        swapSeconds: fleet.inference.swapSeconds,
        drainSeconds: fleet.inference.drainSeconds,
        generationMs: fleet.inference.generationMs,
        initialModel: fleet.inference.initialModel,
        failSha256: fleet.inference.failModels.map((m) => simulatedModelSha256(m)),
      },
    });
  }

  get trainerQueue(): string {
    return `${this.taskQueue}-trainers`;
  }
  get client(): Client {
    if (!this.ownClient) throw new Error('the stack is not started');
    return this.ownClient;
  }

  async start(): Promise<void> {
    mkdirSync(join(this.work, 'fleet'), { recursive: true });
    if (this.fleet.data) writeTree(join(this.work, 'data'), this.fleet.data.files, this.fleet.data.kib);
    this.server = { port: await freePort(), dbFilename: join(this.work, 'temporal.db') };
    const [env, served] = await Promise.all([startDevServer({ ...this.server, extraSearchAttributes: [DRYDOCK_TRAIN_LOSS] }), this.sim.serve(0), workflowBundle()]);
    this.env = env;
    this.connection = await Connection.connect({ address: `127.0.0.1:${this.server.port}` });
    this.ownClient = new Client({ connection: this.connection, namespace: 'default' });
    this.closeSim = () => new Promise((r) => served.server.close(() => r()));
    this.simClient = new SimClient(served.url, this.token);
    for (const p of this.fleet.pools) {
      for (let i = 0; i < p.nodes; i++) await this.sim.provision(p.name, 'sim.h100x2', `initial/${i}`, 0);
    }
    await this.startControl();
    for (let i = 0; i < this.fleet.trainers; i++) this.trainers[i] = await spawnTrainer(this.env.address, this.trainerQueue);
  }

  async startControl(): Promise<void> {
    this.control = await spawnWorkerProcess(
      'scripts/fleet-sim/worker.ts',
      {
        TEMPORAL_ADDRESS: `127.0.0.1:${this.server.port}`,
        DRYDOCK_TASK_QUEUE: this.taskQueue,
        DRYDOCK_AGENT_TOKEN: this.token,
        FLEET_SIM_URL: this.simClient.url,
        FLEET_SIM_POOL: this.fleet.pools.map((p) => p.name).join(','),
        DRYDOCK_WORKFLOW_BUNDLE: await workflowBundle(),
      },
      'fleet-sim worker: ready',
    );
  }

  async killControl(restart: boolean, afterSeconds = 0): Promise<void> {
    await this.control?.kill('SIGKILL');
    this.control = undefined;
    if (!restart) return;
    if (afterSeconds) await sleep(afterSeconds * 1000);
    await this.startControl();
  }

  async killTrainer(which: number, restart: boolean, afterSeconds = 0): Promise<void> {
    await this.trainers[which]?.kill('SIGKILL');
    this.trainers[which] = undefined;
    if (!restart) return;
    if (afterSeconds) await sleep(afterSeconds * 1000);
    this.trainers[which] = await spawnTrainer(`127.0.0.1:${this.server.port}`, this.trainerQueue);
  }

  /** Stops the dev server and starts it again on the same database file and port; workers reconnect by themselves. */
  async restartTemporal(downSeconds: number): Promise<void> {
    await this.env.teardown();
    if (downSeconds) await sleep(downSeconds * 1000);
    this.env = await startDevServer({ ...this.server, extraSearchAttributes: [DRYDOCK_TRAIN_LOSS] });
  }

  async close(): Promise<void> {
    await this.control?.kill('SIGKILL');
    for (const t of this.trainers) await t?.kill('SIGKILL');
    await this.sim.close();
    await this.closeSim?.();
    await this.connection?.close().catch(() => {});
    await this.env?.teardown().catch(() => {});
  }
}

/** `files` files of seeded random bytes (`kib` KiB each) under `dir`, some in sub-directories. */
export function writeTree(dir: string, files: number, kib: number): void {
  const rand = mulberry32(7);
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `part-${i % 4}`);
    mkdirSync(sub, { recursive: true });
    const buf = Buffer.alloc(kib * 1024);
    for (let j = 0; j < buf.length; j += 4) buf.writeUInt32LE(Math.floor(rand() * 0xffffffff), j);
    writeFileSync(join(sub, `file-${i}.bin`), buf);
  }
}

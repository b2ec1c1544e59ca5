import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  ProviderConfigError,
  TAG_MANAGED,
  TAG_NODE,
  TAG_POOL,
  TAG_SNAPSHOT_KEY,
  type InstanceState,
  type NodeInstance,
  type NodeSpec,
  type Provider,
  type Snapshot,
  type SnapshotRequest,
} from './types.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const AGENT_MAIN = join(REPO_ROOT, 'gpu-agent/main.ts');

export interface LocalProviderOptions {
  /** Holds one folder per node: its record, the agent's data, lock and log. */
  stateDir: string;
  gpusPerNode?: number;
  /** Seconds a new node takes to boot before its agent answers. */
  bootSeconds?: number;
  /** Simulated in-flight jobs per node, so drains take observable time. */
  simJobs?: number;
  simJobSeconds?: number;
}

interface NodeRecord {
  id: string;
  pool: string;
  instanceType: string;
  idempotencyKey: string;
  state: 'provisioning' | 'running' | 'terminated';
  createdAt: string;
  terminatedAt?: string;
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

/** Node ids are derived from the idempotency key, which is what makes provisioning idempotent. */
export function localNodeId(pool: string, idempotencyKey: string): string {
  return `${pool}-${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 8)}`;
}

/**
 * Runs each node as a real gpu-agent process on this machine. Every fact lives in files
 * under stateDir (one folder per node), so a restarted worker reconciles by reading them.
 */
export class LocalProvider implements Provider {
  readonly name = 'local';
  constructor(private readonly opts: LocalProviderOptions, private readonly agentToken: string) {}

  private nodeDir(id: string): string {
    return join(this.opts.stateDir, 'nodes', id);
  }

  private readRecord(id: string): NodeRecord | undefined {
    const file = join(this.nodeDir(id), 'node.json');
    if (!existsSync(file)) return undefined;
    return JSON.parse(readFileSync(file, 'utf8')) as NodeRecord;
  }

  private writeRecord(rec: NodeRecord): void {
    const dir = this.nodeDir(rec.id);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'node.json.tmp'), JSON.stringify(rec, null, 2));
    renameSync(join(dir, 'node.json.tmp'), join(dir, 'node.json'));
  }

  /** The live agent process of a node, from the lock it holds (present while booting too). */
  private agentPid(id: string): number | undefined {
    const lock = join(this.nodeDir(id), 'agent.lock');
    if (!existsSync(lock)) return undefined;
    const pid = Number(readFileSync(lock, 'utf8'));
    return pid && pidAlive(pid) ? pid : undefined;
  }

  private agentFile(id: string): AgentFile | undefined {
    const file = join(this.nodeDir(id), 'agent.json');
    if (!existsSync(file)) return undefined;
    const a = JSON.parse(readFileSync(file, 'utf8')) as AgentFile;
    return pidAlive(a.pid) ? a : undefined;
  }

  private toInstance(rec: NodeRecord): NodeInstance {
    const agent = rec.state === 'terminated' ? undefined : this.agentFile(rec.id);
    let state: InstanceState = rec.state;
    if (rec.state !== 'terminated') state = agent ? 'running' : 'provisioning';
    return {
      id: rec.id,
      pool: rec.pool,
      provider: this.name,
      instanceType: rec.instanceType,
      state,
      agentUrl: agent ? `http://${agent.host}:${agent.port}` : undefined,
      tags: { [TAG_POOL]: rec.pool, [TAG_NODE]: rec.id, [TAG_MANAGED]: 'true' },
      createdAt: rec.createdAt,
    };
  }

  /** Starts the node's agent unless one already holds its lock (the agent itself refuses a second copy). */
  private startAgent(rec: NodeRecord, bootSeconds: number): void {
    if (this.agentPid(rec.id)) return;
    const dir = this.nodeDir(rec.id);
    const log = openSync(join(dir, 'agent.log'), 'a');
    const child = spawn(
      process.execPath,
      [
        '--import', 'tsx', AGENT_MAIN,
        '--node-id', rec.id,
        '--pool', rec.pool,
        '--port', '0',
        '--data-dir', dir,
        '--gpus', String(this.opts.gpusPerNode ?? 8),
        '--boot-delay', String(bootSeconds),
        '--sim-jobs', String(this.opts.simJobs ?? 0),
        '--sim-job-seconds', String(this.opts.simJobSeconds ?? 5),
      ],
      // Detached: a node outlives the worker that created it, as a cloud instance would.
      { cwd: REPO_ROOT, detached: true, stdio: ['ignore', log, log], env: { ...process.env, DRYDOCK_AGENT_TOKEN: this.agentToken } },
    );
    child.unref();
    closeSync(log);
  }

  async provision(spec: NodeSpec, idempotencyKey: string): Promise<NodeInstance> {
    const id = localNodeId(spec.pool, idempotencyKey);
    let rec = this.readRecord(id);
    if (rec && rec.idempotencyKey !== idempotencyKey) {
      throw new Error(`local provider: node id ${id} collides with another key; pick a different idempotency key`);
    }
    if (rec?.state === 'terminated') return this.toInstance(rec);
    if (!rec) {
      // Record first, then spawn: a crash between the two leaves a record that the retry completes.
      rec = { id, pool: spec.pool, instanceType: spec.instanceType, idempotencyKey, state: 'provisioning', createdAt: new Date().toISOString() };
      this.writeRecord(rec);
    }
    this.startAgent(rec, this.opts.bootSeconds ?? 0);
    if (rec.state !== 'running') this.writeRecord({ ...rec, state: 'running' });
    return this.toInstance(this.readRecord(id)!);
  }

  /** Restarts the agents of live nodes (after a reboot of the dev stack), without boot delay. */
  async ensureRunning(pool: string): Promise<NodeInstance[]> {
    for (const rec of this.records(pool)) if (rec.state !== 'terminated') this.startAgent(rec, 0);
    return this.list(pool);
  }

  async terminate(id: string): Promise<void> {
    const rec = this.readRecord(id);
    if (!rec || rec.state === 'terminated') return;
    const pid = this.agentPid(id);
    if (pid) {
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 50 && pidAlive(pid); i++) await sleep(100);
      if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    this.writeRecord({ ...rec, state: 'terminated', terminatedAt: new Date().toISOString() });
  }

  /** Stops every agent process without changing node records (used when the dev stack exits). */
  async stopAgents(): Promise<void> {
    for (const rec of this.records()) {
      const pid = this.agentPid(rec.id);
      if (pid) process.kill(pid, 'SIGTERM');
    }
  }

  async describe(id: string): Promise<NodeInstance | undefined> {
    const rec = this.readRecord(id);
    return rec ? this.toInstance(rec) : undefined;
  }

  async list(pool: string): Promise<NodeInstance[]> {
    return this.records(pool)
      .filter((r) => r.state !== 'terminated')
      .map((r) => this.toInstance(r));
  }

  private snapshotDir(id: string): string {
    return join(this.opts.stateDir, 'snapshots', id);
  }

  /** Copies the node's data directory (minus the live agent's lock and address files). */
  async snapshot(req: SnapshotRequest): Promise<Snapshot> {
    const nodeId = 'nodeId' in req.source ? req.source.nodeId : req.source.volumeId;
    const id = `snap-${createHash('sha256').update(req.idempotencyKey).digest('hex').slice(0, 12)}`;
    const existing = this.readSnapshot(id);
    if (existing) return existing;
    if (!this.readRecord(nodeId)) throw new ProviderConfigError(`local provider: no node '${nodeId}' to snapshot`);
    const dir = this.snapshotDir(id);
    const tmp = `${dir}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    const skip = new Set(['agent.lock', 'agent.json', 'agent.json.tmp']);
    cpSync(this.nodeDir(nodeId), join(tmp, 'data'), { recursive: true, filter: (src) => !skip.has(src.split('/').pop()!) });
    const snap: Snapshot = {
      id,
      provider: this.name,
      volumeId: nodeId,
      state: 'ready',
      createdAt: new Date().toISOString(),
      tags: { ...req.tags, [TAG_SNAPSHOT_KEY]: req.idempotencyKey },
    };
    writeFileSync(join(tmp, 'snapshot.json'), JSON.stringify(snap, null, 2));
    // Rename last: a crash mid-copy leaves only a .tmp folder that the retry overwrites.
    mkdirSync(dirname(dir), { recursive: true });
    renameSync(tmp, dir);
    return snap;
  }

  private readSnapshot(id: string): Snapshot | undefined {
    const file = join(this.snapshotDir(id), 'snapshot.json');
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Snapshot) : undefined;
  }

  async listSnapshots(filter?: { tags?: Record<string, string> }): Promise<Snapshot[]> {
    const root = join(this.opts.stateDir, 'snapshots');
    if (!existsSync(root)) return [];
    const want = Object.entries(filter?.tags ?? {});
    return readdirSync(root)
      .filter((d) => !d.endsWith('.tmp'))
      .map((d) => this.readSnapshot(d))
      .filter((s): s is Snapshot => !!s && want.every(([k, v]) => s.tags[k] === v))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Where a local snapshot's copy of the node's data lies (for restores). */
  snapshotDataDir(id: string): string {
    return join(this.snapshotDir(id), 'data');
  }

  async deleteSnapshot(id: string): Promise<void> {
    if (!/^snap-[0-9a-f]+$/.test(id)) throw new ProviderConfigError(`local provider: '${id}' is not a local snapshot id (snap-…)`);
    rmSync(this.snapshotDir(id), { recursive: true, force: true });
  }

  /** All records, terminated ones included (a pool's history). */
  records(pool?: string): NodeRecord[] {
    const root = join(this.opts.stateDir, 'nodes');
    if (!existsSync(root)) return [];
    return readdirSync(root)
      .map((id) => this.readRecord(id))
      .filter((r): r is NodeRecord => !!r && (pool === undefined || r.pool === pool))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }
}

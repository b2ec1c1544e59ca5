import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { agentEnv, type AgentAuth } from '../agentAuth.ts';
import { agentPid, agentUrl, pidAlive, restartAgentProcess, startAgentProcess, stopAgentProcess, type AgentProcessOptions } from './agentProcess.ts';
import { notRebootable } from './errors.ts';
import { keyHash, nodeIdFor } from './naming.ts';
import {
  ProviderConfigError,
  TAG_DISK_KEY,
  TAG_MANAGED,
  TAG_NODE,
  TAG_POOL,
  TAG_SERVING,
  TAG_SNAPSHOT_KEY,
  type Disk,
  type DiskFromSnapshotRequest,
  type InstanceState,
  type NodeInstance,
  type NodeSpec,
  type Provider,
  type Snapshot,
  type SnapshotRequest,
} from './types.ts';

export { pidAlive, REPO_ROOT } from './agentProcess.ts';

export interface LocalProviderOptions {
  /** Holds one folder per node: its record, the agent's data, lock and log. */
  stateDir: string;
  gpusPerNode?: number;
  /** Seconds a new node takes to boot before its agent answers. */
  bootSeconds?: number;
  /** Simulated in-flight jobs per node, so drains take observable time. */
  simJobs?: number;
  simJobSeconds?: number;
  /** Tokens file every agent reads (applications' inference tokens; see docs/security.md). */
  agentTokensFile?: string;
  /** Agents accept fault injection (/sim/faults): dev stack and tests. */
  faultInjection?: boolean;
  /** More folders the agents load local model files from, like a model volume every node mounts. */
  modelDirs?: string[];
}

interface NodeRecord {
  id: string;
  pool: string;
  instanceType: string;
  idempotencyKey: string;
  state: 'provisioning' | 'running' | 'terminated';
  createdAt: string;
  terminatedAt?: string;
  /** Set while a reboot restarts the agent: a node with no live agent then reads as rebooting, not dead. */
  rebootStartedAt?: string;
  /** Hash of the idempotency key of the last reboot that finished, so a retry does not reboot again. */
  rebootKey?: string;
  /** A serving pool's node (NodeSpec.serving): its agent starts with --require-model. */
  serving?: boolean;
}

/** How long a reboot may leave a node without a live agent (a worker crash between stop and start) before it reads as dead. */
export const LOCAL_REBOOT_GRACE_MS = 30_000;

/** Node ids are derived from the idempotency key, which is what makes provisioning idempotent. */
export const localNodeId = nodeIdFor;

/**
 * Runs each node as a real gpu-agent process on this machine. Every fact lives in files
 * under stateDir (one folder per node), so a restarted worker reconciles by reading them.
 */
export class LocalProvider implements Provider {
  readonly name = 'local';
  /** `auth`: what each node's agent is given (only its own control token). */
  constructor(private readonly opts: LocalProviderOptions, private readonly auth: AgentAuth) {}

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

  private toInstance(rec: NodeRecord): NodeInstance {
    const url = rec.state === 'terminated' ? undefined : agentUrl(this.nodeDir(rec.id));
    let state: InstanceState = rec.state;
    if (rec.state !== 'terminated') state = url ? 'running' : 'provisioning';
    const dead = this.deadReason(rec);
    // A node whose agent died is no longer starting: it is a running "instance" that failed.
    if (dead) state = 'running';
    return {
      id: rec.id,
      pool: rec.pool,
      provider: this.name,
      instanceType: rec.instanceType,
      state,
      ...(dead ? { dead: { reason: dead } } : {}),
      agentUrl: url,
      tags: { [TAG_POOL]: rec.pool, [TAG_NODE]: rec.id, [TAG_MANAGED]: 'true', ...(rec.serving ? { [TAG_SERVING]: 'true' } : {}) },
      createdAt: rec.createdAt,
    };
  }

  /**
   * A local node is dead when provisioning finished (record `running`) but no agent process holds its
   * lock: the process was killed or exited. The lock is taken at spawn, so a booting agent counts as alive.
   */
  private deadReason(rec: NodeRecord): string | undefined {
    if (rec.state !== 'running' || agentPid(this.nodeDir(rec.id))) return undefined;
    if (rec.rebootStartedAt && Date.now() - Date.parse(rec.rebootStartedAt) < LOCAL_REBOOT_GRACE_MS) return undefined;
    return 'agent process is not alive';
  }

  private agentOptions(rec: NodeRecord, bootSeconds: number): AgentProcessOptions {
    return {
      nodeId: rec.id,
      pool: rec.pool,
      dataDir: this.nodeDir(rec.id),
      env: agentEnv(this.auth, rec.pool, rec.id),
      tokensFile: this.opts.agentTokensFile,
      faultInjection: this.opts.faultInjection,
      gpus: this.opts.gpusPerNode,
      bootSeconds,
      simJobs: this.opts.simJobs,
      simJobSeconds: this.opts.simJobSeconds,
      // Local model files live in `models/` beside the state dir (the dev stack and test fleets write them there).
      modelDirs: [join(dirname(this.opts.stateDir), 'models'), ...(this.opts.modelDirs ?? [])],
      requireModel: rec.serving === true,
    };
  }

  private startAgent(rec: NodeRecord, bootSeconds: number): void {
    startAgentProcess(this.agentOptions(rec, bootSeconds));
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
      rec = { id, pool: spec.pool, instanceType: spec.instanceType, idempotencyKey, state: 'provisioning', createdAt: new Date().toISOString(), ...(spec.serving ? { serving: true } : {}) };
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
    await stopAgentProcess(this.nodeDir(id));
    this.writeRecord({ ...rec, state: 'terminated', terminatedAt: new Date().toISOString() });
  }

  /**
   * Restarts the node's agent process, after `bootSeconds` of simulated boot like a new node: the
   * fresh process starts with no simulated faults but the persistent ones. The record notes the
   * reboot while it runs (so the node reads as rebooting, not dead) and the key once it is done.
   */
  async reboot(id: string, idempotencyKey?: string): Promise<void> {
    const rec = this.readRecord(id);
    if (!rec || rec.state === 'terminated') throw notRebootable('local provider', id, rec ? 'it is terminated' : 'no such node');
    const key = idempotencyKey === undefined ? undefined : keyHash(idempotencyKey);
    if (key && rec.rebootKey === key) return; // done before, as the cloud providers' retries find
    this.writeRecord({ ...rec, state: 'running', rebootStartedAt: new Date().toISOString() });
    await restartAgentProcess(this.agentOptions(rec, this.opts.bootSeconds ?? 0));
    const now = this.readRecord(id)!;
    if (now.state === 'terminated') {
      // Terminated while it rebooted: the fresh agent must not outlive its node.
      await stopAgentProcess(this.nodeDir(id));
      throw notRebootable('local provider', id, 'it was terminated during the reboot');
    }
    const { rebootStartedAt: _done, ...rest } = now;
    this.writeRecord({ ...rest, ...(key ? { rebootKey: key } : {}) });
  }

  /** SIGTERMs every agent, leaving node records as they are (the dev stack exits); any still running after `graceMs` (e.g. stuck unloading a model) is SIGKILLed. */
  async stopAgents(graceMs = 10_000): Promise<void> {
    const pids = this.records().map((rec) => agentPid(this.nodeDir(rec.id))).filter((p): p is number => p !== undefined);
    for (const pid of pids) process.kill(pid, 'SIGTERM');
    const until = Date.now() + graceMs;
    while (pids.some(pidAlive) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    for (const pid of pids.filter(pidAlive)) process.kill(pid, 'SIGKILL');
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
    const id = `snap-${keyHash(req.idempotencyKey).slice(0, 12)}`;
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
      tags: { ...req.tags, [TAG_SNAPSHOT_KEY]: keyHash(req.idempotencyKey) },
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

  private diskDir(id: string): string {
    return join(this.opts.stateDir, 'disks', id);
  }

  /** A "disk" here is a new data directory holding a copy of the snapshot's data; renamed into place last. */
  async createDiskFromSnapshot(req: DiskFromSnapshotRequest): Promise<Disk> {
    const id = `disk-${keyHash(req.idempotencyKey).slice(0, 12)}`;
    const dir = this.diskDir(id);
    const file = join(dir, 'disk.json');
    if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Disk;
    if (!/^snap-[0-9a-f]+$/.test(req.snapshotId) || !this.readSnapshot(req.snapshotId)) {
      throw new ProviderConfigError(`local provider: no snapshot '${req.snapshotId}' to make a disk from`);
    }
    const tmp = `${dir}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    cpSync(this.snapshotDataDir(req.snapshotId), join(tmp, 'data'), { recursive: true });
    const disk: Disk = {
      id,
      provider: this.name,
      snapshotId: req.snapshotId,
      state: 'ready',
      path: join(dir, 'data'),
      tags: { ...req.tags, [TAG_MANAGED]: 'true', [TAG_DISK_KEY]: keyHash(req.idempotencyKey) },
    };
    writeFileSync(join(tmp, 'disk.json'), JSON.stringify(disk, null, 2));
    mkdirSync(dirname(dir), { recursive: true });
    renameSync(tmp, dir);
    return disk;
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

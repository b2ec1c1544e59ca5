import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadAgentConfig } from '../../gpu-agent/config.ts';
import type { SimulatedFault } from '../../gpu-agent/gpu/simulated.ts';
import { SimulatedGpuBackend } from '../../gpu-agent/gpu/simulated.ts';
import { createAgent, type Agent } from '../../gpu-agent/server.ts';
import { SimulatedInference, simulatedModelSha256, type SimulatedTiming } from '../../gpu-agent/inference/simulated.ts';
import type { WorkItem } from '../../gpu-agent/work.ts';
import { mixSeed, mulberry32 } from '../../activities/training/random.ts';
import { nodeIdFor } from '../../activities/providers/naming.ts';
import { TAG_MANAGED, TAG_NODE, TAG_POOL, type NodeInstance } from '../../activities/providers/types.ts';

/**
 * A fault the simulator can script: a GPU fault (as the agent's /sim/faults takes; `persistent` ones
 * survive a reboot), an agent that stops answering (a reboot brings it back), an instance dead at the
 * provider (a reboot cannot help), or recovery from the GPU faults.
 */
export type SimFault =
  | (SimulatedFault & { persistent?: boolean })
  | { kind: 'unreachable' }
  | { kind: 'dead'; reason?: string }
  | { kind: 'recover' }
  /** The agent process dies and its supervisor starts it again after `seconds` (default 5); persistent faults come back with it. */
  | { kind: 'crash'; seconds?: number }
  /** An agent that is down (unreachable, crashed) starts again now, on a new port; a no-op on a serving one. */
  | { kind: 'revive' };

/**
 * A fault of the simulated provider API, until `seconds` pass (or cleared): `capacity` makes new
 * instances fail for lack of capacity (503, code capacity); `throttle` answers every provider call 429.
 */
export type ProviderFault = { kind: 'capacity' | 'throttle'; seconds?: number };
const PROVIDER_ROUTES = new Set(['POST /provision', 'POST /terminate', 'POST /reboot', 'GET /describe', 'GET /list']);

interface SimNode {
  id: string;
  pool: string;
  key: string;
  instanceType: string;
  createdAt: string;
  state: 'provisioning' | 'running' | 'terminated';
  /** Racks group nodes for correlated faults; zones group racks. */
  rack: number;
  zone: string;
  agent?: Agent;
  url?: string;
  /** Set by a `dead` fault: the provider holds the instance failed. */
  dead?: string;
  /** Reboots done, and the hash of the last one's idempotency key. */
  reboots: number;
  rebootKey?: string;
  /** The node's own control token(s), handed over at provision as user data would; none: the dev-only shared-token mode. */
  controlTokens?: string[];
  /** Simulated inference: this node's durations and what it measured (kept after termination). */
  inference?: { durations: NodeDurations; backend?: SimulatedInference; drains: DrainTiming[]; outOfService: OutOfService[] };
}

/** A duration in seconds or milliseconds: fixed, or [min, max] drawn per node. */
export type DurationRange = number | [number, number];

/** Simulated inference on every agent (no model files, no llama.cpp). */
export interface SimInferenceOptions {
  /** Seconds a model swap (verify, load, smoke) takes on a node. */
  swapSeconds: DurationRange;
  /** Seconds a drain waits for the node's in-flight work (one long generation per node while it serves). */
  drainSeconds: DurationRange;
  /** Milliseconds one generation (e.g. a rollout's smoke check) takes. */
  generationMs: DurationRange;
  /** Seconds a remote model (s3://, https://) takes to download onto a node (default 0). */
  downloadSeconds?: DurationRange;
  /** Seeds the per-node draws: the same seed and node ids give the same durations. */
  seed?: number;
  /** Model path every node serves from boot (its sha256: simulatedModelSha256(path)). */
  initialModel?: string;
  /** Models whose load fails its smoke generation (422). */
  failSha256?: string[];
  /** Models that load but generate text without "hello". */
  badOutputSha256?: string[];
  /** Models that pass a short smoke generation but fail (500) client generations longer than 16 tokens. */
  oomSha256?: string[];
}

/** The durations drawn for one node. */
export interface NodeDurations {
  swapSeconds: number;
  drainSeconds: number;
  generationMs: number;
  downloadSeconds: number;
}

/** A stretch a node took no new client work: from cordon (or drain) to uncordon. */
export interface OutOfService {
  from: number;
  ms: number;
}

export interface DrainTiming {
  startedAt: number;
  ms: number;
  outcome: 'drained' | 'cancelled';
}

/** What one node's agent measured: its drains, swaps and generations, with durations in ms. */
export interface NodeTimings {
  nodeId: string;
  pool: string;
  durations: NodeDurations;
  drains: DrainTiming[];
  outOfService: OutOfService[];
  swaps: SimulatedTiming[];
  generations: SimulatedTiming[];
}

export interface SimulatorOptions {
  /** The control API's token, and the shared token of nodes provisioned without control tokens (dev-only shared-token mode). */
  token: string;
  /** A tokens file every agent reads (applications' inference tokens, operators' control tokens). */
  tokensFile?: string;
  dataDir: string;
  gpusPerNode?: number;
  /** Seconds a provisioned node boots before its agent answers (initial nodes: `bootSeconds: 0` per call). */
  bootSeconds?: number;
  /** Seconds a rebooted node is down before its agent answers again (default: bootSeconds). */
  rebootSeconds?: number;
  rackSize?: number;
  racksPerZone?: number;
  inference?: SimInferenceOptions;
}

/** A function, not an inline test: TypeScript would keep a narrowing of `n.state` across the awaits of a boot. */
const gone = (n: SimNode) => n.state === 'terminated';

function fnv(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * Many simulated gpu-agents in one process, each a real `createAgent` HTTP server on its own
 * port with simulated GPUs, plus a small control API (provision / terminate / list / fault) that
 * the fleet-sim provider calls. One process instead of one per node is what lets the real pool
 * workflow and worker run against hundreds of nodes on a small machine.
 */
export class FleetSimulator {
  private nodes = new Map<string, SimNode>();
  /** Nodes provisioned so far per pool: racks are numbered within each pool. */
  private counts = new Map<string, number>();
  /** Provider faults in force, with when each ends (Infinity: until cleared). */
  private providerFaults = new Map<ProviderFault['kind'], number>();

  constructor(private readonly opts: SimulatorOptions) {}

  private async boot(n: SimNode): Promise<void> {
    if (gone(n)) return; // terminated while it waited to boot
    const dir = join(this.opts.dataDir, n.id);
    mkdirSync(dir, { recursive: true });
    const config = loadAgentConfig(
      ['--node-id', n.id, '--pool', n.pool, '--host', '127.0.0.1', '--port', '0', '--data-dir', dir, '--gpus', String(this.opts.gpusPerNode ?? 2), '--sim-jobs', '0',
        '--allow-fault-injection', ...(this.opts.tokensFile ? ['--tokens-file', this.opts.tokensFile] : []), ...this.inferenceArgs(n)],
      n.controlTokens?.length ? { DRYDOCK_AGENT_CONTROL_TOKEN: n.controlTokens.join(',') } : { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: this.opts.token },
    );
    const agent = createAgent(config);
    await new Promise<void>((resolve) => agent.server.listen(0, '127.0.0.1', resolve));
    if (gone(n)) return void (await agent.close()); // terminated while it started
    n.agent = agent;
    if (n.inference && agent.inference instanceof SimulatedInference) {
      n.inference.backend = agent.inference;
      this.keepBusy(n, agent);
    }
    n.url = `http://127.0.0.1:${(agent.server.address() as AddressInfo).port}`;
    n.state = 'running';
  }

  /** Agent flags for simulated inference, with this node's durations drawn from the seeded ranges. */
  private inferenceArgs(n: SimNode): string[] {
    const o = this.opts.inference;
    if (!o) return [];
    // Seeded by node id, not boot order, so concurrent provisioning draws the same per node.
    const rand = mulberry32(mixSeed(o.seed ?? 1, fnv(n.id)));
    const draw = (r: DurationRange) => (typeof r === 'number' ? r : r[0] + rand() * (r[1] - r[0]));
    const durations: NodeDurations = { swapSeconds: draw(o.swapSeconds), drainSeconds: draw(o.drainSeconds), generationMs: Math.round(draw(o.generationMs)), downloadSeconds: draw(o.downloadSeconds ?? 0) };
    n.inference ??= { durations, drains: [], outOfService: [] };
    const d = n.inference.durations;
    return [
      '--inference', 'simulated',
      '--sim-swap-seconds', d.swapSeconds.toFixed(3),
      '--sim-generation-ms', String(d.generationMs),
      '--sim-download-seconds', d.downloadSeconds.toFixed(3),
      ...(o.initialModel ? ['--model', o.initialModel, '--model-sha256', simulatedModelSha256(o.initialModel)] : []),
      ...(o.failSha256?.length ? ['--sim-fail-sha256', o.failSha256.join(',')] : []),
      ...(o.badOutputSha256?.length ? ['--sim-bad-output-sha256', o.badOutputSha256.join(',')] : []),
      ...(o.oomSha256?.length ? ['--sim-oom-sha256', o.oomSha256.join(',')] : []),
    ];
  }

  /**
   * Client traffic that a drain must wait for: while the node accepts work it holds one long
   * generation, which finishes `drainSeconds` after the drain starts (so drains take a known,
   * per-node time). Uncordon brings the traffic back.
   */
  private keepBusy(n: SimNode, agent: Agent): void {
    const rec = n.inference!;
    const work = agent.work;
    let item: WorkItem | undefined;
    let timer: NodeJS.Timeout | undefined;
    let drainStart = 0;
    const finish = (outcome: DrainTiming['outcome']) => {
      clearTimeout(timer);
      timer = undefined;
      if (drainStart) rec.drains.push({ startedAt: drainStart, ms: Date.now() - drainStart, outcome });
      drainStart = 0;
    };
    const begin = () => {
      if (item || !work.accepting) return;
      const it: WorkItem = work.begin('inference', () => {
        if (item === it) item = undefined;
        finish('cancelled'); // a forced drain
      });
      item = it;
    };
    // Wrapped on this instance only: the agent's own drain logic runs unchanged.
    const drain = work.drain.bind(work);
    work.drain = (timeoutSeconds, force) => {
      const state = work.status().state;
      const starting = state === 'active' || state === 'cordoned';
      if (starting && item && !timer) {
        const it = item;
        drainStart = Date.now();
        timer = setTimeout(() => {
          if (item === it) item = undefined;
          it.done();
          finish('drained');
        }, rec.durations.drainSeconds * 1000);
      }
      return drain(timeoutSeconds, force);
    };
    // Out of service: from the first cordon (or drain) while serving until the uncordon.
    let outSince = 0;
    const cordon = work.cordon.bind(work);
    work.cordon = () => {
      if (!outSince && work.accepting) outSince = Date.now();
      return cordon();
    };
    const drainOut = work.drain;
    work.drain = (timeoutSeconds, force) => {
      if (!outSince && work.accepting) outSince = Date.now();
      return drainOut(timeoutSeconds, force);
    };
    const uncordon = work.uncordon.bind(work);
    work.uncordon = () => {
      if (outSince && !work.accepting) rec.outOfService.push({ from: outSince, ms: Date.now() - outSince });
      outSince = 0;
      uncordon();
      begin();
      return work.status();
    };
    begin();
  }

  /** Per node: drawn durations and measured drains, swaps and generations (simulated inference only). */
  timings(pool?: string): NodeTimings[] {
    const out: NodeTimings[] = [];
    for (const n of this.nodes.values()) {
      if (!n.inference || (pool !== undefined && n.pool !== pool)) continue;
      const t = n.inference.backend?.timings ?? [];
      out.push({
        nodeId: n.id,
        pool: n.pool,
        durations: n.inference.durations,
        drains: [...n.inference.drains],
        outOfService: [...n.inference.outOfService],
        swaps: t.filter((x) => x.kind === 'swap'),
        generations: t.filter((x) => x.kind === 'generation'),
      });
    }
    return out;
  }

  private toInstance(n: SimNode): NodeInstance {
    return {
      id: n.id,
      pool: n.pool,
      provider: 'fleet-sim',
      instanceType: n.instanceType,
      state: n.state,
      ...(n.dead && n.state !== 'terminated' ? { dead: { reason: n.dead } } : {}),
      agentUrl: n.state === 'running' ? n.url : undefined,
      zone: n.zone,
      tags: { [TAG_POOL]: n.pool, [TAG_NODE]: n.id, [TAG_MANAGED]: 'true', rack: String(n.rack), 'sim-key': n.key },
      createdAt: n.createdAt,
    };
  }

  /** Idempotent on the key: the node id is derived from it, as the real providers do. */
  async provision(pool: string, instanceType: string, key: string, bootSeconds = this.opts.bootSeconds ?? 2, controlTokens?: string[]): Promise<NodeInstance> {
    const id = nodeIdFor(pool, key);
    const existing = this.nodes.get(id);
    if (existing) return this.toInstance(existing);
    if (this.providerFaultActive('capacity')) throw Object.assign(new Error(`no capacity for ${instanceType} (simulated)`), { status: 503, code: 'capacity' });
    const rackSize = this.opts.rackSize ?? 25;
    const count = this.counts.get(pool) ?? 0;
    this.counts.set(pool, count + 1);
    const rack = Math.floor(count / rackSize);
    const n: SimNode = { id, pool, key, instanceType, controlTokens, createdAt: new Date().toISOString(), state: 'provisioning', reboots: 0, rack, zone: `zone-${Math.floor(rack / (this.opts.racksPerZone ?? 4))}` };
    this.nodes.set(id, n);
    if (bootSeconds > 0) setTimeout(() => void this.boot(n), bootSeconds * 1000).unref();
    else await this.boot(n);
    return this.toInstance(n);
  }

  async terminate(id: string): Promise<void> {
    const n = this.nodes.get(id);
    if (!n || n.state === 'terminated') return;
    n.state = 'terminated';
    await n.agent?.close();
    n.agent = undefined;
  }

  /**
   * Simulated downtime: the agent goes away (no address) and a fresh one boots after `rebootSeconds`
   * with only the persistent faults; the node keeps its id. A key makes a retry once done a no-op.
   */
  async reboot(id: string, key?: string, downtimeSeconds = this.opts.rebootSeconds ?? this.opts.bootSeconds ?? 2): Promise<void> {
    const n = this.nodes.get(id);
    if (!n || n.state === 'terminated') throw Object.assign(new Error(`cannot reboot node ${id}: no live node`), { status: 409 });
    if (n.dead) throw Object.assign(new Error(`cannot reboot node ${id}: dead at the provider (${n.dead})`), { status: 409 });
    if (key !== undefined && n.rebootKey === key) return;
    n.reboots++;
    n.rebootKey = key;
    const agent = n.agent;
    n.agent = undefined;
    n.url = undefined;
    n.state = 'provisioning';
    await agent?.close();
    if (downtimeSeconds > 0) setTimeout(() => void this.boot(n), downtimeSeconds * 1000).unref();
    else await this.boot(n);
  }

  describe(id: string): NodeInstance | undefined {
    const n = this.nodes.get(id);
    return n && this.toInstance(n);
  }

  list(pool: string): NodeInstance[] {
    return [...this.nodes.values()].filter((n) => n.pool === pool && n.state !== 'terminated').map((n) => this.toInstance(n));
  }

  /** Nodes of a rack (for correlated faults). */
  rack(pool: string, rack: number): string[] {
    return [...this.nodes.values()].filter((n) => n.pool === pool && n.rack === rack && n.state === 'running').map((n) => n.id);
  }

  /** Starts a provider fault; `seconds` absent: until clearProviderFault. */
  providerFault(f: ProviderFault): void {
    this.providerFaults.set(f.kind, f.seconds === undefined ? Infinity : Date.now() + f.seconds * 1000);
  }
  /** Ends one provider fault, or all. */
  clearProviderFault(kind?: ProviderFault['kind']): void {
    if (kind) this.providerFaults.delete(kind);
    else this.providerFaults.clear();
  }
  providerFaultActive(kind: ProviderFault['kind']): boolean {
    const until = this.providerFaults.get(kind);
    return until !== undefined && Date.now() < until;
  }

  async fault(id: string, fault: SimFault): Promise<void> {
    const n = this.nodes.get(id);
    if (fault.kind === 'revive') {
      if (!n || gone(n) || n.dead || n.state === 'provisioning') return;
      if (n.agent?.server.listening) return;
      const agent = n.agent;
      n.agent = undefined;
      await agent?.close();
      return this.boot(n);
    }
    if (!n?.agent) throw new Error(`no running node ${id}`);
    if (fault.kind === 'crash') {
      // The instance runs on; its old address refuses connections until the agent is back.
      const agent = n.agent;
      n.agent = undefined;
      await agent.close();
      setTimeout(() => void (n.agent || gone(n) || n.dead || n.state !== 'running' ? undefined : this.boot(n)), (fault.seconds ?? 5) * 1000).unref();
      return;
    }
    if (fault.kind === 'unreachable') {
      // The agent stops answering but the instance still runs: what a hung host looks like.
      await new Promise<void>((resolve) => {
        n.agent!.server.close(() => resolve());
        n.agent!.server.closeAllConnections();
      });
      return;
    }
    if (fault.kind === 'dead') {
      n.dead = fault.reason ?? 'simulated instance failure';
      const agent = n.agent;
      n.agent = undefined;
      n.url = undefined;
      await agent.close();
      return;
    }
    if (fault.kind === 'recover') {
      (n.agent.gpu as SimulatedGpuBackend).clearFaults();
      n.agent.xids.clear();
      return;
    }
    const { persistent, ...gpuFault } = fault;
    (n.agent.gpu as SimulatedGpuBackend).inject(gpuFault, { persistent });
  }

  async close(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.agent?.close()));
  }

  /** The control API: JSON over HTTP with the agents' bearer token. */
  serve(port = 0): Promise<{ server: Server; url: string }> {
    const routes: Record<string, (b: Record<string, unknown>, q: URLSearchParams) => Promise<unknown>> = {
      'POST /provision': async (b) =>
        this.provision(String(b.pool), String(b.instanceType ?? 'sim'), String(b.key), b.bootSeconds === undefined ? undefined : Number(b.bootSeconds), Array.isArray(b.controlTokens) ? b.controlTokens.map(String) : undefined),
      'POST /terminate': async (b) => (await this.terminate(String(b.id)), {}),
      'POST /reboot': async (b) => (await this.reboot(String(b.id), b.key === undefined ? undefined : String(b.key)), {}),
      'GET /describe': async (_b, q) => this.describe(q.get('id') ?? '') ?? null,
      'GET /list': async (_b, q) => this.list(q.get('pool') ?? ''),
      'GET /rack': async (_b, q) => this.rack(q.get('pool') ?? '', Number(q.get('rack'))),
      'POST /fault': async (b) => (await this.fault(String(b.id), b.fault as SimFault), {}),
      'GET /timings': async (_b, q) => this.timings(q.get('pool') ?? undefined),
      'POST /provider-fault': async (b) => (this.providerFault(b as ProviderFault), {}),
      'POST /provider-recover': async (b) => (this.clearProviderFault(b.kind as ProviderFault['kind'] | undefined), {}),
    };
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      void (async () => {
        try {
          if (req.headers.authorization !== `Bearer ${this.opts.token}`) throw Object.assign(new Error('authorization: wrong token'), { status: 401 });
          const u = new URL(req.url ?? '/', 'http://x');
          const route = routes[`${req.method} ${u.pathname}`];
          if (!route) throw Object.assign(new Error(`no route ${req.method} ${u.pathname}`), { status: 404 });
          if (PROVIDER_ROUTES.has(`${req.method} ${u.pathname}`) && this.providerFaultActive('throttle')) {
            throw Object.assign(new Error('RequestLimitExceeded: request rate exceeded (simulated throttling)'), { status: 429 });
          }
          let text = '';
          for await (const chunk of req) text += chunk;
          const out = await route(text ? (JSON.parse(text) as Record<string, unknown>) : {}, u.searchParams);
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
        } catch (err) {
          const e = err as { status?: number; code?: string };
          res.writeHead(e.status ?? 500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (err as Error).message, ...(e.code ? { code: e.code } : {}) }));
        }
      })();
    });
    server.keepAliveTimeout = 30_000;
    return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })));
  }
}

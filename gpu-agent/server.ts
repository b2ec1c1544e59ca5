import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AgentConfig } from './config.ts';
import { evaluateHealth } from './health.ts';
import { allowOnly, HttpError, optionalBoolean, optionalNumber, readJsonObject, sendJson } from './http.ts';
import { AgentMetrics } from './metrics.ts';
import { selectGpuBackend } from './gpu/select.ts';
import { SimulatedGpuBackend, SIMULATED_FAULT_KINDS, type SimulatedFault } from './gpu/simulated.ts';
import { normalizePciBusId, type GpuBackend, type GpuInfo } from './gpu/types.ts';
import { KernelLogWatcher, XidLog } from './gpu/xid.ts';
import { chatCompletions, completions, models, smoke, type OpenAiDeps } from './inference/openai.ts';
import { LlamaInference, ModelSwapError, type InferenceService } from './inference/service.ts';
import { SimulatedInference } from './inference/simulated.ts';
import type { ModelFetcher } from './models/fetcher.ts';
import { registerModelMetrics } from './models/metrics.ts';
import { modelRefBody, modelRoutes } from './models/routes.ts';
import { SimulatedModelStore } from './models/simulated.ts';
import { ModelStore } from './models/store.ts';
import { Guard } from './guard.ts';
import { servingReasons, type DesiredModel } from './readiness.ts';
import { TrafficCounter } from './traffic.ts';
import { CordonedError, WorkTracker } from './work.ts';
import { HealthWatch, watchRoute } from './watch.ts';

export const AGENT_VERSION = '0.2.0';
export const DEFAULT_DRAIN_TIMEOUT_SECONDS = 300;
/** Longest a drain request may long-poll (waitSeconds) before answering with the status so far. */
export const MAX_DRAIN_WAIT_SECONDS = 30;

export interface Agent {
  server: Server;
  work: WorkTracker;
  gpu: GpuBackend;
  inference: InferenceService;
  xids: XidLog;
  /** The long-poll behind GET /health/watch (watch.ts). */
  watch: HealthWatch;
  /** Tokens, limits and the audit log (guard.tokens.reload() is what SIGHUP does). */
  guard: Guard;
  /** Settles once the start-up model (if any) has loaded or failed. */
  started: Promise<void>;
  close(): Promise<void>;
}

/** What node-llama-cpp sees: the cross-check for what nvidia-smi reports. */
interface LlamaView {
  gpu: string | false;
  devices: string[];
  vramTotalMiB: number;
  vramUsedMiB: number;
}

type Body = Record<string, unknown>;
type Result = [number, unknown, Record<string, string>?];
type Handler = (body: Body) => Promise<Result>;
type RawHandler = (req: IncomingMessage, res: ServerResponse, body: Body) => Promise<void>;

export function createAgent(config: AgentConfig): Agent {
  const policy = config.policy;
  const guard = new Guard(config);
  guard.tokens.watch();
  const metrics = new AgentMetrics();
  const traffic = new TrafficCounter();
  // The watch (below) is poked by every change the agent makes or sees; it exists before anything can poke it.
  let watch: HealthWatch | undefined;
  const poke = () => void watch?.poke();
  const xids = new XidLog(256, (e) => {
    metrics.recordXid(e);
    poke();
  });
  const gpu = selectGpuBackend(config, (e) => xids.record(e));
  let fetcher: ModelFetcher;
  let inference: InferenceService;
  if (config.inference === 'simulated') {
    const store = new SimulatedModelStore(config.simInference.downloadSeconds);
    [fetcher, inference] = [store, new SimulatedInference(config, store)];
  } else {
    const store = new ModelStore({ ...config.models, dataDir: config.dataDir });
    [fetcher, inference] = [store, new LlamaInference(config, store)];
  }
  registerModelMetrics(metrics.registry, fetcher);
  inference.onTokens = (n) => metrics.tokens.inc(n);
  const work = new WorkTracker((n) => {
    metrics.inFlight.set(n);
    if (!work.accepting) poke(); // a drain's progress: the watch answers when it is drained
    if (gpu instanceof SimulatedGpuBackend) gpu.setLoad(config.simJobs > 0 ? n / config.simJobs : Math.min(1, n));
  });

  // PCI bus id -> GPU index, from the latest inventory; XIDs for unknown ids count against the node.
  let lastGpus: GpuInfo[] = [];
  let expectedGpus = gpu instanceof SimulatedGpuBackend ? config.gpus : config.expectedGpus;
  const kernelSource = gpu instanceof SimulatedGpuBackend && config.kernelLog === 'auto' ? 'none' : config.kernelLog;
  const watcher = new KernelLogWatcher(kernelSource, (x) => {
    const g = lastGpus.find((info) => normalizePciBusId(info.pciBusId) === x.pciBusId);
    xids.record({ gpuIndex: g?.index ?? -1, pciBusId: x.pciBusId, code: x.code, message: x.message, at: x.at ?? new Date().toISOString() });
  });
  watcher.start();

  let llamaView: LlamaView | { error: string } | undefined;
  const crossCheck = async () => {
    if (!inference.llama) return; // simulated inference: no llama.cpp to ask
    try {
      const llama = await inference.llama();
      const vram = await llama.getVramState();
      llamaView = { gpu: llama.gpu, devices: await llama.getGpuDeviceNames(), vramTotalMiB: Math.round(vram.total / 2 ** 20), vramUsedMiB: Math.round(vram.used / 2 ** 20) };
    } catch (err) {
      llamaView = { error: (err as Error).message };
    }
  };
  let modelError: string | undefined;
  // What the agent has been told it must serve: the start-up model, then the last model the control plane asked for.
  let desired: DesiredModel | undefined = config.model;
  const started = (async () => {
    if (gpu.name === 'nvidia' || config.model) await crossCheck();
    if (config.model) {
      try {
        await inference.load(config.model.uri, config.model.sha256);
        poke();
      } catch (err) {
        modelError = (err as Error).message;
        console.error(`gpu-agent ${config.nodeId}: start-up model failed: ${modelError}`);
      }
    }
  })();

  let lastSnap: Awaited<ReturnType<GpuBackend['snapshot']>> | undefined;
  /** `fresh: false` re-judges the last GPU snapshot (the watch's pokes: an XID must not wait for nvidia-smi). */
  async function health(fresh = true) {
    const snap = !fresh && lastSnap ? lastSnap : await gpu.snapshot();
    lastSnap = snap;
    if (!snap.error) {
      lastGpus = snap.gpus;
      expectedGpus ??= snap.gpus.length; // nvidia: the first good inventory is what the node must keep
    }
    const verdict = evaluateHealth(snap, xids.forHealth(), expectedGpus ?? 0, policy);
    const gpus = snap.gpus.map((g) => ({ ...g, ...verdict.gpus.find((v) => v.index === g.index)! }));
    let { status } = verdict;
    const reasons = [...verdict.reasons];
    if (snap.backend === 'nvidia' && snap.gpus.length > 0 && llamaView && 'gpu' in llamaView && llamaView.gpu === false) {
      if (status === 'healthy') status = 'degraded';
      reasons.push(`node-llama-cpp found no usable GPU backend although nvidia-smi lists ${snap.gpus.length} GPUs (driver/CUDA runtime mismatch?)`);
    }
    metrics.observe(gpus, status);
    const slots = inference.slots();
    metrics.slotsBusy.set(slots.busy);
    metrics.slotsTotal.set(slots.total);
    metrics.queueDepth.set(slots.queued);
    const m = inference.model;
    return {
      nodeId: config.nodeId,
      pool: config.pool,
      status,
      reasons,
      backend: snap.backend,
      expectedGpus: expectedGpus ?? null,
      gpus,
      recentXids: xids.recent(),
      xidCounts: xids.summary(),
      kernelLog: watcher.using,
      drain: work.status(),
      model: m ? { id: m.id, uri: m.uri, sha256: m.sha256, loadedAt: m.loadedAt, sizeBytes: m.sizeBytes, gpuLayers: m.gpuLayers } : null,
      modelSwap: inference.swap,
      modelDownloads: fetcher.downloads().slice(0, 4),
      modelCache: fetcher.cacheView(),
      slots,
      llama: llamaView ?? null,
      agentVersion: AGENT_VERSION,
      policyVersion: policy.version,
    };
  }

  const openai: OpenAiDeps = { inference, work, maxTokens: config.maxTokens };
  watch = new HealthWatch(async (fresh) => {
    const h = await health(fresh);
    return { nodeId: h.nodeId, status: h.status, reasons: h.reasons, drain: { state: h.drain.state, inFlight: h.drain.inFlight }, model: h.model && { id: h.model.id, uri: h.model.uri, sha256: h.model.sha256 } };
  });
  const healthWatch = watch;
  /** Routes after which the watch looks again (they change drain state, the model or simulated faults). */
  const POKES = new Set(['POST /cordon', 'POST /uncordon', 'POST /drain', 'PUT /model', 'POST /sim/faults', 'POST /sim/faults/clear']);

  const routes: Record<string, Handler> = {
    'GET /health': async () => [200, await health()],
    'GET /ready': async () => {
      const h = await health();
      const reasons = [
        ...(h.drain.state !== 'active' ? [`node is ${h.drain.state}`] : []),
        ...(h.status === 'unhealthy' ? h.reasons : []),
        ...servingReasons(desired, h.model, config.requireModel, modelError),
      ];
      return reasons.length ? [503, { ready: false, reasons }] : [200, { ready: true }];
    },
    'GET /policy': async () => [200, policy],
    'POST /cordon': async (b) => (allowOnly(b, []), [200, work.cordon()]),
    'POST /uncordon': async (b) => (allowOnly(b, []), [200, work.uncordon()]),
    'GET /drain': async () => [200, work.status()],
    'GET /traffic': async () => [200, traffic.read()],
    'POST /drain': async (b) => {
      allowOnly(b, ['timeoutSeconds', 'force', 'waitSeconds']);
      const timeout = optionalNumber(b, 'timeoutSeconds', 0, DEFAULT_DRAIN_TIMEOUT_SECONDS);
      const wait = optionalNumber(b, 'waitSeconds', 0, 0);
      if (wait > MAX_DRAIN_WAIT_SECONDS) throw new HttpError(400, `waitSeconds: at most ${MAX_DRAIN_WAIT_SECONDS}`);
      work.drain(timeout, optionalBoolean(b, 'force', false));
      return [200, await work.settled(wait * 1000)];
    },
    'POST /jobs': async (b) => {
      allowOnly(b, ['seconds']);
      const seconds = optionalNumber(b, 'seconds', 0, 5);
      try {
        void work.run(seconds);
      } catch (err) {
        if (err instanceof CordonedError) throw new HttpError(503, err.message, { 'retry-after': '30' });
        throw err;
      }
      return [202, { accepted: true, inFlight: work.inFlight }];
    },
    'GET /model': async () => [200, { model: inference.model ?? null, swap: inference.swap, downloads: fetcher.downloads() }],
    ...modelRoutes(fetcher),
    'PUT /model': async (b) => {
      const { uri, sha256 } = modelRefBody(b);
      const before = desired;
      desired = { uri, sha256 };
      try {
        const model = await inference.load(uri, sha256);
        modelError = undefined;
        return [200, { model, swap: inference.swap }];
      } catch (err) {
        if (err instanceof ModelSwapError) {
          // A refused model was never served: the agent keeps what it had, and what it was told before.
          desired = before;
          if (err.status !== 409 || !/already in progress/.test(err.message)) modelError = err.message;
          throw new HttpError(err.status, `${err.message} (still serving ${inference.model?.sha256 ?? 'no model'})`);
        }
        throw err;
      }
    },
    'GET /v1/models': async () => [200, models(openai)],
    'POST /smoke': async (b) => [200, await smoke(openai, b)],
    'POST /sim/faults': async (b) => {
      if (!(gpu instanceof SimulatedGpuBackend)) throw new HttpError(409, 'fault injection needs the simulated GPU backend');
      allowOnly(b, ['kind', 'gpu', 'code', 'message', 'celsius', 'uncorrected', 'corrected', 'reasons', 'persistent']);
      if (!SIMULATED_FAULT_KINDS.includes(b.kind as (typeof SIMULATED_FAULT_KINDS)[number])) {
        throw new HttpError(400, `kind: expected one of ${SIMULATED_FAULT_KINDS.join(', ')}`);
      }
      const index = optionalNumber(b, 'gpu', 0, 0);
      if (!Number.isInteger(index) || index >= config.gpus) throw new HttpError(400, `gpu: expected an index 0..${config.gpus - 1}`);
      if (b.kind === 'xid' && !(Number.isInteger(b.code) && (b.code as number) > 0)) throw new HttpError(400, 'code: expected a positive XID code');
      if (b.kind === 'temperature' && typeof b.celsius !== 'number') throw new HttpError(400, 'celsius: expected a number');
      if (b.kind === 'throttle' && !(Array.isArray(b.reasons) && b.reasons.every((r) => typeof r === 'string'))) {
        throw new HttpError(400, 'reasons: expected a list of throttle reasons, e.g. ["hw_thermal_slowdown"]');
      }
      const persistent = optionalBoolean(b, 'persistent', false);
      if (persistent && !gpu.faultsFile) throw new HttpError(400, 'persistent: needs the agent to run with --data-dir, where persistent faults are kept across restarts');
      const { persistent: _p, ...fault } = b;
      gpu.inject({ ...fault, gpu: index } as SimulatedFault, { persistent });
      return [200, await health()];
    },
    'POST /sim/faults/clear': async () => {
      if (!(gpu instanceof SimulatedGpuBackend)) throw new HttpError(409, 'fault injection needs the simulated GPU backend');
      gpu.clearFaults();
      xids.clear();
      return [200, await health()];
    },
  };

  // Fault injection exists only on simulated GPUs and when asked for (--allow-fault-injection).
  if (!(config.allowFaultInjection && gpu instanceof SimulatedGpuBackend)) {
    for (const k of Object.keys(routes)) if (k.startsWith('POST /sim/')) delete routes[k];
  }

  const rawRoutes: Record<string, RawHandler> = {
    'POST /v1/completions': (req, res, b) => completions(openai, req, res, b),
    'POST /v1/chat/completions': (req, res, b) => chatCompletions(openai, req, res, b),
    'GET /health/watch': (req, res) => watchRoute(healthWatch, req, res),
    'GET /metrics': async (_req, res) => {
      await health(); // refreshes the gauges
      const text = await metrics.registry.metrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType });
      res.end(text);
    },
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0];
      const key = `${req.method} ${path}`;
      const known = key in routes || key in rawRoutes;
      const stop = metrics.latency.startTimer({ route: known ? key : 'other' });
      // Requests a cordoned or draining node refuses are not traffic it failed: count only those that came while it served.
      const inService = work.accepting;
      res.once('finish', () => {
        const seconds = stop({ status: String(res.statusCode) });
        if (inService) traffic.record(key, res.statusCode, seconds);
      });
      let gate: ReturnType<Guard['admit']> | undefined;
      let reqBody: Body = {};
      try {
        if (req.method === 'GET' && path === '/livez') return sendJson(res, 200, { ok: true });
        gate = guard.admit(req, key);
        res.once('close', gate.release);
        const raw = rawRoutes[key];
        const route = routes[key];
        if (!route && !raw) throw new HttpError(404, `no route ${req.method} ${path}`);
        const body = (reqBody = req.method === 'POST' || req.method === 'PUT' ? await readJsonObject(req) : {});
        if (raw) return await raw(req, res, body);
        let result: Result;
        try {
          result = await route(body);
        } finally {
          if (POKES.has(key)) poke();
        }
        const [status, out, headers] = result;
        gate.done(status, body, out);
        sendJson(res, status, out, headers);
      } catch (err) {
        const status = err instanceof HttpError ? err.status : 500;
        const message = (err as Error).message;
        gate?.done(status, reqBody, undefined, message);
        if (res.headersSent) {
          // Mid-stream (SSE): the status is gone, so the error travels as the last event.
          res.end(`data: ${JSON.stringify({ error: { message, type: 'server_error' } })}\n\n`);
          return;
        }
        const body = path.startsWith('/v1/') ? { error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', code: status } } : { error: message };
        sendJson(res, status, body, err instanceof HttpError ? err.headers : {});
      }
    })();
  };

  const server = config.tls ? createHttpsServer({ cert: config.tls.cert, key: config.tls.key }, handle) : createHttpServer(handle);

  work.simulateLoad(config.simJobs, config.simJobSeconds);
  return {
    server,
    work,
    gpu,
    inference,
    xids,
    watch: healthWatch,
    guard,
    started,
    close: async () => {
      healthWatch.close();
      guard.close();
      work.stop();
      watcher.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      fetcher.close();
      await started;
      await inference.close();
    },
  };
}

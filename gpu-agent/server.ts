import { createServer, type Server } from 'node:http';
import type { AgentConfig } from './config.ts';
import { SimulatedGpuBackend, SIMULATED_FAULT_KINDS, type SimulatedFault } from './gpu/simulated.ts';
import type { GpuBackend } from './gpu/types.ts';
import { DEFAULT_HEALTH_POLICY, evaluateHealth } from './health.ts';
import { allowOnly, bearerMatches, HttpError, optionalBoolean, optionalNumber, readJsonObject, sendJson } from './http.ts';
import { CordonedError, WorkTracker } from './work.ts';

export const AGENT_VERSION = '0.1.0';
export const DEFAULT_DRAIN_TIMEOUT_SECONDS = 300;

export interface Agent {
  server: Server;
  work: WorkTracker;
  gpu: GpuBackend;
  close(): Promise<void>;
}

export function createAgent(config: AgentConfig): Agent {
  const gpu = new SimulatedGpuBackend(config.gpus, config.nodeId);
  const work = new WorkTracker((n) => gpu.setLoad(config.simJobs > 0 ? n / config.simJobs : Math.min(1, n)));

  async function health() {
    const snap = await gpu.snapshot();
    const verdict = evaluateHealth(snap, config.gpus);
    return {
      nodeId: config.nodeId,
      pool: config.pool,
      status: verdict.status,
      reasons: verdict.reasons,
      backend: snap.backend,
      gpus: snap.gpus.map((g) => ({ ...g, ...verdict.gpus.find((v) => v.index === g.index) })),
      recentXids: snap.xidEvents,
      drain: work.status(),
      model: null,
      agentVersion: AGENT_VERSION,
      policyVersion: DEFAULT_HEALTH_POLICY.version,
    };
  }

  type Handler = (body: Record<string, unknown>) => Promise<[number, unknown, Record<string, string>?]>;
  const routes: Record<string, Handler> = {
    'GET /health': async () => [200, await health()],
    'GET /ready': async () => {
      const h = await health();
      const reasons = [...(h.drain.state !== 'active' ? [`node is ${h.drain.state}`] : []), ...(h.status === 'unhealthy' ? h.reasons : [])];
      return reasons.length ? [503, { ready: false, reasons }] : [200, { ready: true }];
    },
    'POST /cordon': async (b) => (allowOnly(b, []), [200, work.cordon()]),
    'POST /uncordon': async (b) => (allowOnly(b, []), [200, work.uncordon()]),
    'GET /drain': async () => [200, work.status()],
    'POST /drain': async (b) => {
      allowOnly(b, ['timeoutSeconds', 'force']);
      const timeout = optionalNumber(b, 'timeoutSeconds', 0, DEFAULT_DRAIN_TIMEOUT_SECONDS);
      return [200, work.drain(timeout, optionalBoolean(b, 'force', false))];
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
    'POST /sim/faults': async (b) => {
      if (!(gpu instanceof SimulatedGpuBackend)) throw new HttpError(409, 'fault injection needs the simulated GPU backend');
      allowOnly(b, ['kind', 'gpu', 'code', 'message', 'celsius', 'uncorrected', 'corrected']);
      if (!SIMULATED_FAULT_KINDS.includes(b.kind as (typeof SIMULATED_FAULT_KINDS)[number])) {
        throw new HttpError(400, `kind: expected one of ${SIMULATED_FAULT_KINDS.join(', ')}`);
      }
      const index = optionalNumber(b, 'gpu', 0, 0);
      if (!Number.isInteger(index) || index >= config.gpus) throw new HttpError(400, `gpu: expected an index 0..${config.gpus - 1}`);
      if (b.kind === 'xid' && !(Number.isInteger(b.code) && (b.code as number) > 0)) throw new HttpError(400, 'code: expected a positive XID code');
      gpu.inject({ ...b, gpu: index } as SimulatedFault);
      return [200, await health()];
    },
    'POST /sim/faults/clear': async () => {
      if (!(gpu instanceof SimulatedGpuBackend)) throw new HttpError(409, 'fault injection needs the simulated GPU backend');
      gpu.clearFaults();
      return [200, await health()];
    },
  };

  const server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0];
      try {
        if (req.method === 'GET' && path === '/livez') return sendJson(res, 200, { ok: true });
        if (!bearerMatches(req.headers.authorization, config.token)) {
          throw new HttpError(401, 'authorization: missing or wrong bearer token', { 'www-authenticate': 'Bearer' });
        }
        const route = routes[`${req.method} ${path}`];
        if (!route) throw new HttpError(404, `no route ${req.method} ${path}`);
        const body = req.method === 'POST' || req.method === 'PUT' ? await readJsonObject(req) : {};
        const [status, out, headers] = await route(body);
        sendJson(res, status, out, headers);
      } catch (err) {
        if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message }, err.headers);
        sendJson(res, 500, { error: (err as Error).message });
      }
    })();
  });

  work.simulateLoad(config.simJobs, config.simJobSeconds);
  return {
    server,
    work,
    gpu,
    close: () =>
      new Promise((resolve) => {
        work.stop();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

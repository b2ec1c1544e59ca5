import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { Runtime, type ActivityInterceptorsFactory } from '@temporalio/worker';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics on the worker: one `/metrics` endpoint that serves drydock's own counters
 * (prom-client) followed by the Temporal SDK's metrics (Core's exporter, bound to loopback).
 * Off unless DRYDOCK_METRICS_ADDRESS (`host:port`) is set.
 */
export interface MetricsConfig {
  host: string;
  port: number;
}

export class MetricsConfigError extends Error {}

export function loadMetricsConfig(env: NodeJS.ProcessEnv): MetricsConfig | undefined {
  const raw = env.DRYDOCK_METRICS_ADDRESS;
  if (!raw) return undefined;
  const m = /^(.*):(\d{1,5})$/.exec(raw);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !m[1] || port > 65_535) throw new MetricsConfigError(`DRYDOCK_METRICS_ADDRESS: expected host:port such as 0.0.0.0:9464, got '${raw}'`);
  return { host: m[1], port };
}

/** Seconds; replacements take from seconds (local fleet) to tens of minutes (cloud boot + drain). */
const TIME_TO_REPLACE_BUCKETS = [5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];

export class DrydockMetrics {
  readonly registry = new Registry();
  readonly replacementsStarted = new Counter({
    name: 'drydock_replacements_started_total',
    help: 'replaceNode runs that reached their first step',
    labelNames: ['pool'],
    registers: [this.registry],
  });
  readonly replacementsSucceeded = new Counter({
    name: 'drydock_replacements_succeeded_total',
    help: 'replaceNode runs whose replacement node became healthy',
    labelNames: ['pool'],
    registers: [this.registry],
  });
  readonly replacementsFailed = new Counter({
    name: 'drydock_replacements_failed_total',
    help: 'replaceNode runs that gave up (reason: failure type, or "uncordoned" when the node went back to service)',
    labelNames: ['pool', 'reason'],
    registers: [this.registry],
  });
  readonly timeToReplace = new Histogram({
    name: 'drydock_time_to_replace_seconds',
    help: 'From the replaceNode start to a healthy replacement',
    labelNames: ['pool'],
    buckets: TIME_TO_REPLACE_BUCKETS,
    registers: [this.registry],
  });

  readonly backupBytes = new Counter({
    name: 'drydock_backup_bytes_total',
    help: 'Bytes of source files covered by backups (copied or unchanged since the previous backup)',
    labelNames: ['backup'],
    registers: [this.registry],
  });
  readonly backupCopiedBytes = new Counter({
    name: 'drydock_backup_copied_bytes_total',
    help: 'Bytes backups actually wrote to their store',
    labelNames: ['backup'],
    registers: [this.registry],
  });
  readonly backupVerifications = new Counter({
    name: 'drydock_backup_verifications_total',
    help: 'Restore tests of backups, by outcome (ok: every checksum matched)',
    labelNames: ['backup', 'outcome'],
    registers: [this.registry],
  });

  readonly servingDrift = new Gauge({
    name: 'drydock_pool_serving_drift_nodes',
    help: "Members of a serving pool whose agent serves another model than the pool's desired one (or none), at the last probe",
    labelNames: ['pool'],
    registers: [this.registry],
  });
  readonly servingJoins = new Counter({
    name: 'drydock_pool_serving_joins_total',
    help: "Nodes brought to a serving pool's model (scale-up joins, drift converged, replacements), by outcome",
    labelNames: ['pool', 'workflow', 'outcome'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'drydock_worker_' });
  }
}

type Outcome = { ok: true; result: unknown } | { ok: false; err: unknown };
type EventHandler = (m: DrydockMetrics, args: unknown[], outcome: Outcome) => Promise<void> | void;

/** The backup name from its workflow id `backup/<name>/<time>`. */
function backupName(): string {
  return Context.current().info.workflowExecution?.workflowId.split('/')[1] ?? 'unknown';
}

function poolOf(args: unknown[]): string {
  const first = args[0] as { pool?: unknown } | undefined;
  return typeof first?.pool === 'string' ? first.pool : 'unknown';
}

function nonRetryableType(err: unknown): string | undefined {
  return err instanceof ApplicationFailure && err.nonRetryable ? (err.type ?? 'Error') : undefined;
}

/** Time since the workflow started, from the server (activities do not know it otherwise). */
async function workflowAgeSeconds(): Promise<number | undefined> {
  const ctx = Context.current();
  const exec = ctx.info.workflowExecution;
  if (!exec) return undefined;
  try {
    const desc = await ctx.client.workflow.getHandle(exec.workflowId, exec.runId).describe();
    return (Date.now() - desc.startTime.getTime()) / 1000;
  } catch {
    return undefined; // metrics must never fail the activity
  }
}

/**
 * Which activity outcome means what, per workflow type. Counted on the activity side so workflow
 * code stays free of metrics; counts are per worker and at-least-once if a completion is retried.
 * replaceNode gives up either by uncordoning the node (before terminate) or by a non-retryable
 * failure in a step that is not followed by an uncordon.
 */
const joined: EventHandler = (m, args, outcome) => {
  const workflow = Context.current().info.workflowType ?? 'unknown';
  if (outcome.ok) m.servingJoins.inc({ pool: poolOf(args), workflow, outcome: 'served' });
  else if (nonRetryableType(outcome.err)) m.servingJoins.inc({ pool: poolOf(args), workflow, outcome: nonRetryableType(outcome.err)! });
};

const EVENTS: Record<string, Record<string, EventHandler>> = {
  fleetPool: {
    probePool(m, args, outcome) {
      const drift = outcome.ok ? (outcome.result as { drift?: unknown[] }).drift : undefined;
      if (drift) m.servingDrift.set({ pool: poolOf(args) }, drift.length);
    },
    joinServing: joined,
  },
  replaceNode: {
    joinServing: joined,
    resolveNode(m, args, outcome) {
      if (Context.current().info.attempt === 1) m.replacementsStarted.inc({ pool: poolOf(args) });
      const type = outcome.ok ? undefined : nonRetryableType(outcome.err);
      if (type) m.replacementsFailed.inc({ pool: poolOf(args), reason: type });
    },
    uncordonNode(m, args, outcome) {
      if (outcome.ok) m.replacementsFailed.inc({ pool: poolOf(args), reason: 'uncordoned' });
    },
    terminateNode: failedIfNonRetryable,
    provisionNode: failedIfNonRetryable,
    async waitNodeHealthy(m, args, outcome) {
      if (!outcome.ok) return failedIfNonRetryable(m, args, outcome);
      const pool = poolOf(args);
      m.replacementsSucceeded.inc({ pool });
      const age = await workflowAgeSeconds();
      if (age !== undefined) m.timeToReplace.observe({ pool }, age);
    },
  },
  backup: {
    copySource(m, _args, outcome) {
      if (!outcome.ok) return;
      const r = outcome.result as { bytes?: number; copiedBytes?: number };
      m.backupBytes.inc({ backup: backupName() }, r.bytes ?? 0);
      m.backupCopiedBytes.inc({ backup: backupName() }, r.copiedBytes ?? 0);
    },
    verifyBackup(m, _args, outcome) {
      if (outcome.ok) m.backupVerifications.inc({ backup: backupName(), outcome: (outcome.result as { ok?: boolean }).ok ? 'ok' : 'mismatch' });
    },
  },
};

function failedIfNonRetryable(m: DrydockMetrics, args: unknown[], outcome: Outcome): void {
  const type = outcome.ok ? undefined : nonRetryableType(outcome.err);
  if (type) m.replacementsFailed.inc({ pool: poolOf(args), reason: type });
}

export function metricsInterceptor(m: DrydockMetrics): ActivityInterceptorsFactory {
  return (ctx) => {
    const handler = EVENTS[ctx.info.workflowType ?? '']?.[ctx.info.activityType];
    if (!handler) return {};
    return {
      inbound: {
        async execute(input, next) {
          // Counting must never change an activity's outcome.
          const count = (outcome: Outcome) => Promise.resolve().then(() => handler(m, input.args, outcome)).catch(() => undefined);
          let result: unknown;
          try {
            result = await next(input);
          } catch (err) {
            await count({ ok: false, err });
            throw err;
          }
          await count({ ok: true, result });
          return result;
        },
      },
    };
  };
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface InstalledMetrics {
  activityInterceptors: ActivityInterceptorsFactory[];
  url?: string;
  close(): Promise<void>;
}

/**
 * Installs the SDK Runtime with its Prometheus exporter on a loopback port and serves the merged
 * endpoint. Call before the first connection: the Runtime can be installed only once per process.
 */
export async function installMetrics(env: NodeJS.ProcessEnv = process.env): Promise<InstalledMetrics> {
  const config = loadMetricsConfig(env);
  if (!config) return { activityInterceptors: [], close: async () => {} };
  const sdkAddress = `127.0.0.1:${await freeLoopbackPort()}`;
  Runtime.install({ telemetryOptions: { metrics: { prometheus: { bindAddress: sdkAddress } } } });
  const metrics = new DrydockMetrics();
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are at /metrics\n');
      return;
    }
    void (async () => {
      const own = await metrics.registry.metrics();
      const sdk = await fetch(`http://${sdkAddress}/metrics`)
        .then((r) => r.text())
        .catch((err: Error) => `# temporal sdk metrics unavailable: ${err.message}\n`);
      res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(`${own}\n${sdk}`);
    })().catch((err: Error) => res.writeHead(500).end(err.message));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new MetricsConfigError(`DRYDOCK_METRICS_ADDRESS: cannot listen on ${config.host}:${config.port}: ${err.message}`)));
    server.listen(config.port, config.host, resolve);
  });
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}/metrics`;
  console.log(`drydock metrics: ${url}`);
  return {
    activityInterceptors: [metricsInterceptor(metrics)],
    url,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

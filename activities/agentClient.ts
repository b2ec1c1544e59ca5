import type { DownloadStatus } from '../gpu-agent/models/progress.ts';
import type { TrafficCounts } from '../gpu-agent/traffic.ts';

/** HTTP client for a node's gpu-agent. The token is read by the worker and never leaves it. */
export class AgentHttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface DrainState {
  state: 'active' | 'cordoned' | 'draining' | 'drained' | 'timed-out';
  inFlight: number;
  startedAt?: string;
  deadline?: string;
  cancelled: number;
  /** In-flight work by kind (simulated jobs, generations), where the agent reports it. */
  byKind?: Record<string, number>;
}

export interface AgentHealth {
  nodeId: string;
  status: 'healthy' | 'degraded' | 'unhealthy';
  reasons: string[];
  drain: DrainState;
  gpus: unknown[];
  /** The model being served, or null. */
  model: ServedModel | null;
  agentVersion: string;
  policyVersion: string;
}

/** Who is asking, sent with each call: the agent records the workflow id in its audit line. */
export interface CallerContext {
  workflowId?: string;
  /** Told about every control call (method, path), e.g. to log which workflow asked. */
  onControl?: (method: string, path: string) => void;
}

/** The header the agent reads the caller's workflow id from (gpu-agent/audit.ts). */
export const WORKFLOW_ID_HEADER = 'x-drydock-workflow-id';
const MAX_429_RETRIES = 3;

/** Which of a node's tokens worked last, by agent URL, so a rotation's fallback is paid once per node. */
const working = new Map<string, number>();

export class AgentClient {
  private readonly tokens: readonly string[];
  /**
   * `token`: the node's token, or the tokens to try in order (one per key during a rotation: on a
   * 401 the next one is tried, and the one that worked is tried first next time).
   */
  constructor(readonly baseUrl: string, token: string | readonly string[], private readonly timeoutMs = 5000, private readonly caller: CallerContext = {}) {
    this.tokens = typeof token === 'string' ? [token] : token;
  }

  private async send(method: string, path: string, token: string, body: unknown, timeoutMs: number): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(this.caller.workflowId ? { [WORKFLOW_ID_HEADER]: this.caller.workflowId } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (res.status !== 429 || attempt >= MAX_429_RETRIES) return res;
      // Rate-limited or busy: wait as asked (bounded), then try again.
      const wait = Math.min(5, Math.max(0.1, Number(res.headers.get('retry-after')) || 1));
      await res.text();
      await new Promise((r) => setTimeout(r, wait * 1000));
    }
  }

  private async call<T>(method: string, path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    if (method !== 'GET') this.caller.onControl?.(method, path);
    const first = working.get(this.baseUrl) ?? 0;
    const order = [...this.tokens.keys()].sort((a, b) => (a === first ? -1 : b === first ? 1 : a - b));
    let res: Response | undefined;
    for (const i of order) {
      res = await this.send(method, path, this.tokens[i], body, timeoutMs);
      if (res.status !== 401) {
        working.set(this.baseUrl, i);
        break;
      }
      await res.text();
    }
    res = res!;
    const text = await res.text().catch(() => '');
    const parsed = text ? (JSON.parse(text) as T & { error?: string }) : ({} as T & { error?: string });
    if (res.status === 401) {
      throw new AgentHttpError(401, `agent ${this.baseUrl} rejected the worker's token${this.tokens.length > 1 ? `s (all ${this.tokens.length})` : ''}: the node's control token must come from one of the worker's keys (DRYDOCK_AGENT_KEY; see docs/security.md, key rotation)`);
    }
    if (!res.ok && !(method === 'GET' && path === '/ready')) {
      throw new AgentHttpError(res.status, `agent ${method} ${path} answered ${res.status}: ${parsed.error ?? text}`);
    }
    return parsed;
  }

  health(): Promise<AgentHealth> {
    return this.call('GET', '/health');
  }
  ready(): Promise<{ ready: boolean; reasons?: string[] }> {
    return this.call('GET', '/ready');
  }
  cordon(): Promise<DrainState> {
    return this.call('POST', '/cordon', {});
  }
  uncordon(): Promise<DrainState> {
    return this.call('POST', '/uncordon', {});
  }
  /** Starts (or continues) a drain; with waitSeconds the agent answers once it settles or that time passes. */
  drain(timeoutSeconds: number, force = false, waitSeconds = 0): Promise<DrainState> {
    if (waitSeconds <= 0) return this.call('POST', '/drain', { timeoutSeconds, force });
    return this.call('POST', '/drain', { timeoutSeconds, force, waitSeconds }, this.timeoutMs + waitSeconds * 1000);
  }
  drainStatus(): Promise<DrainState> {
    return this.call('GET', '/drain');
  }
  model(): Promise<{ model: ServedModel | null; swap: ModelSwapState }> {
    return this.call('GET', '/model');
  }
  /** Verified swap: returns once the agent serves the model; a 4xx means it refused and keeps the old one. */
  setModel(uri: string, sha256: string, timeoutMs: number): Promise<{ model: ServedModel }> {
    return this.call('PUT', '/model', { uri, sha256 }, timeoutMs);
  }
  /** Starts (or continues, or reports) a download of the model into the agent's cache while it serves. */
  prefetch(uri: string, sha256: string, waitSeconds = 0): Promise<{ download: ModelDownload }> {
    if (waitSeconds <= 0) return this.call('POST', '/model/prefetch', { uri, sha256 });
    return this.call('POST', '/model/prefetch', { uri, sha256, waitSeconds }, this.timeoutMs + waitSeconds * 1000);
  }
  /** The agent's recent model downloads, newest first. */
  downloads(): Promise<{ downloads: ModelDownload[] }> {
    return this.call('GET', '/model/downloads');
  }
  smoke(prompt: string, maxTokens: number, timeoutMs: number): Promise<SmokeAnswer> {
    return this.call('POST', '/smoke', { prompt, max_tokens: maxTokens }, timeoutMs);
  }
  /** The agent's Prometheus text (GET /metrics). */
  async metrics(): Promise<string> {
    let res: Response | undefined;
    for (const token of this.tokens) {
      res = await this.send('GET', '/metrics', token, undefined, this.timeoutMs);
      if (res.status !== 401) break;
      await res.text();
    }
    const text = await res!.text();
    if (res!.status === 401) throw new AgentHttpError(401, `agent ${this.baseUrl} rejected the worker's token on GET /metrics: the node's control token must come from one of the worker's keys (DRYDOCK_AGENT_KEY; see docs/security.md)`);
    if (!res!.ok) throw new AgentHttpError(res!.status, `agent GET /metrics answered ${res!.status}: ${text.slice(0, 200)}`);
    return text;
  }
  /** Client inference traffic the agent answered since it started. */
  traffic(): Promise<TrafficCounts> {
    return this.call('GET', '/traffic');
  }
}

export interface ServedModel {
  id: string;
  uri: string;
  sha256: string;
}

export type ModelSwapState = { state: 'idle' } | { state: 'loading' | 'failed' | 'done'; uri: string; sha256: string; error?: string };

/** A model download on an agent: the agent's own type, as /health and /model/downloads answer it. */
export type ModelDownload = DownloadStatus;

export interface SmokeAnswer {
  model: { id: string; sha256: string };
  text: string;
  completionTokens: number;
  latencyMs: number;
}

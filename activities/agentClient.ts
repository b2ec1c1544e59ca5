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

export class AgentClient {
  constructor(readonly baseUrl: string, private readonly token: string, private readonly timeoutMs = 5000) {}

  private async call<T>(method: string, path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    const parsed = text ? (JSON.parse(text) as T & { error?: string }) : ({} as T & { error?: string });
    if (res.status === 401) throw new AgentHttpError(401, `agent ${this.baseUrl} rejected the token: DRYDOCK_AGENT_TOKEN on the worker must match the agents'`);
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

/** A model download on an agent (gpu-agent/models/progress.ts). */
export interface ModelDownload {
  uri: string;
  sha256: string;
  state: 'downloading' | 'verifying' | 'done' | 'failed';
  bytes: number;
  totalBytes: number | null;
  resumedFromBytes: number;
  bytesPerSecond: number;
  etaSeconds: number | null;
  requests: number;
  startedAt: string;
  finishedAt?: string;
  error?: string;
  status?: number;
}

export interface SmokeAnswer {
  model: { id: string; sha256: string };
  text: string;
  completionTokens: number;
  latencyMs: number;
}

import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_HEALTH_POLICY, loadPolicyFile, PolicyError, type HealthPolicy } from './policy.ts';
import type { KernelLogSource } from './gpu/xid.ts';
import { SHA256_RE } from './inference/modelFile.ts';
import { AuthConfigError } from './auth.ts';
import { loadSecuritySettings, SECURITY_OPTIONS, type SecuritySettings } from './authConfig.ts';
import { ModelError } from './models/errors.ts';
import { readHeadersFile } from './models/sources.ts';
import { modelSource, type ModelStoreOptions } from './models/store.ts';

export type GpuBackendChoice = 'auto' | 'nvidia' | 'simulated';
export type InferenceChoice = 'llama' | 'simulated';

/** The simulated inference backend's behaviour (gpu-agent/inference/simulated.ts). */
export interface SimInferenceConfig {
  /** Seconds a model swap (verify, load, smoke) takes. */
  swapSeconds: number;
  /** Milliseconds each generation takes, plus `tokenMs` per generated token. */
  generationMs: number;
  tokenMs: number;
  /** Models (sha256) whose load fails its smoke generation (422), like a broken file on llama.cpp. */
  failSha256: string[];
  /** Models (sha256) that load but generate text without the usual words, so a smoke check's `expect` fails. */
  badOutputSha256: string[];
  /**
   * Models (sha256) that load and answer short generations but fail (500, out of memory) any asking
   * for more than SIM_OOM_MAX_TOKENS: a short smoke check passes, longer client traffic fails.
   */
  oomSha256: string[];
  /** Seconds a remote model (s3://, https://) takes to "download" (local paths need none). */
  downloadSeconds: number;
}

/** Everything the agent can be told, with defaults in one place. */
export interface AgentConfig extends SecuritySettings {
  nodeId: string;
  pool: string;
  host: string;
  port: number;
  dataDir?: string;
  /** `auto`: nvidia when `nvidia-smi -L` lists GPUs, else simulated; an explicit `--gpus` means simulated. */
  gpuBackend: GpuBackendChoice;
  /** Simulated GPU count. */
  gpus: number;
  gpusExplicit: boolean;
  /** nvidia backend: GPUs the node must have (default: as many as the first probe finds). */
  expectedGpus?: number;
  nvidiaSmi: string;
  smiTimeoutMs: number;
  kernelLog: KernelLogSource;
  policy: HealthPolicy;
  policyFile?: string;
  /** Model to load at start (s3://, https://, http://, file:// or a path) and its sha256; the agent is not ready until it serves it. */
  model?: { uri: string; sha256: string };
  /** The node is for a serving pool: not ready while it serves no model (`--require-model`). */
  requireModel: boolean;
  /**
   * Where model files come from: `roots` (`--model-dir`, repeatable; without one, the start-up
   * model's folder), the cache in the data dir bounded by `cacheBytes` (`--model-cache-bytes`, 0: the
   * disk), `headersFile` (`--model-headers`) and `downloadBytesPerSecond` (`--model-download-rate`).
   */
  models: Omit<ModelStoreOptions, 'dataDir' | 'freeBytes'>;
  /** `llama`: node-llama-cpp; `simulated`: no model files or llama.cpp, for the fleet simulator and tests. */
  inference: InferenceChoice;
  simInference: SimInferenceConfig;
  slots: number;
  /** Context tokens per slot. */
  slotContext: number;
  queueSize: number;
  queueTimeoutMs: number;
  maxTokens: number;
  /** CPU threads for llama.cpp (0: its default, at most one per core when it runs on the CPU). */
  threads: number;
  tls?: { cert: Buffer; key: Buffer };
  bootDelaySeconds: number;
  simJobs: number;
  simJobSeconds: number;
}

export const AGENT_DEFAULTS = {
  host: '127.0.0.1',
  port: 9400,
  gpuBackend: 'auto',
  gpus: 8,
  nvidiaSmi: 'nvidia-smi',
  smiTimeoutMs: 5000,
  kernelLog: 'auto',
  slots: 4,
  slotContext: 2048,
  queueSize: 64,
  queueTimeoutMs: 30_000,
  maxTokens: 2048,
  threads: 0,
  bootDelaySeconds: 0,
  simJobs: 0,
  simJobSeconds: 5,
  inference: 'llama',
  simInference: { swapSeconds: 2, generationMs: 50, tokenMs: 0, downloadSeconds: 0 },
  modelCacheBytes: 0,
} as const;

export class AgentConfigError extends Error {}

function num(name: string, raw: string | undefined, fallback: number, min: number, integer = false): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    throw new AgentConfigError(`--${name}: expected ${integer ? 'an integer' : 'a number'} >= ${min}, got '${raw}'`);
  }
  return v;
}

function shaList(name: string, raw: string | undefined): string[] {
  if (!raw) return [];
  const list = raw.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);
  const bad = list.find((x) => !SHA256_RE.test(x));
  if (bad) throw new AgentConfigError(`--${name}: expected comma-separated sha256s (64 hex digits), got '${bad}'`);
  return list;
}

function readFileFlag(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new AgentConfigError(`--${flag}: cannot read ${path} (${(err as Error).message})`);
  }
}

/** Parses flags (which win) and DRYDOCK_AGENT_* env vars; tokens come only from env or the tokens file, never argv. */
export function loadAgentConfig(argv: string[], env: NodeJS.ProcessEnv): AgentConfig {
  const str = { type: 'string' } as const;
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'node-id': str, pool: str, host: str, bind: str, port: str, 'data-dir': str,
      'gpu-backend': str, gpus: str, 'expected-gpus': str, 'nvidia-smi': str, 'smi-timeout-ms': str, 'kernel-log': str,
      policy: str, model: str, 'model-sha256': str, slots: str, 'slot-context': str, 'queue-size': str,
      'queue-timeout-ms': str, 'max-tokens': str, threads: str, 'tls-cert': str, 'tls-key': str,
      'boot-delay': str, 'sim-jobs': str, 'sim-job-seconds': str,
      'model-dir': { type: 'string', multiple: true }, 'model-cache-bytes': str, 'model-headers': str, 'model-download-rate': str, 'sim-download-seconds': str,
      ...SECURITY_OPTIONS,
      'require-model': { type: 'boolean' },
      inference: str, 'sim-swap-seconds': str, 'sim-generation-ms': str, 'sim-token-ms': str, 'sim-fail-sha256': str, 'sim-bad-output-sha256': str, 'sim-oom-sha256': str,
    },
  });
  let security: SecuritySettings;
  try {
    security = loadSecuritySettings(v, env);
  } catch (err) {
    if (err instanceof AuthConfigError) throw new AgentConfigError(err.message);
    throw err;
  }
  const backend = v['gpu-backend'] ?? env.DRYDOCK_AGENT_GPU_BACKEND ?? AGENT_DEFAULTS.gpuBackend;
  if (backend !== 'auto' && backend !== 'nvidia' && backend !== 'simulated') {
    throw new AgentConfigError(`--gpu-backend: expected auto, nvidia or simulated, got '${backend}'`);
  }
  const port = num('port', v.port ?? env.DRYDOCK_AGENT_PORT, AGENT_DEFAULTS.port, 0, true);
  if (port > 65535) throw new AgentConfigError(`--port: expected 0..65535, got '${port}'`);

  const kernelLog = v['kernel-log'] ?? env.DRYDOCK_AGENT_KERNEL_LOG ?? AGENT_DEFAULTS.kernelLog;
  if (!['auto', 'kmsg', 'journal', 'none'].includes(kernelLog) && !/^file:.+/.test(kernelLog)) {
    throw new AgentConfigError(`--kernel-log: expected auto, kmsg, journal, none or file:PATH, got '${kernelLog}'`);
  }

  const policyFile = v.policy ?? env.DRYDOCK_AGENT_POLICY;
  let policy = DEFAULT_HEALTH_POLICY;
  if (policyFile) {
    try {
      policy = loadPolicyFile(policyFile);
    } catch (err) {
      if (err instanceof PolicyError) throw new AgentConfigError(err.message);
      throw err;
    }
  }

  const inference = v.inference ?? env.DRYDOCK_AGENT_INFERENCE ?? AGENT_DEFAULTS.inference;
  if (inference !== 'llama' && inference !== 'simulated') throw new AgentConfigError(`--inference: expected llama or simulated, got '${inference}'`);

  const dataDir = v['data-dir'] ?? env.DRYDOCK_AGENT_DATA_DIR;
  const modelUri = v.model ?? env.DRYDOCK_AGENT_MODEL;
  const modelSha = v['model-sha256'] ?? env.DRYDOCK_AGENT_MODEL_SHA256;
  const roots = v['model-dir'] ?? (env.DRYDOCK_AGENT_MODEL_DIRS ? env.DRYDOCK_AGENT_MODEL_DIRS.split(':').filter(Boolean) : []);
  // A root that does not exist (yet) holds nothing: loads from it get 404.
  for (const r of roots) if (r.includes('://') || r === '') throw new AgentConfigError(`--model-dir: expected a folder path, got '${r}'`);
  let model: AgentConfig['model'];
  if (modelUri || modelSha) {
    if (!modelUri) throw new AgentConfigError('--model: --model-sha256 was given without --model (s3://, https://, file:// or a path)');
    if (!modelSha || !SHA256_RE.test(modelSha)) throw new AgentConfigError('--model-sha256: expected the model file\'s sha256 as 64 hex digits');
    let src;
    try {
      src = modelSource(modelUri);
    } catch (err) {
      throw new AgentConfigError(`--model: ${(err as ModelError).message.replace(/^uri: /, '')}`);
    }
    if (src.scheme === 'file') {
      // Simulated inference reads no file: its models exist by name only.
      if (inference === 'llama' && !existsSync(src.path)) throw new AgentConfigError(`--model: no file at ${resolve(src.path)}`);
      // Without --model-dir the start-up model's folder is the root.
      if (roots.length === 0) roots.push(dirname(resolve(src.path)));
    } else if (!dataDir) throw new AgentConfigError(`--model: downloading ${modelUri} needs --data-dir (the model cache lives there)`);
    model = { uri: modelUri, sha256: modelSha.toLowerCase() };
  }
  const headersFile = v['model-headers'] ?? env.DRYDOCK_AGENT_MODEL_HEADERS;
  if (headersFile) {
    try {
      readHeadersFile(headersFile);
    } catch (err) {
      throw new AgentConfigError((err as Error).message);
    }
  }

  const cert = v['tls-cert'] ?? env.DRYDOCK_AGENT_TLS_CERT;
  const key = v['tls-key'] ?? env.DRYDOCK_AGENT_TLS_KEY;
  if (Boolean(cert) !== Boolean(key)) throw new AgentConfigError('--tls-cert/--tls-key: give both (PEM files) or neither');

  if (security.allowFaultInjection && backend === 'nvidia') {
    throw new AgentConfigError('--allow-fault-injection: fault injection exists only with the simulated GPU backend, not --gpu-backend nvidia');
  }

  const expected = v['expected-gpus'];
  return {
    ...security,
    nodeId: v['node-id'] ?? env.DRYDOCK_NODE_ID ?? 'local-node',
    pool: v.pool ?? env.DRYDOCK_POOL ?? 'default',
    host: v.bind ?? v.host ?? env.DRYDOCK_AGENT_HOST ?? AGENT_DEFAULTS.host,
    port,
    dataDir,
    gpuBackend: backend,
    gpus: num('gpus', v.gpus, AGENT_DEFAULTS.gpus, 1, true),
    gpusExplicit: v.gpus !== undefined,
    expectedGpus: expected === undefined ? undefined : num('expected-gpus', expected, 0, 0, true),
    nvidiaSmi: v['nvidia-smi'] ?? env.DRYDOCK_AGENT_NVIDIA_SMI ?? AGENT_DEFAULTS.nvidiaSmi,
    smiTimeoutMs: num('smi-timeout-ms', v['smi-timeout-ms'], AGENT_DEFAULTS.smiTimeoutMs, 100, true),
    kernelLog: kernelLog as KernelLogSource,
    policy,
    policyFile,
    model,
    models: {
      roots,
      cacheBytes: num('model-cache-bytes', v['model-cache-bytes'] ?? env.DRYDOCK_AGENT_MODEL_CACHE_BYTES, AGENT_DEFAULTS.modelCacheBytes, 0, true),
      headersFile,
      downloadBytesPerSecond: num('model-download-rate', v['model-download-rate'] ?? env.DRYDOCK_AGENT_MODEL_DOWNLOAD_RATE, 0, 0, true),
    },
    requireModel: v['require-model'] ?? /^(1|true|yes)$/i.test(env.DRYDOCK_AGENT_REQUIRE_MODEL ?? ''),
    slots: num('slots', v.slots, AGENT_DEFAULTS.slots, 1, true),
    slotContext: num('slot-context', v['slot-context'], AGENT_DEFAULTS.slotContext, 64, true),
    queueSize: num('queue-size', v['queue-size'], AGENT_DEFAULTS.queueSize, 0, true),
    queueTimeoutMs: num('queue-timeout-ms', v['queue-timeout-ms'], AGENT_DEFAULTS.queueTimeoutMs, 1, true),
    maxTokens: num('max-tokens', v['max-tokens'], AGENT_DEFAULTS.maxTokens, 1, true),
    threads: num('threads', v.threads ?? env.DRYDOCK_AGENT_THREADS, AGENT_DEFAULTS.threads, 0, true),
    tls: cert && key ? { cert: readFileFlag('tls-cert', cert), key: readFileFlag('tls-key', key) } : undefined,
    bootDelaySeconds: num('boot-delay', v['boot-delay'], AGENT_DEFAULTS.bootDelaySeconds, 0),
    simJobs: num('sim-jobs', v['sim-jobs'], AGENT_DEFAULTS.simJobs, 0, true),
    simJobSeconds: num('sim-job-seconds', v['sim-job-seconds'], AGENT_DEFAULTS.simJobSeconds, 0),
    inference,
    simInference: {
      swapSeconds: num('sim-swap-seconds', v['sim-swap-seconds'], AGENT_DEFAULTS.simInference.swapSeconds, 0),
      generationMs: num('sim-generation-ms', v['sim-generation-ms'], AGENT_DEFAULTS.simInference.generationMs, 0),
      tokenMs: num('sim-token-ms', v['sim-token-ms'], AGENT_DEFAULTS.simInference.tokenMs, 0),
      failSha256: shaList('sim-fail-sha256', v['sim-fail-sha256']),
      badOutputSha256: shaList('sim-bad-output-sha256', v['sim-bad-output-sha256']),
      oomSha256: shaList('sim-oom-sha256', v['sim-oom-sha256']),
      downloadSeconds: num('sim-download-seconds', v['sim-download-seconds'], AGENT_DEFAULTS.simInference.downloadSeconds, 0),
    },
  };
}

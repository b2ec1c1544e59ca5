import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import type { ChatHistoryItem, Llama, LlamaContext, LlamaContextSequence, LlamaModel } from 'node-llama-cpp';
import type { AgentConfig } from '../config.ts';
import { modelPathFromUri, preflightModel, sha256File } from './modelFile.ts';
import { SlotPool } from './slots.ts';

/** The agent settings inference runs with (documented on AgentConfig). */
export type InferenceOptions = Pick<AgentConfig, 'slots' | 'slotContext' | 'queueSize' | 'queueTimeoutMs' | 'maxTokens' | 'threads'>;

export interface ModelInfo {
  id: string;
  uri: string;
  path: string;
  sha256: string;
  sizeBytes: number;
  loadedAt: string;
  slots: number;
  contextPerSlot: number;
  gpuLayers: number;
}

export type SwapState = { state: 'idle' } | { state: 'loading'; uri: string; sha256: string; startedAt: string } | {
  state: 'failed' | 'done';
  uri: string;
  sha256: string;
  at: string;
  error?: string;
};

/** Why a model could not be swapped in; `status` is the HTTP answer. The old model keeps serving. */
export class ModelSwapError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export class NoModelError extends Error {}

interface Serving {
  info: ModelInfo;
  model: LlamaModel;
  context: LlamaContext;
  pool: SlotPool;
}

export interface GenerateRequest {
  kind: 'completion' | 'chat';
  prompt?: string;
  messages?: { role: 'system' | 'user' | 'assistant'; content: string }[];
  maxTokens: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
  signal: AbortSignal;
  onText?: (text: string) => void;
}

export interface GenerateResult {
  model: ModelInfo;
  text: string;
  finishReason: 'stop' | 'length' | 'cancelled';
  promptTokens: number;
  completionTokens: number;
}

/**
 * What the agent's HTTP API needs from an inference backend: node-llama-cpp (LlamaInference) or
 * the fleet simulator's stand-in (SimulatedInference), picked in createAgent from `config.inference`.
 */
export interface InferenceService {
  /** The serving model, if any. */
  readonly model: ModelInfo | undefined;
  readonly swap: SwapState;
  /** Called with each finished generation's token count (metrics). */
  onTokens: (n: number) => void;
  slots(): { busy: number; total: number; queued: number };
  /** Verifies, loads and swaps in a model; throws ModelSwapError (old model keeps serving). */
  load(uri: string, sha256: string): Promise<ModelInfo>;
  /** Throws NoModelError without a model, QueueFullError / QueueTimeoutError when no slot frees up. */
  generate(req: GenerateRequest): Promise<GenerateResult>;
  /** The llama.cpp instance (for the GPU cross-check); absent where no llama.cpp runs. */
  llama?(): Promise<Llama>;
  close(): Promise<void>;
}

/**
 * What every backend shares: the serving model and its slots, the swap state, and the guard that
 * refuses a second swap while one loads (409).
 */
export abstract class ModelServing<S extends { info: ModelInfo; pool: SlotPool }> {
  protected current?: S;
  swap: SwapState = { state: 'idle' };
  /** Called with each finished generation's token count (metrics). */
  onTokens: (n: number) => void = () => {};

  get model(): ModelInfo | undefined {
    return this.current?.info;
  }

  slots(): { busy: number; total: number; queued: number } {
    const p = this.current?.pool;
    return { busy: p?.busy ?? 0, total: p?.total ?? 0, queued: p?.queued ?? 0 };
  }

  /** Marks a swap to `uri` as loading; throws 409 while another one loads. */
  protected beginSwap(uri: string, sha256: string, startedAt = new Date()): void {
    if (this.swap.state === 'loading') throw new ModelSwapError(409, `a model swap to ${this.swap.uri} is already in progress`);
    this.swap = { state: 'loading', uri, sha256, startedAt: startedAt.toISOString() };
  }
}

/** One serving model at a time; a swap loads the next beside it and switches only once it works. */
export class LlamaInference extends ModelServing<Serving> implements InferenceService {
  private llamaP?: Promise<Llama>;

  constructor(readonly opts: InferenceOptions) {
    super();
  }

  /** The shared llama.cpp instance (`gpu: 'auto'`: CUDA, Vulkan or Metal when usable, else CPU). */
  llama(): Promise<Llama> {
    this.llamaP ??= this.getLlama();
    return this.llamaP;
  }

  // node-llama-cpp is imported on first use: GPU health works (and starts fast) without it.
  private nlc?: typeof import('node-llama-cpp');

  private async getLlama(): Promise<Llama> {
    this.nlc = await import('node-llama-cpp');
    const { getLlama, LlamaLogLevel } = this.nlc;
    const llama = await getLlama({
      gpu: 'auto',
      build: 'never',
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        // Kept so a failed load can say why (llama.cpp logs the reason, the exception only says "failed").
        this.recentLog.push(message.trim());
        if (this.recentLog.length > 20) this.recentLog.shift();
        if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) console.error(`llama.cpp: ${message.trim()}`);
      },
      ...(this.opts.threads > 0 ? { maxThreads: this.opts.threads } : {}),
    });
    // On CPU node-llama-cpp uses at least 4 threads; on fewer cores llama.cpp's threads then spin
    // against each other and a generation is ~40x slower (measured on 2 cores). Never more than the cores.
    if (this.opts.threads === 0 && llama.gpu === false) llama.maxThreads = Math.min(llama.maxThreads, availableParallelism());
    return llama;
  }

  private lib(): typeof import('node-llama-cpp') {
    if (!this.nlc) throw new Error('node-llama-cpp is not loaded yet');
    return this.nlc;
  }

  private recentLog: string[] = [];

  /** llama.cpp's own reason for the last failure, e.g. "missing tensor 'blk.1.ffn_up.weight'". */
  private async llamaSays(): Promise<string> {
    await new Promise((r) => setTimeout(r, 50)); // native log callbacks arrive after the rejection
    const reasons = [...new Set(this.recentLog.map((l) => /error loading model: (.*)$/.exec(l)?.[1]).filter((x): x is string => Boolean(x)))];
    const lines = reasons.length ? reasons : this.recentLog.filter((l) => /error|fail|missing|invalid/i.test(l)).slice(-2);
    this.recentLog = [];
    return lines.length ? ` (${lines.join('; ')})` : '';
  }

  /** Verifies, loads, smoke-tests and swaps in a model; on any failure the old model keeps serving. */
  async load(uri: string, sha256: string): Promise<ModelInfo> {
    this.beginSwap(uri, sha256);
    try {
      const next = await this.prepare(uri, sha256.toLowerCase());
      const old = this.current;
      this.current = next; // the switch: new requests go to `next` from here on
      this.swap = { state: 'done', uri, sha256, at: new Date().toISOString() };
      if (old) void old.pool.idle().then(() => old.model.dispose());
      return next.info;
    } catch (err) {
      const e = err instanceof ModelSwapError ? err : new ModelSwapError(422, (err as Error).message);
      this.swap = { state: 'failed', uri, sha256, at: new Date().toISOString(), error: e.message };
      throw e;
    }
  }

  private async prepare(uri: string, sha256: string): Promise<Serving> {
    let path: string;
    try {
      path = modelPathFromUri(uri);
    } catch (err) {
      throw new ModelSwapError(400, `uri: ${(err as Error).message}`);
    }
    let sizeBytes: number;
    try {
      sizeBytes = statSync(path).size;
    } catch {
      throw new ModelSwapError(400, `uri: no file at ${path}`);
    }
    const actual = await sha256File(path);
    if (actual !== sha256) throw new ModelSwapError(409, `sha256: ${path} has sha256 ${actual}, expected ${sha256}; refusing to load it`);
    try {
      await preflightModel(path);
    } catch (err) {
      throw new ModelSwapError(422, `model ${path}: ${(err as Error).message}`);
    }
    const llama = await this.llama();
    let model: LlamaModel;
    this.recentLog = [];
    try {
      model = await llama.loadModel({ modelPath: path, gpuLayers: 'auto' });
    } catch (err) {
      throw new ModelSwapError(422, `model ${path}: llama.cpp failed to load it: ${(err as Error).message}${await this.llamaSays()}`);
    }
    try {
      const contextPerSlot = Math.min(this.opts.slotContext, model.trainContextSize);
      const context = await model.createContext({
        sequences: this.opts.slots,
        contextSize: contextPerSlot * this.opts.slots,
        ...(this.opts.threads > 0 ? { threads: this.opts.threads } : {}),
      });
      const sequences = Array.from({ length: this.opts.slots }, () => context.getSequence());
      const serving: Serving = {
        info: {
          id: basename(path).replace(/\.gguf$/i, ''),
          uri,
          path,
          sha256,
          sizeBytes,
          loadedAt: new Date().toISOString(),
          slots: this.opts.slots,
          contextPerSlot,
          gpuLayers: model.gpuLayers,
        },
        model,
        context,
        pool: new SlotPool(sequences, this.opts.queueSize, this.opts.queueTimeoutMs),
      };
      await this.smoke(serving);
      return serving;
    } catch (err) {
      await model.dispose();
      throw new ModelSwapError(422, `model ${path}: smoke generation failed: ${(err as Error).message}`);
    }
  }

  private async smoke(s: Serving): Promise<void> {
    const seq = await s.pool.acquire();
    try {
      const c = new (this.lib().LlamaCompletion)({ contextSequence: seq, autoDisposeSequence: false });
      await c.generateCompletion('Hello', { maxTokens: 4, signal: AbortSignal.timeout(60_000) });
      c.dispose({ disposeSequence: false });
    } finally {
      await seq.clearHistory();
      s.pool.release(seq);
    }
  }

  /** Runs one generation in a slot of the serving model (queueing for one if all are busy). */
  async generate(req: GenerateRequest): Promise<GenerateResult> {
    const s = this.current;
    if (!s) throw new NoModelError('no model loaded: PUT /model {uri, sha256} first');
    const seq = await s.pool.acquire(req.signal);
    try {
      await seq.clearHistory();
      const before = seq.tokenMeter.getState();
      let generated = 0;
      const { text, stopReason } = await this.run(seq, req, (n) => (generated += n));
      // node-llama-cpp's onToken can report one token past maxTokens (a held-back partial character).
      generated = Math.min(generated, req.maxTokens);
      this.onTokens(generated);
      return {
        model: s.info,
        text,
        finishReason: stopReason === 'abort' ? 'cancelled' : stopReason === 'maxTokens' ? 'length' : 'stop',
        promptTokens: seq.tokenMeter.diff(before).usedInputTokens,
        completionTokens: generated,
      };
    } finally {
      s.pool.release(seq);
    }
  }

  private async run(seq: LlamaContextSequence, req: GenerateRequest, onTokens: (n: number) => void): Promise<{ text: string; stopReason: string }> {
    const common = {
      onToken: (tokens: unknown[]) => onTokens(tokens.length),
      maxTokens: req.maxTokens,
      temperature: req.temperature,
      topP: req.topP,
      seed: req.seed,
      signal: req.signal,
      stopOnAbortSignal: true,
      customStopTriggers: req.stop?.length ? req.stop : undefined,
      onTextChunk: req.onText,
    };
    if (req.kind === 'completion') {
      const c = new (this.lib().LlamaCompletion)({ contextSequence: seq, autoDisposeSequence: false });
      try {
        const r = await c.generateCompletionWithMeta(req.prompt ?? '', common);
        return { text: r.response, stopReason: r.metadata.stopReason };
      } finally {
        c.dispose({ disposeSequence: false });
      }
    }
    const chat = new (this.lib().LlamaChat)({ contextSequence: seq, autoDisposeSequence: false });
    try {
      const history: ChatHistoryItem[] = (req.messages ?? []).map((m) =>
        m.role === 'assistant' ? { type: 'model', response: [m.content] } : { type: m.role, text: m.content },
      );
      // The last user turn is the prompt; the model answers after it.
      history.push({ type: 'model', response: [] });
      const r = await chat.generateResponse(history, common);
      return { text: r.response, stopReason: r.metadata.stopReason };
    } finally {
      chat.dispose({ disposeSequence: false });
    }
  }

  async close(): Promise<void> {
    await this.current?.model.dispose();
    this.current = undefined;
  }
}

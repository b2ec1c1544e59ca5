import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import type { LlamaContextSequence } from 'node-llama-cpp';
import type { AgentConfig } from '../config.ts';
import { modelPathFromUri } from './modelFile.ts';
import { ModelServing, ModelSwapError, NoModelError, type GenerateRequest, type GenerateResult, type InferenceService, type ModelInfo } from './service.ts';
import { SlotPool } from './slots.ts';

export type SimulatedInferenceOptions = Pick<AgentConfig, 'slots' | 'slotContext' | 'queueSize' | 'queueTimeoutMs' | 'simInference'>;

/**
 * The sha256 a simulated model "file" has: derived from its path, so a rollout target can name a
 * model that exists nowhere and a wrong sha256 is still refused (409) as on a real agent.
 */
export function simulatedModelSha256(uri: string): string {
  return createHash('sha256').update(`drydock-sim-model:${modelPathFromUri(uri)}`).digest('hex');
}

/** One timed operation of the backend, for the fleet simulator's per-node records. */
export interface SimulatedTiming {
  kind: 'swap' | 'generation';
  /** The model swapped to, or the one that generated. */
  sha256: string;
  startedAt: number;
  ms: number;
  ok: boolean;
}

const GOOD_WORDS = ['the', 'fleet', 'is', 'ready', 'and', 'every', 'gpu', 'serves', 'tokens', 'from', 'the', 'dock'];
const BAD_WORDS = ['####', '�', 'zx', 'qq', '####', 'll'];
/** Tokens a generation produces when max_tokens does not cut it short. */
const NATURAL_TOKENS = 16;
const MAX_TIMINGS = 1000;
/** Longest generation (max_tokens) a model listed in `oomSha256` survives. */
export const SIM_OOM_MAX_TOKENS = 16;

/**
 * A stand-in for node-llama-cpp that loads no file: a swap takes `swapSeconds`, a generation
 * `generationMs` (+ `tokenMs` per token) and answers deterministic text that starts with
 * "hello from <model id>". Generations hold a slot (same queueing as the real backend) and run as
 * the agent's tracked work, so cordon / drain see them. Models listed in `failSha256` fail their
 * load's smoke generation (422); those in `badOutputSha256` load but answer garbage; those in
 * `oomSha256` fail generations longer than SIM_OOM_MAX_TOKENS.
 */
export class SimulatedInference extends ModelServing<{ info: ModelInfo; pool: SlotPool }> implements InferenceService {
  /** Recent swaps and generations with their durations (newest last). */
  readonly timings: SimulatedTiming[] = [];
  private closed = new AbortController();

  constructor(readonly opts: SimulatedInferenceOptions) {
    super();
  }

  async load(uri: string, sha256: string): Promise<ModelInfo> {
    const startedAt = Date.now();
    this.beginSwap(uri, sha256, new Date(startedAt));
    const want = sha256.toLowerCase();
    try {
      let path: string;
      try {
        path = modelPathFromUri(uri);
      } catch (err) {
        throw new ModelSwapError(400, `uri: ${(err as Error).message}`);
      }
      // Same checks, codes and messages as the real backend, minus the file.
      const actual = simulatedModelSha256(path);
      if (actual !== want) throw new ModelSwapError(409, `sha256: ${path} has sha256 ${actual}, expected ${want}; refusing to load it`);
      if (!(await this.sleep(this.opts.simInference.swapSeconds * 1000))) throw new ModelSwapError(503, 'the agent is shutting down');
      if (this.opts.simInference.failSha256.includes(want)) {
        throw new ModelSwapError(422, `model ${path}: smoke generation failed: simulated bad model`);
      }
      const info: ModelInfo = {
        id: basename(path).replace(/\.gguf$/i, ''),
        uri,
        path,
        sha256: want,
        sizeBytes: 0,
        loadedAt: new Date().toISOString(),
        slots: this.opts.slots,
        contextPerSlot: this.opts.slotContext,
        gpuLayers: 0,
      };
      // SlotPool only hands its items around, so placeholders stand in for context sequences.
      const seqs = Array.from({ length: this.opts.slots }, (_, i) => ({ slot: i }) as unknown as LlamaContextSequence);
      this.current = { info, pool: new SlotPool(seqs, this.opts.queueSize, this.opts.queueTimeoutMs) };
      this.swap = { state: 'done', uri, sha256, at: new Date().toISOString() };
      this.record({ kind: 'swap', sha256: want, startedAt, ms: Date.now() - startedAt, ok: true });
      return info;
    } catch (err) {
      const e = err instanceof ModelSwapError ? err : new ModelSwapError(422, (err as Error).message);
      this.swap = { state: 'failed', uri, sha256, at: new Date().toISOString(), error: e.message };
      this.record({ kind: 'swap', sha256: want, startedAt, ms: Date.now() - startedAt, ok: false });
      throw e;
    }
  }

  async generate(req: GenerateRequest): Promise<GenerateResult> {
    const s = this.current;
    if (!s) throw new NoModelError('no model loaded: PUT /model {uri, sha256} first');
    const seq = await s.pool.acquire(req.signal);
    const startedAt = Date.now();
    let ok = false;
    try {
      if (this.opts.simInference.oomSha256.includes(s.info.sha256) && req.maxTokens > SIM_OOM_MAX_TOKENS) {
        throw new Error(`out of memory generating ${req.maxTokens} tokens (simulated: this model fails above ${SIM_OOM_MAX_TOKENS})`);
      }
      const words = this.words(s.info, req);
      const limit = Math.min(req.maxTokens, NATURAL_TOKENS);
      const { generationMs, tokenMs } = this.opts.simInference;
      let text = '';
      let n = 0;
      let finishReason: GenerateResult['finishReason'] = limit < NATURAL_TOKENS ? 'length' : 'stop';
      if (!(await this.sleep(generationMs, req.signal))) finishReason = 'cancelled';
      while (finishReason !== 'cancelled' && n < limit) {
        if (tokenMs > 0 && !(await this.sleep(tokenMs, req.signal))) {
          finishReason = 'cancelled';
          break;
        }
        const piece = (n === 0 ? '' : ' ') + words[n];
        const stopAt = req.stop?.map((st) => (text + piece).indexOf(st)).filter((i) => i >= 0).sort((a, b) => a - b)[0];
        if (stopAt !== undefined) {
          const kept = (text + piece).slice(0, stopAt).slice(text.length);
          if (kept) req.onText?.(kept);
          text += kept;
          finishReason = 'stop';
          break;
        }
        text += piece;
        n++;
        req.onText?.(piece);
      }
      this.onTokens(n);
      ok = finishReason !== 'cancelled';
      const promptText = req.prompt ?? (req.messages ?? []).map((m) => m.content).join(' ');
      return { model: s.info, text, finishReason, promptTokens: Math.max(1, promptText.split(/\s+/).filter(Boolean).length), completionTokens: n };
    } finally {
      s.pool.release(seq);
      this.record({ kind: 'generation', sha256: s.info.sha256, startedAt, ms: Date.now() - startedAt, ok });
    }
  }

  /** Deterministic in (model, prompt): the same request to the same model answers the same text. */
  private words(info: ModelInfo, req: GenerateRequest): string[] {
    const bad = this.opts.simInference.badOutputSha256.includes(info.sha256);
    const vocab = bad ? BAD_WORDS : GOOD_WORDS;
    const seed = createHash('sha256').update(`${info.sha256}\n${req.prompt ?? JSON.stringify(req.messages)}`).digest();
    const out = bad ? [] : ['hello', 'from', info.id + ':'];
    for (let i = 0; out.length < NATURAL_TOKENS; i++) out.push(vocab[seed[i % seed.length] % vocab.length]);
    return out;
  }

  /** Resolves true after `ms`, or false as soon as `signal` (or close) aborts. */
  private sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted || this.closed.signal.aborted) return Promise.resolve(false);
    if (ms <= 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (v: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.closed.signal.removeEventListener('abort', onAbort);
        resolve(v);
      };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(true), ms);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.closed.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private record(t: SimulatedTiming): void {
    this.timings.push(t);
    if (this.timings.length > MAX_TIMINGS) this.timings.splice(0, this.timings.length - MAX_TIMINGS);
  }

  async close(): Promise<void> {
    this.closed.abort();
    this.current = undefined;
  }
}

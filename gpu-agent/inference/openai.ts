import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, sendJson } from '../http.ts';
import { CordonedError, type WorkTracker } from '../work.ts';
import { NoModelError, type GenerateRequest, type GenerateResult, type InferenceService } from './service.ts';
import { QueueFullError, QueueTimeoutError } from './slots.ts';

// Fields OpenAI clients commonly send; anything else is a 400 naming it. Sampling knobs we do not
// implement (penalties, logprobs) are accepted only at their neutral values.
const COMMON = ['model', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'stream', 'stream_options', 'stop', 'seed', 'n', 'user',
  'presence_penalty', 'frequency_penalty', 'logprobs'];

type Body = Record<string, unknown>;

function numberIn(b: Body, field: string, min: number, max: number, integer = false): number | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new HttpError(400, `${field}: expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
  return v;
}

function parseCommon(b: Body, allowed: string[], maxTokensCap: number): Omit<GenerateRequest, 'kind' | 'signal'> & { stream: boolean } {
  for (const k of Object.keys(b)) if (!allowed.includes(k)) throw new HttpError(400, `${k}: unsupported field (supported: ${allowed.join(', ')})`);
  if (b.n !== undefined && b.n !== 1) throw new HttpError(400, 'n: only 1 is supported');
  for (const f of ['presence_penalty', 'frequency_penalty']) if (b[f] !== undefined && b[f] !== 0) throw new HttpError(400, `${f}: only 0 is supported`);
  if (b.logprobs !== undefined && b.logprobs !== null && b.logprobs !== false) throw new HttpError(400, 'logprobs: not supported');
  if (b.stream !== undefined && typeof b.stream !== 'boolean') throw new HttpError(400, 'stream: expected true or false');
  if (b.model !== undefined && typeof b.model !== 'string') throw new HttpError(400, 'model: expected a string');
  let stop: string[] | undefined;
  if (typeof b.stop === 'string') stop = [b.stop];
  else if (Array.isArray(b.stop) && b.stop.every((s) => typeof s === 'string') && b.stop.length <= 4) stop = b.stop as string[];
  else if (b.stop !== undefined && b.stop !== null) throw new HttpError(400, 'stop: expected a string or up to 4 strings');
  const maxTokens = numberIn(b, 'max_tokens', 1, maxTokensCap, true) ?? numberIn(b, 'max_completion_tokens', 1, maxTokensCap, true) ?? Math.min(256, maxTokensCap);
  return {
    maxTokens,
    temperature: numberIn(b, 'temperature', 0, 2),
    topP: numberIn(b, 'top_p', 0, 1),
    seed: numberIn(b, 'seed', 0, 2 ** 32 - 1, true),
    stop,
    stream: b.stream === true,
  };
}

function parseMessages(b: Body): NonNullable<GenerateRequest['messages']> {
  if (!Array.isArray(b.messages) || b.messages.length === 0) throw new HttpError(400, 'messages: expected a non-empty list of {role, content}');
  return b.messages.map((m: unknown, i) => {
    const msg = m as Body;
    if (typeof msg !== 'object' || msg === null) throw new HttpError(400, `messages[${i}]: expected an object {role, content}`);
    if (msg.role !== 'system' && msg.role !== 'user' && msg.role !== 'assistant') {
      throw new HttpError(400, `messages[${i}].role: expected system, user or assistant`);
    }
    if (typeof msg.content !== 'string') throw new HttpError(400, `messages[${i}].content: expected a string`);
    return { role: msg.role, content: msg.content };
  });
}

export interface OpenAiDeps {
  inference: InferenceService;
  work: WorkTracker;
  maxTokens: number;
}

/** Runs one request as tracked work: cordon refuses it, a drain waits for it, a forced drain cancels it. */
async function generate(deps: OpenAiDeps, req: IncomingMessage, res: ServerResponse, gen: Omit<GenerateRequest, 'signal'>): Promise<GenerateResult> {
  const abort = new AbortController();
  let item;
  try {
    item = deps.work.begin('inference', () => abort.abort(new Error('cancelled by a forced drain')));
  } catch (err) {
    if (err instanceof CordonedError) throw new HttpError(503, `${err.message}; send it to another node`, { 'retry-after': '30' });
    throw err;
  }
  // A client that hangs up frees its slot.
  const onClose = () => {
    if (!res.writableFinished) abort.abort(new Error('client disconnected'));
  };
  res.on('close', onClose);
  try {
    const result = await deps.inference.generate({ ...gen, signal: abort.signal });
    if (result.finishReason === 'cancelled' && !res.headersSent) throw new HttpError(503, `generation ${String((abort.signal.reason as Error)?.message ?? 'cancelled')}`);
    return result;
  } catch (err) {
    if (err instanceof QueueFullError) throw new HttpError(503, err.message, { 'retry-after': '1' });
    if (err instanceof QueueTimeoutError) throw new HttpError(504, err.message);
    if (err instanceof NoModelError) throw new HttpError(503, err.message, { 'retry-after': '10' });
    if (abort.signal.aborted && !(err instanceof HttpError)) throw new HttpError(503, `request ${(abort.signal.reason as Error).message}`);
    throw err;
  } finally {
    res.off('close', onClose);
    item.done();
  }
}

const finish = (r: GenerateResult) => (r.finishReason === 'cancelled' ? 'stop' : r.finishReason);
const usage = (r: GenerateResult) => ({ prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens });

/** SSE: headers go out with the first chunk, so errors before any text still get a proper status. */
function sse(res: ServerResponse) {
  const start = () => {
    if (!res.headersSent) res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  };
  return {
    send(obj: unknown) {
      start();
      res.write(`data: ${JSON.stringify(obj)}\n\n`);
    },
    end() {
      start();
      res.end('data: [DONE]\n\n');
    },
  };
}

export async function completions(deps: OpenAiDeps, req: IncomingMessage, res: ServerResponse, b: Body): Promise<void> {
  const opts = parseCommon(b, [...COMMON, 'prompt', 'echo', 'suffix'], deps.maxTokens);
  if (typeof b.prompt !== 'string' && !(Array.isArray(b.prompt) && b.prompt.length === 1 && typeof b.prompt[0] === 'string')) {
    throw new HttpError(400, 'prompt: expected a string');
  }
  if (b.echo !== undefined && b.echo !== false) throw new HttpError(400, 'echo: not supported');
  if (b.suffix !== undefined && b.suffix !== null) throw new HttpError(400, 'suffix: not supported');
  const prompt = typeof b.prompt === 'string' ? b.prompt : (b.prompt as string[])[0];
  const id = `cmpl-${randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const model = deps.inference.model?.id ?? 'none';
  if (!opts.stream) {
    const r = await generate(deps, req, res, { ...opts, kind: 'completion', prompt });
    return sendJson(res, 200, {
      id, object: 'text_completion', created, model: r.model.id,
      choices: [{ index: 0, text: r.text, finish_reason: finish(r), logprobs: null }],
      usage: usage(r),
    });
  }
  const out = sse(res);
  const chunk = (text: string, finishReason: string | null) => ({ id, object: 'text_completion', created, model, choices: [{ index: 0, text, finish_reason: finishReason, logprobs: null }] });
  const r = await generate(deps, req, res, { ...opts, kind: 'completion', prompt, onText: (t) => out.send(chunk(t, null)) });
  out.send({ ...chunk('', finish(r)), usage: usage(r) });
  out.end();
}

export async function chatCompletions(deps: OpenAiDeps, req: IncomingMessage, res: ServerResponse, b: Body): Promise<void> {
  const opts = parseCommon(b, [...COMMON, 'messages'], deps.maxTokens);
  const messages = parseMessages(b);
  const id = `chatcmpl-${randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const model = deps.inference.model?.id ?? 'none';
  if (!opts.stream) {
    const r = await generate(deps, req, res, { ...opts, kind: 'chat', messages });
    return sendJson(res, 200, {
      id, object: 'chat.completion', created, model: r.model.id,
      choices: [{ index: 0, message: { role: 'assistant', content: r.text }, finish_reason: finish(r), logprobs: null }],
      usage: usage(r),
    });
  }
  const out = sse(res);
  const chunk = (delta: object, finishReason: string | null) => ({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finishReason }] });
  let first = true;
  const r = await generate(deps, req, res, {
    ...opts,
    kind: 'chat',
    messages,
    onText: (t) => {
      out.send(chunk(first ? { role: 'assistant', content: t } : { content: t }, null));
      first = false;
    },
  });
  out.send({ ...chunk(first ? { role: 'assistant', content: '' } : {}, finish(r)), usage: usage(r) });
  out.end();
}

export function models(deps: OpenAiDeps): unknown {
  const m = deps.inference.model;
  return {
    object: 'list',
    data: m ? [{ id: m.id, object: 'model', created: Math.floor(Date.parse(m.loadedAt) / 1000), owned_by: 'drydock', sha256: m.sha256 }] : [],
  };
}

/**
 * `POST /smoke {prompt, max_tokens}`: one greedy generation for the control plane's rollout
 * checks. Unlike client traffic it runs while the node is cordoned or drained (that is when a
 * rollout tests a freshly swapped model) and is not counted as work a drain waits for.
 */
export async function smoke(deps: OpenAiDeps, b: Body): Promise<unknown> {
  for (const k of Object.keys(b)) if (k !== 'prompt' && k !== 'max_tokens') throw new HttpError(400, `${k}: unsupported field (supported: prompt, max_tokens)`);
  if (typeof b.prompt !== 'string' || b.prompt === '' || b.prompt.length > 2000) throw new HttpError(400, 'prompt: expected a string of 1-2000 characters');
  const maxTokens = numberIn(b, 'max_tokens', 1, Math.min(256, deps.maxTokens), true) ?? 8;
  const started = performance.now();
  try {
    const r = await deps.inference.generate({ kind: 'completion', prompt: b.prompt, maxTokens, temperature: 0, signal: AbortSignal.timeout(120_000) });
    return { model: { id: r.model.id, sha256: r.model.sha256 }, text: r.text, completionTokens: r.completionTokens, latencyMs: Math.round(performance.now() - started) };
  } catch (err) {
    if (err instanceof QueueFullError) throw new HttpError(503, err.message, { 'retry-after': '1' });
    if (err instanceof QueueTimeoutError) throw new HttpError(504, err.message);
    if (err instanceof NoModelError) throw new HttpError(409, `no model is loaded: ${err.message}`);
    throw err;
  }
}

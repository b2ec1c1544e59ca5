import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { loadAgentConfig } from '../../gpu-agent/config.ts';
import { preflightModel } from '../../gpu-agent/inference/modelFile.ts';
import { createAgent, type Agent } from '../../gpu-agent/server.ts';
import { writeTinyLlama } from '../../scripts/lib/tinyLlama.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { readSse } from './sse.ts';

const TOKEN = 'inference-test-token-0123456789';
const LONG = 100_000; // tokens: a generation that runs until a test cancels it

describe('gpu-agent inference (node-llama-cpp on a tiny GGUF)', () => {
  let dir: string;
  let agent: Agent;
  let base: string;
  let modelA: { path: string; sha256: string };
  let modelB: { path: string; sha256: string };

  const call = (method: string, path: string, body?: unknown, signal?: AbortSignal) =>
    fetch(`${base}${path}`, {
      method,
      signal,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const json = async (method: string, path: string, body?: unknown) => (await call(method, path, body)).json();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agent-inference-'));
    modelA = writeTinyLlama(join(dir, 'tiny-a.gguf'), { seed: 1, name: 'tiny-a' });
    modelB = writeTinyLlama(join(dir, 'tiny-b.gguf'), { seed: 2, name: 'tiny-b' });
    // llama.cpp aborts the process on some malformed files: read the fixture in a child first.
    await preflightModel(modelA.path);
    const config = loadAgentConfig(
      ['--gpus', '1', '--slots', '2', '--queue-size', '1', '--queue-timeout-ms', '3000', '--threads', '1', '--slot-context', '2048',
        '--max-tokens', String(LONG), '--model', modelA.path, '--model-sha256', modelA.sha256],
      { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN },
    );
    agent = createAgent(config);
    await new Promise<void>((r) => agent.server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(agent.server.address() as AddressInfo).port}`;
    await agent.started;
  });
  after(async () => {
    await agent?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the model whose sha256 it verified, and reports it in /health and /v1/models', async () => {
    const h = await json('GET', '/health');
    assert.equal(h.model.sha256, modelA.sha256);
    assert.equal(h.slots.total, 2);
    assert.equal((await call('GET', '/ready')).status, 200);
    const m = await json('GET', '/v1/models');
    assert.deepEqual(m.data.map((x: { id: string; sha256: string }) => [x.id, x.sha256]), [['tiny-a', modelA.sha256]]);
  });

  it('answers completions and chat completions, plain and streamed', async () => {
    const c = await json('POST', '/v1/completions', { prompt: 'the gpu node is', max_tokens: 12 });
    assert.equal(c.object, 'text_completion');
    assert.equal(c.choices[0].finish_reason, 'length');
    // Tokens that end inside a UTF-8 character are held back and not returned, so at most 12 count.
    assert.ok(c.usage.completion_tokens > 0 && c.usage.completion_tokens <= 12);
    assert.ok(c.usage.prompt_tokens > 0);
    assert.ok(c.choices[0].text.length > 0);

    const chat = await json('POST', '/v1/chat/completions', { messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'say hello' }], max_tokens: 8 });
    assert.equal(chat.object, 'chat.completion');
    assert.equal(chat.choices[0].message.role, 'assistant');
    assert.equal(typeof chat.choices[0].message.content, 'string');
    assert.ok(chat.usage.completion_tokens > 0 && chat.usage.completion_tokens <= 8);

    const res = await call('POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 10, stream: true });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const { events, sawDone } = await readSse(res).done;
    assert.ok(sawDone);
    const chunks = events as { object: string; choices: { delta: { content?: string; role?: string }; finish_reason: string | null }[] }[];
    assert.ok(chunks.every((e) => e.object === 'chat.completion.chunk'));
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(chunks.at(-1)?.choices[0].finish_reason, 'length');

    const s = await readSse(await call('POST', '/v1/completions', { prompt: 'fleet', max_tokens: 5, stream: true })).done;
    assert.ok(s.sawDone);
    assert.ok((s.events.at(-1) as { usage: { completion_tokens: number } }).usage.completion_tokens <= 5);
  });

  it('rejects bad requests with 400 naming the field, in the OpenAI error shape', async () => {
    for (const [path, body, field] of [
      ['/v1/chat/completions', { messages: [] }, 'messages'],
      ['/v1/chat/completions', { messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role'],
      ['/v1/completions', { prompt: 'x', max_tokens: 0 }, 'max_tokens'],
      ['/v1/completions', { prompt: 'x', temprature: 1 }, 'temprature'],
      ['/v1/completions', { max_tokens: 3 }, 'prompt'],
    ] as const) {
      const res = await call('POST', path, body);
      assert.equal(res.status, 400, `${path} ${JSON.stringify(body)}`);
      assert.match((await res.json()).error.message, new RegExp(`^${field.replace(/[[\]]/g, '\\$&')}:`));
    }
  });

  it('queues for a slot (503 when the queue is full, 504 after the wait timeout); cordon refuses; drain waits, then force cancels', async () => {
    const a = readSse(await call('POST', '/v1/completions', { prompt: 'a', max_tokens: LONG, stream: true }));
    const b = readSse(await call('POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'b' }], max_tokens: LONG, stream: true }));
    await Promise.all([a.first, b.first]);
    assert.equal((await json('GET', '/health')).slots.busy, 2);

    const queued = call('POST', '/v1/completions', { prompt: 'c', max_tokens: 4 });
    await waitFor(async () => (await json('GET', '/health')).slots.queued === 1, 10_000, 'a queued request', 50);
    const full = await call('POST', '/v1/completions', { prompt: 'd', max_tokens: 4 });
    assert.equal(full.status, 503);
    assert.match((await full.json()).error.message, /queue size 1/);
    const timedOut = await queued;
    assert.equal(timedOut.status, 504);
    assert.match((await timedOut.json()).error.message, /no slot became free within 3000 ms/);
    const metrics = await (await call('GET', '/metrics')).text();
    assert.match(metrics, /^drydock_slots_busy 2$/m);
    assert.match(metrics, /drydock_request_duration_seconds_count\{route="POST \/v1\/completions",status="504"\} 1/);

    await call('POST', '/cordon', {});
    const refused = await call('POST', '/v1/completions', { prompt: 'e', max_tokens: 4 });
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '30');
    assert.equal((await call('GET', '/ready')).status, 503);

    const draining = await json('POST', '/drain', { timeoutSeconds: 0.3 });
    assert.equal(draining.state, 'draining');
    assert.equal(draining.inFlight, 2);
    assert.deepEqual(draining.byKind, { inference: 2 });
    await sleep(400);
    assert.equal((await json('GET', '/drain')).state, 'timed-out');
    const forced = await json('POST', '/drain', { force: true });
    assert.equal(forced.state, 'drained');
    assert.equal(forced.cancelled, 2);
    const [ra, rb] = await Promise.all([a.done, b.done]); // both streams end instead of running on
    assert.ok(ra.events.length > 0 && rb.events.length > 0);
    await call('POST', '/uncordon', {});
    assert.equal((await json('GET', '/health')).slots.busy, 0);
  });

  it('a drain waits for a running generation, which finishes normally', async () => {
    const s = readSse(await call('POST', '/v1/completions', { prompt: 'drain me', max_tokens: 2000, stream: true }));
    await s.first;
    const d = await json('POST', '/drain', { timeoutSeconds: 120 });
    assert.equal(d.state, 'draining');
    assert.equal(d.inFlight, 1);
    const end = await s.done;
    assert.ok(end.sawDone);
    const last = end.events.at(-1) as { usage: { completion_tokens: number }; choices: { finish_reason: string }[] };
    assert.equal(last.choices[0].finish_reason, 'length');
    assert.ok(last.usage.completion_tokens > 1900 && last.usage.completion_tokens <= 2000, JSON.stringify(last));
    assert.equal((await json('GET', '/drain')).state, 'drained');
    await call('POST', '/uncordon', {});
  });

  it('model swap verifies the file, keeps serving the old model on any failure, and swaps atomically', async () => {
    const wrongSha = await call('PUT', '/model', { uri: modelB.path, sha256: modelA.sha256 });
    assert.equal(wrongSha.status, 409);
    assert.match((await wrongSha.json()).error, new RegExp(`^sha256: .* has sha256 ${modelB.sha256}, expected ${modelA.sha256}`));
    const missing = await call('PUT', '/model', { uri: `file://${join(dir, 'nope.gguf')}`, sha256: modelA.sha256 });
    assert.equal(missing.status, 404);
    assert.match((await missing.json()).error, /^uri: no file at/);
    assert.equal((await call('PUT', '/model', { uri: modelB.path })).status, 400);

    // A file that makes llama.cpp abort: only the preflight child dies.
    const dup = writeTinyLlama(join(dir, 'dup.gguf'), { duplicateToken: true });
    const aborted = await call('PUT', '/model', { uri: dup.path, sha256: dup.sha256 });
    assert.equal(aborted.status, 422);
    assert.match((await aborted.json()).error, /cannot read the file \(process killed by SIGABRT\).*still serving/);
    // A file that reads fine but whose weights are incomplete fails the real load.
    const partial = writeTinyLlama(join(dir, 'partial.gguf'), { omitTensors: ['blk.1.ffn_up.weight'] });
    const bad = await call('PUT', '/model', { uri: partial.path, sha256: partial.sha256 });
    assert.equal(bad.status, 422);
    assert.match((await bad.json()).error, /failed to load it.*(missing tensor 'blk\.1\.ffn_up\.weight'|tensor 'blk\.1\.ffn_up\.weight' not found)/);
    const h = await json('GET', '/health');
    assert.equal(h.model.sha256, modelA.sha256);
    assert.equal(h.modelSwap.state, 'failed');
    assert.equal((await call('POST', '/v1/completions', { prompt: 'still here', max_tokens: 2 })).status, 200);

    // A generation running on the old model keeps going on it while the new one takes over.
    const hangUp = new AbortController();
    const running = readSse(await call('POST', '/v1/completions', { prompt: 'old model', max_tokens: LONG, stream: true }, hangUp.signal));
    await running.first;
    const swapped = await call('PUT', '/model', { uri: `file://${modelB.path}`, sha256: modelB.sha256.toUpperCase() });
    assert.equal(swapped.status, 200);
    assert.equal((await swapped.json()).model.sha256, modelB.sha256);
    assert.equal((await json('GET', '/health')).drain.inFlight, 1); // still generating on the old model
    hangUp.abort();
    await running.done.catch(() => undefined);
    await waitFor(async () => (await json('GET', '/health')).drain.inFlight === 0, 10_000, 'the hung-up request to free its slot', 50);
    assert.equal((await json('GET', '/health')).model.sha256, modelB.sha256);
    const next = await json('POST', '/v1/completions', { prompt: 'new model', max_tokens: 3 });
    assert.equal(next.model, 'tiny-b');
  });
});

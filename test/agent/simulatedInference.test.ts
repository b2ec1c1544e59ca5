import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AgentConfigError, loadAgentConfig } from '../../gpu-agent/config.ts';
import { SimulatedInference, simulatedModelSha256 } from '../../gpu-agent/inference/simulated.ts';
import { createAgent, type Agent } from '../../gpu-agent/server.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { FleetSimulator, type NodeTimings, type SimInferenceOptions } from '../../scripts/fleet-sim/simulator.ts';

const TOKEN = 'sim-inference-test-token-0123456789';
const SWAP_S = 0.4;
const GEN_MS = 300;
const A = '/models/sim-a.gguf';
const B = '/models/sim-b.gguf';
const BAD = '/models/sim-bad.gguf';
const GARBLED = '/models/sim-garbled.gguf';

describe('gpu-agent with simulated inference (no model files, no llama.cpp)', () => {
  let agent: Agent;
  let base: string;
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const json = async (method: string, path: string, body?: unknown) => (await call(method, path, body)).json();
  const put = (uri: string, sha256 = simulatedModelSha256(uri)) => call('PUT', '/model', { uri, sha256 });

  before(async () => {
    // The start-up model names a file that does not exist: simulated inference reads none.
    const config = loadAgentConfig(
      ['--gpus', '1', '--slots', '2', '--inference', 'simulated', '--model', A, '--model-sha256', simulatedModelSha256(A),
        '--sim-swap-seconds', String(SWAP_S), '--sim-generation-ms', String(GEN_MS),
        '--sim-fail-sha256', simulatedModelSha256(BAD), '--sim-bad-output-sha256', simulatedModelSha256(GARBLED)],
      { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN },
    );
    agent = createAgent(config);
    await new Promise<void>((r) => agent.server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(agent.server.address() as AddressInfo).port}`;
    await agent.started;
  });
  after(() => agent?.close());

  it('is off by default and checks its flags', () => {
    assert.equal(loadAgentConfig([], { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN }).inference, 'llama');
    assert.throws(() => loadAgentConfig(['--inference', 'vllm'], { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN }), AgentConfigError);
    assert.throws(() => loadAgentConfig(['--sim-fail-sha256', 'abc'], { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN }), /--sim-fail-sha256/);
    // The real backend still wants the file.
    assert.throws(() => loadAgentConfig(['--model', A, '--model-sha256', simulatedModelSha256(A)], { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN }), /no file at/);
  });

  it('loads the start-up model and is ready', async () => {
    assert.ok(agent.inference instanceof SimulatedInference);
    const h = await json('GET', '/health');
    assert.equal(h.model.sha256, simulatedModelSha256(A));
    assert.equal(h.model.id, 'sim-a');
    assert.equal(h.slots.total, 2);
    assert.equal(h.llama, null);
    assert.equal((await call('GET', '/ready')).status, 200);
  });

  it('answers completions with deterministic text after the configured time', async () => {
    const t0 = performance.now();
    const c = await json('POST', '/v1/completions', { prompt: 'Say hello.', max_tokens: 8, temperature: 0 });
    const ms = performance.now() - t0;
    assert.ok(ms >= GEN_MS - 5 && ms < GEN_MS + 500, `took ${ms} ms`);
    assert.equal(c.model, 'sim-a');
    assert.match(c.choices[0].text, /^hello from sim-a:/);
    assert.equal(c.usage.completion_tokens, 8);
    assert.equal(c.choices[0].finish_reason, 'length');
    const again = await json('POST', '/v1/completions', { prompt: 'Say hello.', max_tokens: 8, temperature: 0 });
    assert.equal(again.choices[0].text, c.choices[0].text);
    const chat = await json('POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
    assert.match(chat.choices[0].message.content, /^hello from/);
  });

  it('a drain waits for an in-flight generation', async () => {
    const running = json('POST', '/v1/completions', { prompt: 'drain me', max_tokens: 4 });
    await waitFor(async () => (await json('GET', '/health')).slots.busy === 1, 5_000, 'the generation to hold a slot');
    assert.equal((await json('POST', '/cordon', {})).inFlight, 1);
    const d = await json('POST', '/drain', { timeoutSeconds: 30 });
    assert.equal(d.state, 'draining');
    assert.equal(d.inFlight, 1);
    assert.equal((await running).choices[0].finish_reason, 'length');
    assert.equal((await json('GET', '/drain')).state, 'drained');
    assert.equal((await call('POST', '/v1/completions', { prompt: 'refused', max_tokens: 1 })).status, 503);
    await call('POST', '/uncordon', {});
  });

  it('refuses a wrong sha256 with 409 and a model whose smoke fails with 422, keeping the old model', async () => {
    const wrong = await put(B, simulatedModelSha256(A));
    assert.equal(wrong.status, 409);
    assert.match((await wrong.json()).error, new RegExp(`^sha256: .* has sha256 ${simulatedModelSha256(B)}, expected ${simulatedModelSha256(A)}.*still serving`));
    // A remote model "downloads" first, then is refused the same way; an unknown scheme is bad input.
    assert.equal((await call('PUT', '/model', { uri: 's3://bucket/m.gguf', sha256: simulatedModelSha256(A) })).status, 409);
    const ftp = await call('PUT', '/model', { uri: 'ftp://host/m.gguf', sha256: simulatedModelSha256(A) });
    assert.equal(ftp.status, 400);
    assert.match((await ftp.json()).error, /^uri: unsupported scheme 'ftp:'/);
    const bad = await put(BAD);
    assert.equal(bad.status, 422);
    assert.match((await bad.json()).error, /smoke generation failed/);
    const h = await json('GET', '/health');
    assert.equal(h.model.sha256, simulatedModelSha256(A));
    assert.equal(h.modelSwap.state, 'failed');
  });

  it('PUT /model swaps after the configured time; a second swap meanwhile is refused', async () => {
    const t0 = performance.now();
    const swapping = put(B);
    await waitFor(async () => (await json('GET', '/model')).swap.state === 'loading', 5_000, 'the swap to start loading');
    assert.equal((await put(A)).status, 409);
    const res = await swapping;
    const ms = performance.now() - t0;
    assert.equal(res.status, 200);
    assert.equal((await res.json()).model.sha256, simulatedModelSha256(B));
    assert.ok(ms >= SWAP_S * 1000 - 5 && ms < SWAP_S * 1000 + 500, `took ${ms} ms`);
    const c = await json('POST', '/v1/completions', { prompt: 'Say hello.', max_tokens: 8 });
    assert.match(c.choices[0].text, /^hello from sim-b:/);
    const timings = (agent.inference as SimulatedInference).timings;
    const swap = timings.filter((t) => t.kind === 'swap' && t.ok).at(-1)!;
    assert.equal(swap.sha256, simulatedModelSha256(B));
    assert.ok(Math.abs(swap.ms - SWAP_S * 1000) < 100, `recorded ${swap.ms} ms`);
  });

  it('a bad-output model loads but answers text without "hello" (so a smoke check fails)', async () => {
    assert.equal((await put(GARBLED)).status, 200);
    const c = await json('POST', '/v1/completions', { prompt: 'Say hello.', max_tokens: 8 });
    assert.doesNotMatch(c.choices[0].text, /hello/);
    assert.equal((await put(A)).status, 200);
  });
});

describe('fleet simulator with simulated inference', () => {
  let sim: FleetSimulator;
  let dir: string;
  const opts = { swapSeconds: [0.2, 0.4], drainSeconds: [0.2, 0.5], generationMs: 50, seed: 7, initialModel: A } satisfies SimInferenceOptions;
  const agentCall = async (url: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-sim-inference-'));
    sim = new FleetSimulator({ token: TOKEN, dataDir: dir, inference: opts });
  });
  after(async () => {
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('draws per-node durations from the seed, drains take them, and records drain, swap and generation times', async () => {
    const nodes = await Promise.all([0, 1, 2].map((i) => sim.provision('p', 'sim', `k${i}`, 0)));
    const before = sim.timings('p');
    assert.equal(before.length, 3);
    // Same seed and ids: same draws in another simulator.
    const other = new FleetSimulator({ token: TOKEN, dataDir: dir, inference: opts });
    try {
      await Promise.all([2, 1, 0].map((i) => other.provision('p', 'sim', `k${i}`, 0)));
      const byId = new Map(other.timings('p').map((t) => [t.nodeId, t.durations]));
      for (const t of before) assert.deepEqual(byId.get(t.nodeId), t.durations);
    } finally {
      await other.close();
    }
    assert.ok(new Set(before.map((t) => t.durations.drainSeconds)).size > 1, 'jitter gives nodes different durations');

    const n = nodes[0];
    const url = n.agentUrl!;
    const d = sim.timings('p').find((t) => t.nodeId === n.id)!.durations;
    await waitFor(async () => (await agentCall(url, 'GET', '/ready')).status === 200, 2_000, 'the simulated node to be ready', 10);
    assert.equal((await agentCall(url, 'GET', '/drain')).body.inFlight, 1, 'a serving node has client traffic');
    await agentCall(url, 'POST', '/cordon', {});
    const t0 = performance.now();
    await agentCall(url, 'POST', '/drain', { timeoutSeconds: 30 });
    await waitFor(async () => (await agentCall(url, 'GET', '/drain')).body.state === 'drained', 2_000, 'the simulated node to drain', 10);
    const drainMs = performance.now() - t0;
    assert.ok(Math.abs(drainMs - d.drainSeconds * 1000) < 150, `drain took ${drainMs} ms, drawn ${d.drainSeconds} s`);
    assert.equal((await agentCall(url, 'PUT', '/model', { uri: B, sha256: simulatedModelSha256(B) })).status, 200);
    await agentCall(url, 'POST', '/uncordon', {});
    assert.equal((await agentCall(url, 'GET', '/drain')).body.inFlight, 1, 'traffic is back after uncordon');
    assert.equal((await agentCall(url, 'POST', '/v1/completions', { prompt: 'Say hello.', max_tokens: 8 })).status, 200);

    const t = sim.timings('p').find((x) => x.nodeId === n.id)!;
    assert.equal(t.drains.length, 1);
    assert.ok(Math.abs(t.drains[0].ms - d.drainSeconds * 1000) < 50);
    const swap = t.swaps.find((s) => s.sha256 === simulatedModelSha256(B))!;
    assert.ok(Math.abs(swap.ms - d.swapSeconds * 1000) < 50, `swap ${swap.ms} ms, drawn ${d.swapSeconds} s`);
    assert.equal(t.generations.length, 1);
    assert.ok(t.generations[0].ms >= 50 && t.generations[0].ms < 150);

    // The control API serves the same records.
    const { url: ctl, server } = await sim.serve(0);
    try {
      const res = await fetch(`${ctl}/timings?pool=p`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(((await res.json()) as NodeTimings[]).length, 3);
    } finally {
      server.close();
    }
  });
});

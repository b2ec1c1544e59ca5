import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AddressInfo } from 'node:net';
import { loadAgentConfig, AgentConfigError } from '../../gpu-agent/config.ts';
import { createAgent, type Agent } from '../../gpu-agent/server.ts';

const TOKEN = 'test-token-0123456789abcdef';

describe('gpu-agent HTTP API', () => {
  let agent: Agent;
  let base: string;
  const call = (method: string, path: string, opts: { token?: string | null; body?: string } = {}) =>
    fetch(`${base}${path}`, {
      method,
      headers: {
        ...(opts.token === null ? {} : { authorization: `Bearer ${opts.token ?? TOKEN}` }),
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: opts.body,
    });

  before(async () => {
    const config = loadAgentConfig(['--node-id', 'n1', '--pool', 'p', '--port', '0', '--gpus', '4', '--allow-fault-injection'], { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN });
    agent = createAgent(config);
    await new Promise<void>((r) => agent.server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(agent.server.address() as AddressInfo).port}`;
  });
  after(() => agent.close());

  it('answers 401 without a token and with a wrong one, but serves liveness without auth', async () => {
    assert.equal((await call('GET', '/health', { token: null })).status, 401);
    const wrong = await call('GET', '/health', { token: 'not-the-token-at-all' });
    assert.equal(wrong.status, 401);
    assert.match((await wrong.json()).error, /bearer token/);
    assert.equal((await call('POST', '/cordon', { token: null, body: '{}' })).status, 401);
    assert.equal((await call('GET', '/livez', { token: null })).status, 200);
  });

  it('answers 400 naming the problem for malformed JSON, non-objects and unknown fields', async () => {
    const bad = await call('POST', '/drain', { body: '{"timeoutSeconds": 5,' });
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error, /^body: invalid JSON/);
    const arr = await call('POST', '/drain', { body: '[1]' });
    assert.equal(arr.status, 400);
    const unknown = await call('POST', '/drain', { body: '{"timeout": 5}' });
    assert.equal(unknown.status, 400);
    assert.match((await unknown.json()).error, /^timeout: unknown field/);
    const neg = await call('POST', '/drain', { body: '{"timeoutSeconds": -1}' });
    assert.equal(neg.status, 400);
    assert.match((await neg.json()).error, /^timeoutSeconds:/);
  });

  it('reports simulated GPUs as healthy, and a fatal XID on one GPU as unhealthy', async () => {
    const h = await (await call('GET', '/health')).json();
    assert.equal(h.status, 'healthy');
    assert.equal(h.gpus.length, 4);
    assert.ok(h.policyVersion);
    const injected = await call('POST', '/sim/faults', { body: JSON.stringify({ kind: 'xid', gpu: 2, code: 79 }) });
    assert.equal(injected.status, 200);
    const sick = await injected.json();
    assert.equal(sick.status, 'unhealthy');
    assert.equal(sick.gpus[2].status, 'unhealthy');
    assert.equal(sick.gpus[0].status, 'healthy');
    assert.match(sick.reasons.join(), /gpu 2: xid 79/);
    assert.equal((await call('GET', '/ready')).status, 503);
    assert.equal((await call('POST', '/sim/faults', { body: JSON.stringify({ kind: 'xid', gpu: 9, code: 79 }) })).status, 400);
    await call('POST', '/sim/faults/clear', { body: '{}' });
    assert.equal((await (await call('GET', '/health')).json()).status, 'healthy');
  });

  it('cordon fails readiness and refuses new work with 503 and Retry-After; uncordon restores both', async () => {
    assert.equal((await call('GET', '/ready')).status, 200);
    await call('POST', '/cordon', { body: '{}' });
    assert.equal((await call('GET', '/ready')).status, 503);
    const job = await call('POST', '/jobs', { body: '{"seconds": 1}' });
    assert.equal(job.status, 503);
    assert.equal(job.headers.get('retry-after'), '30');
    await call('POST', '/uncordon', { body: '{}' });
    assert.equal((await call('GET', '/ready')).status, 200);
  });

  it('drains in-flight work; draining again is idempotent and keeps the first deadline', async () => {
    assert.equal((await call('POST', '/jobs', { body: '{"seconds": 0.6}' })).status, 202);
    const first = await (await call('POST', '/drain', { body: '{"timeoutSeconds": 30}' })).json();
    assert.equal(first.state, 'draining');
    assert.equal(first.inFlight, 1);
    const again = await (await call('POST', '/drain', { body: '{"timeoutSeconds": 999}' })).json();
    assert.equal(again.deadline, first.deadline);
    // Long-poll until the job ends (the drain's own wait, not a fixed sleep); the first deadline still holds.
    const settled = await (await call('POST', '/drain', { body: '{"waitSeconds": 10}' })).json();
    assert.equal(settled.state, 'drained');
    assert.equal(settled.deadline, first.deadline);
    const done = await (await call('GET', '/drain')).json();
    assert.equal(done.state, 'drained');
    const third = await call('POST', '/drain', { body: '{}' });
    assert.equal(third.status, 200);
    assert.equal((await third.json()).state, 'drained');
    await call('POST', '/uncordon', { body: '{}' });
  });

  it('a drain past its deadline reports timed-out, and force cancels the remaining work', async () => {
    await call('POST', '/jobs', { body: '{"seconds": 60}' });
    await call('POST', '/drain', { body: '{"timeoutSeconds": 0}' });
    const late = await (await call('GET', '/drain')).json();
    assert.equal(late.state, 'timed-out');
    assert.equal(late.inFlight, 1);
    const forced = await (await call('POST', '/drain', { body: '{"force": true}' })).json();
    assert.equal(forced.state, 'drained');
    assert.equal(forced.cancelled, 1);
    await call('POST', '/uncordon', { body: '{}' });
  });

  it('a drain with waitSeconds answers the moment the last work ends, or with the status so far when the wait runs out', async () => {
    await call('POST', '/jobs', { body: '{"seconds": 2}' });
    const t0 = Date.now();
    const waited = await (await call('POST', '/drain', { body: '{"timeoutSeconds": 30, "waitSeconds": 0.3}' })).json();
    assert.equal(waited.state, 'draining', 'the job is still running when the wait runs out');
    assert.equal(waited.inFlight, 1);
    assert.ok(Date.now() - t0 >= 250, 'the agent held the answer for waitSeconds');
    const settled = await (await call('POST', '/drain', { body: '{"timeoutSeconds": 30, "waitSeconds": 10}' })).json();
    const ms = Date.now() - t0;
    assert.equal(settled.state, 'drained');
    assert.ok(ms >= 1900 && ms < 5000, `answered when the 2 s job ended, not after the 10 s wait (${ms} ms)`);
    const tooLong = await call('POST', '/drain', { body: '{"waitSeconds": 31}' });
    assert.equal(tooLong.status, 400);
    assert.match((await tooLong.json()).error, /^waitSeconds: at most 30/);
    await call('POST', '/uncordon', { body: '{}' });
  });

  it('without a model, inference answers 503 naming the fix, /v1/models is empty and /health says model: null', async () => {
    const res = await call('POST', '/v1/completions', { body: '{"prompt": "hi"}' });
    assert.equal(res.status, 503);
    assert.match((await res.json()).error.message, /no model loaded: PUT \/model/);
    assert.deepEqual((await (await call('GET', '/v1/models')).json()).data, []);
    const h = await (await call('GET', '/health')).json();
    assert.equal(h.model, null);
    assert.ok(h.agentVersion);
    assert.equal((await call('PUT', '/model', { body: '{"uri": "/x.gguf", "sha256": "nothex"}' })).status, 400);
  });

  it('refuses to start without a token, or with bad flags, naming what to fix', () => {
    assert.throws(() => loadAgentConfig([], {}), (e: Error) => e instanceof AgentConfigError && /DRYDOCK_AGENT_CONTROL_TOKEN/.test(e.message));
    assert.throws(() => loadAgentConfig(['--port', 'abc'], { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN }), /--port/);
    assert.throws(() => loadAgentConfig(['--gpu-backend', 'tpu'], { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN }), /--gpu-backend/);
  });
});

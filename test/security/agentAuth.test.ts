import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AgentClient } from '../../activities/agentClient.ts';
import { deriveNodeToken, parseAgentKeys, PerNodeAuth } from '../../activities/agentAuth.ts';
import { loadAgentConfig, AgentConfigError } from '../../gpu-agent/config.ts';
import { createAgent, type Agent } from '../../gpu-agent/server.ts';
import { simulatedModelSha256 } from '../../gpu-agent/inference/simulated.ts';
import type { AuditRecord } from '../../gpu-agent/audit.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';

const KEY = 'k1:' + 'a-test-master-key-of-at-least-32-bytes';
const auth = new PerNodeAuth(parseAgentKeys(KEY, 'test key'));
const APP = 'app-token-0123456789abcdef';
const OPS = 'ops-token-0123456789abcdef';
const MODEL = '/models/sim.gguf';

/** Every control route, with a body the route accepts. */
const CONTROL: Array<[string, string, unknown?]> = [
  ['GET', '/health'], ['GET', '/ready'], ['GET', '/policy'], ['GET', '/drain'], ['GET', '/traffic'], ['GET', '/model'], ['GET', '/metrics'],
  ['POST', '/jobs', { seconds: 0 }], ['POST', '/cordon', {}], ['POST', '/uncordon', {}], ['POST', '/drain', { timeoutSeconds: 5 }],
  ['PUT', '/model', { uri: MODEL, sha256: simulatedModelSha256(MODEL) }], ['POST', '/smoke', { prompt: 'hi', max_tokens: 2 }],
  ['POST', '/sim/faults', { kind: 'xid', gpu: 0, code: 79 }], ['POST', '/sim/faults/clear', {}],
];
const INFERENCE: Array<[string, string, unknown?]> = [
  ['POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }],
  ['POST', '/v1/completions', { prompt: 'hi', max_tokens: 2 }],
  ['GET', '/v1/models'],
];

interface Started {
  agent: Agent;
  base: string;
  call(method: string, path: string, token: string | null, body?: unknown, headers?: Record<string, string>): Promise<Response>;
}

async function start(node: string, env: NodeJS.ProcessEnv, extra: string[] = []): Promise<Started> {
  const args = ['--node-id', node, '--pool', 'p', '--port', '0', '--gpus', '2', '--inference', 'simulated', '--sim-swap-seconds', '0', '--sim-generation-ms', '1',
    '--model', MODEL, '--model-sha256', simulatedModelSha256(MODEL), ...extra];
  const agent = createAgent(loadAgentConfig(args, env));
  await new Promise<void>((r) => agent.server.listen(0, '127.0.0.1', r));
  await agent.started;
  const base = `http://127.0.0.1:${(agent.server.address() as AddressInfo).port}`;
  return {
    agent,
    base,
    call: (method, path, token, body, headers = {}) =>
      fetch(`${base}${path}`, {
        method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
  };
}

describe('agent roles: inference and control tokens', () => {
  let dir: string;
  let tokensFile: string;
  let a: Started;
  let b: Started;
  const tokenA = deriveNodeToken(auth.keys[0], 'p', 'node-a');
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agent-auth-'));
    tokensFile = join(dir, 'tokens');
    writeFileSync(tokensFile, `# apps\ninference ${APP} shop\ncontrol ${OPS} alice\n`);
    a = await start('node-a', { DRYDOCK_AGENT_CONTROL_TOKEN: tokenA }, ['--tokens-file', tokensFile, '--allow-fault-injection', '--data-dir', join(dir, 'a')]);
    b = await start('node-b', { DRYDOCK_AGENT_CONTROL_TOKEN: deriveNodeToken(auth.keys[0], 'p', 'node-b') }, ['--allow-fault-injection']);
  });
  after(async () => {
    await a?.agent.close();
    await b?.agent.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an inference token gets 200 on inference and 403 naming the control role on every control endpoint', async () => {
    for (const [m, p, body] of INFERENCE) assert.equal((await a.call(m, p, APP, body)).status, 200, `${m} ${p}`);
    for (const [m, p, body] of CONTROL) {
      const res = await a.call(m, p, APP, body);
      assert.equal(res.status, 403, `${m} ${p}`);
      assert.match(((await res.json()) as { error: string }).error, /needs a control token; this is an inference token/);
    }
  });

  it('a control token opens every control endpoint and gets 403 naming the inference role on inference', async () => {
    for (const [m, p, body] of CONTROL) assert.ok([200, 202].includes((await a.call(m, p, tokenA, body)).status), `${m} ${p}`);
    await a.call('POST', '/uncordon', tokenA, {});
    for (const [m, p, body] of INFERENCE) {
      const res = await a.call(m, p, tokenA, body);
      assert.equal(res.status, 403, `${m} ${p}`);
      assert.match(JSON.stringify(await res.json()), /needs an inference token; this is a control token/);
    }
  });

  it("node A's control token is refused (401) by node B; B's own is not", async () => {
    assert.equal((await b.call('GET', '/health', tokenA)).status, 401);
    assert.equal((await b.call('POST', '/cordon', tokenA, {})).status, 401);
    assert.equal((await new AgentClient(b.base, auth.tokensFor('p', 'node-b')).health()).nodeId, 'node-b');
    await assert.rejects(new AgentClient(b.base, tokenA).health(), /rejected the worker's token/);
  });

  it('fault injection exists only with --allow-fault-injection on simulated GPUs', async () => {
    const c = await start('node-c', { DRYDOCK_AGENT_CONTROL_TOKEN: OPS });
    try {
      assert.equal((await c.call('POST', '/sim/faults', OPS, { kind: 'xid', gpu: 0, code: 79 })).status, 404);
      assert.equal((await c.call('POST', '/sim/faults/clear', OPS, {})).status, 404);
    } finally {
      await c.agent.close();
    }
    assert.throws(() => loadAgentConfig(['--gpu-backend', 'nvidia', '--allow-fault-injection'], { DRYDOCK_AGENT_CONTROL_TOKEN: OPS }), /--allow-fault-injection: .*simulated GPU backend/);
  });

  it('the tokens file is re-read on SIGHUP (reload) and on change; a malformed file keeps the tokens read before', async () => {
    const NEW = 'new-app-token-0123456789';
    assert.equal((await a.call('GET', '/v1/models', NEW)).status, 401);
    writeFileSync(tokensFile, `inference ${NEW} shop-v2\ncontrol ${OPS} alice\n`);
    assert.ok(a.agent.guard.tokens.reload());
    assert.equal((await a.call('GET', '/v1/models', NEW)).status, 200);
    assert.equal((await a.call('GET', '/v1/models', APP)).status, 401, 'the rotated-out token is refused at once');
    writeFileSync(tokensFile, 'inference\n');
    assert.equal(a.agent.guard.tokens.reload(), false);
    assert.equal((await a.call('GET', '/v1/models', NEW)).status, 200, 'a bad file does not lock callers out');
    // A change alone (no signal) is picked up too.
    writeFileSync(tokensFile, `inference ${APP} shop\ncontrol ${OPS} alice\n`);
    await waitFor(async () => (await a.call('GET', '/v1/models', APP)).status === 200, 10_000, 'the changed tokens file to be read');
  });

  it('/metrics needs a control token unless --metrics-public', async () => {
    assert.equal((await a.call('GET', '/metrics', null)).status, 401);
    const m = await start('node-m', { DRYDOCK_AGENT_CONTROL_TOKEN: OPS }, ['--metrics-public']);
    try {
      assert.equal((await m.call('GET', '/metrics', null)).status, 200);
      assert.equal((await m.call('GET', '/health', null)).status, 401);
    } finally {
      await m.agent.close();
    }
  });

  it('audits each control action as a JSON line with role, caller, workflow id and result; denied ones too; no token in it', async () => {
    const wf = 'replace/p/node-a';
    await a.call('POST', '/cordon', tokenA, {}, { 'x-drydock-workflow-id': wf });
    await a.call('POST', '/drain', tokenA, { timeoutSeconds: 5, force: true }, { 'x-drydock-workflow-id': wf });
    await a.call('PUT', '/model', OPS, { uri: `https://user:pw@models.example/m.gguf?X-Amz-Signature=abc`, sha256: 'a'.repeat(64) });
    await a.call('POST', '/uncordon', APP, {});
    const file = join(dir, 'a', 'audit.log');
    const text = readFileSync(file, 'utf8');
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
    const cordon = lines.find((l) => l.action === 'cordon' && l.workflowId === wf)!;
    assert.deepEqual([cordon.role, cordon.caller, cordon.result.status, cordon.result.outcome, cordon.address], ['control', 'node-control-1', 200, 'cordoned', '127.0.0.1']);
    assert.ok(Date.parse(cordon.time) > 0);
    const drain = lines.find((l) => l.action === 'drain' && l.workflowId === wf)!;
    assert.deepEqual(drain.args, { timeoutSeconds: 5, force: true });
    const swap = [...lines].reverse().find((l) => l.action === 'model-swap')!;
    assert.equal(swap.caller, 'alice');
    assert.equal(swap.args.uri, 'https://models.example/m.gguf?<redacted>', 'user info and signed query are not kept');
    const denied = [...lines].reverse().find((l) => l.action === 'uncordon')!;
    assert.deepEqual([denied.role, denied.caller, denied.result.status], ['inference', 'shop', 403]);
    for (const secret of [tokenA, OPS, APP, 'pw', 'X-Amz-Signature']) assert.ok(!text.includes(secret), `the audit log holds no ${secret}`);
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  it('rate limit per token and a cap on concurrent control requests answer 429 with Retry-After', async () => {
    const r = await start('node-r', { DRYDOCK_AGENT_CONTROL_TOKEN: OPS }, ['--rate-limit', '1', '--rate-burst', '3', '--max-control-concurrency', '1']);
    try {
      const codes = [];
      for (let i = 0; i < 4; i++) codes.push((await r.call('GET', '/drain', OPS)).status);
      assert.deepEqual(codes, [200, 200, 200, 429]);
      const limited = await r.call('GET', '/drain', OPS);
      assert.equal(limited.headers.get('retry-after'), '1');
      assert.match(((await limited.json()) as { error: string }).error, /rate limit/);
    } finally {
      await r.agent.close();
    }
    const c = await start('node-q', { DRYDOCK_AGENT_CONTROL_TOKEN: OPS }, ['--max-control-concurrency', '1']);
    try {
      await c.call('POST', '/jobs', OPS, { seconds: 30 });
      const long = c.call('POST', '/drain', OPS, { timeoutSeconds: 30, waitSeconds: 2 }); // holds the one slot for 2 s
      await waitFor(() => c.agent.guard.limits.controlInFlight === 1, 5000, 'the long poll to take the slot');
      const busy = await c.call('GET', '/health', OPS);
      assert.equal(busy.status, 429);
      assert.equal(busy.headers.get('retry-after'), '1');
      assert.equal((await long).status, 200);
      await waitFor(() => c.agent.guard.limits.controlInFlight === 0, 5000, 'the slot to be given back');
      assert.equal((await c.call('GET', '/health', OPS)).status, 200);
    } finally {
      await c.agent.close();
    }
  });

  it('rotates the audit log by size, keeping a bounded number of files', async () => {
    const d = join(dir, 'rot');
    const r = await start('node-rot', { DRYDOCK_AGENT_CONTROL_TOKEN: OPS }, ['--data-dir', d, '--audit-max-bytes', '2048', '--rate-limit', '0']);
    try {
      for (let i = 0; i < 80; i++) await r.call('POST', '/uncordon', OPS, {});
      assert.ok(existsSync(join(d, 'audit.log.1')) && existsSync(join(d, 'audit.log.3')) && !existsSync(join(d, 'audit.log.4')));
      assert.ok(statSync(join(d, 'audit.log')).size <= 2048);
    } finally {
      await r.agent.close();
    }
  });
});

describe('key rotation: the first key signs, every key verifies', () => {
  const oldKey = `old:${'o'.repeat(40)}`;
  const newKey = `new:${'n'.repeat(40)}`;
  const during = new PerNodeAuth(parseAgentKeys(`${newKey},${oldKey}`, 'DRYDOCK_AGENT_KEY'));
  const afterRotation = new PerNodeAuth(parseAgentKeys(newKey, 'DRYDOCK_AGENT_KEY'));
  const before_ = new PerNodeAuth(parseAgentKeys(oldKey, 'DRYDOCK_AGENT_KEY'));
  let made: Started[] = [];
  after(async () => Promise.all(made.map((s) => s.agent.close())));

  it('a node made before the rotation works during the window (the old key verifies) and not after it', async () => {
    const old = await start('n-old', { DRYDOCK_AGENT_CONTROL_TOKEN: before_.tokensFor('p', 'n-old').join(',') });
    made.push(old);
    assert.equal((await new AgentClient(old.base, during.tokensFor('p', 'n-old')).health()).nodeId, 'n-old', 'during the window');
    await assert.rejects(new AgentClient(old.base, afterRotation.tokensFor('p', 'n-old')).health(), /rejected/, 'after the window');
  });

  it('a node made during the window holds both tokens: workers on either side of the rotation reach it', async () => {
    const mid = await start('n-mid', { DRYDOCK_AGENT_CONTROL_TOKEN: during.tokensFor('p', 'n-mid').join(',') });
    made.push(mid);
    for (const w of [before_, during, afterRotation]) assert.equal((await new AgentClient(mid.base, w.tokensFor('p', 'n-mid')).health()).nodeId, 'n-mid');
    assert.match(during.tokensFor('p', 'n-mid')[0], /^ddn1\.new\./, 'the new key signs first');
  });
});

describe('bad security settings stop the start with exit 2, naming the setting', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'auth-bad-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const run = (script: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> => {
    const { NODE_TEST_CONTEXT: _, DRYDOCK_AGENT_TOKEN: _t, DRYDOCK_AGENT_KEY: _k, ...base } = process.env;
    return new Promise((resolve) =>
      execFile(process.execPath, ['--import', 'tsx', join(REPO_ROOT, script), ...args], { cwd: REPO_ROOT, timeout: 60_000, env: { ...base, TEMPORAL_ADDRESS: '127.0.0.1:1', ...env } }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr })),
    );
  };

  it('agent: a malformed tokens file, an unknown role, an empty control token, an unknown --auth', async () => {
    const file = (name: string, text: string) => (writeFileSync(join(dir, name), text), join(dir, name));
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [['--tokens-file', file('malformed', `inference ${APP} shop extra-field\n`)], {}, /--tokens-file .*malformed: line 1: expected '<role> <token> \[<name>\]'/],
      [['--tokens-file', file('role', `admin ${OPS}\n`)], {}, /--tokens-file .*role: line 1: unknown role 'admin' \(expected inference or control\)/],
      [['--tokens-file', file('short', 'control short\n')], {}, /line 1: a token must be at least 16 characters/],
      [[], { DRYDOCK_AGENT_CONTROL_TOKEN: '' }, /DRYDOCK_AGENT_CONTROL_TOKEN: is set but empty/],
      [[], {}, /DRYDOCK_AGENT_CONTROL_TOKEN: set it to this node's control token/],
      [[], { DRYDOCK_AGENT_TOKEN: OPS }, /DRYDOCK_AGENT_TOKEN: a shared token is only accepted with --auth shared-token/],
      [['--auth', 'root'], { DRYDOCK_AGENT_CONTROL_TOKEN: OPS }, /--auth: expected per-node or shared-token, got 'root'/],
    ];
    const results = await Promise.all(cases.map(([args, env]) => run('gpu-agent/main.ts', ['--gpus', '1', ...args], env)));
    results.forEach((r, i) => {
      assert.equal(r.code, 2, r.output);
      assert.match(r.output, cases[i][2]);
    });
    assert.throws(() => loadAgentConfig(['--rate-limit', 'fast'], { DRYDOCK_AGENT_CONTROL_TOKEN: OPS }), (e: Error) => e instanceof AgentConfigError && /^--rate-limit:/.test(e.message));
  });

  it('worker: an empty key, a key shorter than 32 bytes, an unknown DRYDOCK_AGENT_AUTH, a shared token without the flag', async () => {
    const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
      [{ DRYDOCK_AGENT_KEY: '' }, /DRYDOCK_AGENT_KEY: no key found \(it is empty\)/],
      [{ DRYDOCK_AGENT_KEY: 'k1:too-short' }, /DRYDOCK_AGENT_KEY \(key 1\): the key is 9 bytes, shorter than 32/],
      [{ DRYDOCK_AGENT_KEY_FILE: join(dir, 'missing.keys') }, /DRYDOCK_AGENT_KEY_FILE .*cannot read the key file/],
      [{ DRYDOCK_AGENT_AUTH: 'none', DRYDOCK_AGENT_KEY: KEY }, /DRYDOCK_AGENT_AUTH: expected per-node or shared-token, got 'none'/],
      [{ DRYDOCK_AGENT_TOKEN: OPS }, /DRYDOCK_AGENT_KEY: set DRYDOCK_AGENT_KEY or DRYDOCK_AGENT_KEY_FILE.*DRYDOCK_AGENT_AUTH=shared-token/],
    ];
    const results = await Promise.all(cases.map(([env]) => run('workers/control.ts', [], { DRYDOCK_POOLS_FILE: join(dir, 'none.yaml'), ...env })));
    results.forEach((r, i) => {
      assert.equal(r.code, 2, r.output);
      assert.match(r.output, cases[i][1]);
    });
  });
});

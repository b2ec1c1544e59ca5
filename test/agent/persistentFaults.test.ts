import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadAgentConfig } from '../../gpu-agent/config.ts';
import { SIMULATED_FAULTS_FILE } from '../../gpu-agent/gpu/simulated.ts';
import { createAgent, type Agent } from '../../gpu-agent/server.ts';

const TOKEN = 'test-token-persistent-faults';

/** A simulated agent on `dataDir` (or none); restarting it on the same dir is what a node's reboot does to its agent. */
async function start(dataDir?: string): Promise<{ agent: Agent; call: (method: string, path: string, body?: unknown) => Promise<{ status: number; json: Record<string, any> }> }> { // eslint-disable-line @typescript-eslint/no-explicit-any -- test reads the agent's JSON
  const args = ['--node-id', 'pf', '--pool', 'p', '--port', '0', '--gpus', '2', '--allow-fault-injection', ...(dataDir ? ['--data-dir', dataDir] : [])];
  const agent = createAgent(loadAgentConfig(args, { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN }));
  await new Promise<void>((r) => agent.server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(agent.server.address() as AddressInfo).port}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any -- as above
  };
  return { agent, call };
}

describe('gpu-agent: persistent simulated faults survive a restart (a reboot), the others do not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drydock-faults-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps faults injected with persistent: true in the data dir and applies them again at start; clear removes them too', async () => {
    let { agent, call } = await start(dir);
    assert.equal((await call('POST', '/sim/faults', { kind: 'xid', gpu: 1, code: 79, persistent: true })).status, 200);
    assert.equal((await call('POST', '/sim/faults', { kind: 'missing', gpu: 0, persistent: true })).status, 200);
    const hot = await call('POST', '/sim/faults', { kind: 'temperature', gpu: 1, celsius: 97 });
    assert.equal(hot.json.gpus.find((g: { index: number }) => g.index === 1).temperatureC, 97);
    assert.ok(existsSync(join(dir, SIMULATED_FAULTS_FILE)));
    await agent.close();

    ({ agent, call } = await start(dir));
    const back = (await call('GET', '/health')).json;
    assert.equal(back.status, 'unhealthy');
    assert.deepEqual(back.recentXids.map((x: { code: number; gpuIndex: number }) => [x.code, x.gpuIndex]), [[79, 1]], 'the persistent XID is back, once');
    assert.deepEqual(back.gpus.map((g: { index: number }) => g.index), [1], 'the persistent missing GPU is still missing');
    assert.equal(back.gpus[0].temperatureC, 41, 'the non-persistent temperature fault is gone');

    assert.equal((await call('POST', '/sim/faults/clear', {})).json.status, 'healthy');
    assert.equal(existsSync(join(dir, SIMULATED_FAULTS_FILE)), false);
    await agent.close();
    ({ agent, call } = await start(dir));
    assert.equal((await call('GET', '/health')).json.status, 'healthy', 'cleared faults stay cleared after a restart');
    await agent.close();
  });

  it('rejects persistent without a data dir, and a persistent that is not a boolean, naming the field', async () => {
    const { agent, call } = await start();
    try {
      const noDir = await call('POST', '/sim/faults', { kind: 'xid', gpu: 0, code: 79, persistent: true });
      assert.equal(noDir.status, 400);
      assert.match(noDir.json.error, /^persistent: needs the agent to run with --data-dir/);
      const notBool = await call('POST', '/sim/faults', { kind: 'xid', gpu: 0, code: 79, persistent: 'yes' });
      assert.equal(notBool.status, 400);
      assert.match(notBool.json.error, /^persistent: expected true or false/);
      assert.equal((await call('GET', '/health')).json.status, 'healthy', 'a rejected fault was not applied');
    } finally {
      await agent.close();
    }
  });
});

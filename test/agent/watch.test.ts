import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadAgentConfig } from '../../gpu-agent/config.ts';
import { createAgent, type Agent } from '../../gpu-agent/server.ts';
import type { WatchAnswer } from '../../gpu-agent/watch.ts';

const TOKEN = 'test-token-0123456789abcdef';

describe('gpu-agent health watch (GET /health/watch)', () => {
  let dir: string;
  let log: string;
  let agent: Agent;
  let base: string;
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` }, body: body === undefined ? undefined : JSON.stringify(body) });
  const watch = async (query: string): Promise<WatchAnswer> => {
    const res = await call('GET', `/health/watch?${query}`);
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as WatchAnswer;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'drydock-watch-'));
    log = join(dir, 'kern.log');
    writeFileSync(log, '');
    agent = createAgent(loadAgentConfig(['--node-id', 'w1', '--pool', 'p', '--gpus', '2', '--kernel-log', `file:${log}`], { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN, DRYDOCK_AGENT_ALLOW_FAULT_INJECTION: '1' }));
    await new Promise<void>((r) => agent.server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(agent.server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await agent.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers at once with the current revision, and after waitSeconds with changed: false when nothing happened', async () => {
    const first = await watch('since=0&waitSeconds=0');
    assert.equal(first.changed, true);
    assert.equal(first.status, 'healthy');
    assert.ok(first.revision >= 1);
    const t = Date.now();
    const idle = await watch(`since=${first.revision}&waitSeconds=1&epoch=${first.epoch}`);
    assert.equal(idle.changed, false);
    assert.equal(idle.revision, first.revision);
    assert.ok(Date.now() - t >= 900, 'waited for waitSeconds');
    // Another epoch (the agent restarted since the caller's revision) answers at once.
    const other = await watch(`since=${first.revision}&waitSeconds=20&epoch=older`);
    assert.equal(other.changed, true);
  });

  it('a kernel-log XID reaches a waiting watch within 100 ms', async () => {
    const now = await watch('since=0&waitSeconds=0');
    const waiting = watch(`since=${now.revision}&waitSeconds=20`);
    await new Promise((r) => setTimeout(r, 300)); // the request is parked at the agent
    const t = performance.now();
    // Simulated GPU 1 sits at PCI 00000000:28:00.0.
    appendFileSync(log, '[ 77.7] NVRM: Xid (PCI:0000:28:00): 79, pid=9, name=x, GPU has fallen off the bus.\n');
    const got = await waiting;
    const ms = performance.now() - t;
    assert.equal(got.changed, true);
    assert.equal(got.status, 'unhealthy');
    assert.ok(got.revision > now.revision);
    assert.match(got.reasons.join(), /xid 79 \(fatal\)/);
    assert.ok(ms < 100, `the XID took ${ms.toFixed(1)} ms to reach the watch`);
  });

  it('answers on a cordon and on clearing faults, and a missed change is seen by the next call', async () => {
    const now = await watch('since=0&waitSeconds=0');
    const waiting = watch(`since=${now.revision}&waitSeconds=20`);
    await call('POST', '/cordon', {});
    const cordoned = await waiting;
    assert.equal(cordoned.drain.state, 'cordoned');
    // Two changes with nobody waiting: the next call with the old revision answers at once with the latest state.
    await call('POST', '/uncordon', {});
    await call('POST', '/sim/faults/clear', {});
    await new Promise((r) => setTimeout(r, 50));
    const later = await watch(`since=${cordoned.revision}&waitSeconds=20`);
    assert.equal(later.changed, true);
    assert.equal(later.drain.state, 'active');
    assert.equal(later.status, 'healthy');
    assert.ok(later.revision >= cordoned.revision + 2);
  });

  it('rejects bad parameters with 400 naming them', async () => {
    for (const [q, re] of [
      ['since=-1', /^since:/],
      ['since=abc', /^since:/],
      ['waitSeconds=61', /^waitSeconds:/],
      ['sinse=1', /^sinse: unknown parameter/],
    ] as const) {
      const res = await call('GET', `/health/watch?${q}`);
      assert.equal(res.status, 400, q);
      assert.match(((await res.json()) as { error: string }).error, re);
    }
    const noToken = await fetch(`${base}/health/watch?since=0`);
    assert.equal(noToken.status, 401);
  });
});

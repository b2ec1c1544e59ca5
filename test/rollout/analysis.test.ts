import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { TrafficCounts } from '../../gpu-agent/traffic.ts';
import { SIM_OOM_MAX_TOKENS, simulatedModelSha256 } from '../../gpu-agent/inference/simulated.ts';
import { FleetSimulator } from '../../scripts/fleet-sim/simulator.ts';
import { rollingUpdateWorkflowId } from '../../workflows/common/ids.ts';
import type { RollingUpdateInput } from '../../workflows/inputs/rollingUpdate.ts';
import type { RolloutResult } from '../../workflows/rollout/api.ts';
import { spawnWorkerProcess, type WorkerProcess } from '../../scripts/lib/workers.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { workflowBundle } from '../../scripts/lib/bundle.ts';
import { startDevServer } from '../../scripts/lib/temporal.ts';
import { failsWith } from './helpers.ts';

const TOKEN = 'rollout-analysis-test-token-0123456789';
const TQ = 'rollout-analysis';
const POOL = 'traffic';
const NODES = 3;
const BASE = '/models/sim-base.gguf';
const GOOD = '/models/sim-good.gguf';
/** Passes a short smoke generation, fails (500) the longer generations clients ask for. */
const OOM = '/models/sim-oom.gguf';
const model = (uri: string) => ({ uri, sha256: simulatedModelSha256(uri) });
const analysis = { intervalSeconds: 2, everySeconds: 1, maxLatencyMs: 30_000, minRequests: 5, maxErrorRate: 0.1 };

describe('rollingUpdate analysis judges the client traffic of updated nodes (simulated agents)', () => {
  let env: TestWorkflowEnvironment;
  let sim: FleetSimulator;
  let worker: WorkerProcess;
  let dir: string;
  const agentCall = (url: string, method: string, path: string, body?: unknown) =>
    fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const served = async () => Promise.all(sim.list(POOL).map(async (n) => ((await (await agentCall(n.agentUrl!, 'GET', '/model')).json()) as { model: { sha256: string } }).model.sha256));

  /** Clients sending completions longer than a short smoke check to every node until stopped. */
  function clientTraffic(): { stop: () => Promise<number> } {
    let running = true;
    let sent = 0;
    const loop = (async () => {
      while (running) {
        await Promise.all(
          sim.list(POOL).map(async (n) => {
            const res = await agentCall(n.agentUrl!, 'POST', '/v1/completions', { prompt: 'Summarise the fleet.', max_tokens: SIM_OOM_MAX_TOKENS * 2 }).catch(() => undefined);
            await res?.arrayBuffer();
            sent++;
          }),
        );
        await sleep(50);
      }
    })();
    return {
      async stop() {
        running = false;
        await loop;
        return sent;
      },
    };
  }

  const start = (id: string, input: Omit<RollingUpdateInput, 'pool'>) =>
    env.client.workflow.start('rollingUpdate', { taskQueue: TQ, workflowId: rollingUpdateWorkflowId(POOL, id), args: [{ pool: POOL, ...input }] });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rollout-analysis-'));
    sim = new FleetSimulator({
      token: TOKEN,
      dataDir: dir,
      inference: { swapSeconds: 0.2, drainSeconds: 0.1, generationMs: 20, seed: 1, initialModel: BASE, oomSha256: [model(OOM).sha256] },
    });
    const [server] = await Promise.all([sim.serve(), startDevServer().then((e) => (env = e))]);
    await Promise.all(Array.from({ length: NODES }, (_, i) => sim.provision(POOL, 'sim', `initial/${i}`, 0)));
    const ready = async () => (await Promise.all(sim.list(POOL).map(async (n) => (await agentCall(n.agentUrl!, 'GET', '/ready')).status === 200))).every(Boolean);
    await waitFor(ready, 60_000, 'every agent to serve the base model');
    worker = await spawnWorkerProcess(
      'scripts/fleet-sim/worker.ts',
      { TEMPORAL_ADDRESS: env.address, DRYDOCK_TASK_QUEUE: TQ, DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN, FLEET_SIM_URL: server.url, FLEET_SIM_POOL: POOL, DRYDOCK_WORKFLOW_BUNDLE: await workflowBundle() },
      'fleet-sim worker: ready',
    );
  });
  after(async () => {
    await worker?.kill();
    await env?.teardown();
    await sim?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("an agent counts its client inference traffic (GET /traffic): requests, 5xx answers and seconds, nothing else", async () => {
    const url = sim.list(POOL)[0].agentUrl!;
    const read = async () => (await (await agentCall(url, 'GET', '/traffic')).json()) as TrafficCounts;
    const t0 = await read();
    assert.equal((await agentCall(url, 'POST', '/v1/completions', { prompt: 'hi', max_tokens: 4 })).status, 200);
    assert.equal((await agentCall(url, 'POST', '/v1/completions', { prompt: 'hi', max_tokens: 'many' })).status, 400);
    assert.equal((await agentCall(url, 'POST', '/smoke', { prompt: 'hi', max_tokens: 4 })).status, 200);
    assert.equal((await agentCall(url, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] })).status, 200);
    // A cordoned node refuses by design (503: send it elsewhere); that is not traffic it failed.
    await agentCall(url, 'POST', '/cordon', {});
    assert.equal((await agentCall(url, 'POST', '/v1/completions', { prompt: 'hi', max_tokens: 4 })).status, 503);
    await agentCall(url, 'POST', '/uncordon', {});
    const t1 = await read();
    assert.equal(t1.requests - t0.requests, 3, 'two completions and one chat completion; the smoke check and the refusal are not traffic');
    assert.equal(t1.errors - t0.errors, 0, 'a 400 is the client’s fault');
    assert.ok(t1.seconds > t0.seconds);
    assert.equal(t1.since, t0.since);
  });

  it('a model that passes its smoke checks but fails client requests is rolled back on the error rate', async () => {
    const traffic = clientTraffic();
    try {
      const handle = await start('oom', { target: { model: model(OOM) }, maxUnavailable: 1, analysis, drainTimeoutSeconds: 10 });
      const r = await failsWith(handle, 'RolloutRolledBack');
      assert.match(r.status.reason ?? '', /client error rate 100 % \(\d+ of \d+ inference requests answered 5xx\), above maxErrorRate 10 %/);
      const failed = r.status.analyses.find((a) => !a.ok)!;
      assert.equal(failed.failures, 0, 'every smoke check passed: only the traffic shows the fault');
      assert.ok(failed.traffic!.requests >= analysis.minRequests && failed.traffic!.errors === failed.traffic!.requests, JSON.stringify(failed));
    } finally {
      await traffic.stop();
    }
    assert.deepEqual(await served(), Array(NODES).fill(model(BASE).sha256));
  });

  it('a good model under the same traffic passes, and each analysis reports the requests it judged', async () => {
    const traffic = clientTraffic();
    const handle = await start('good', { target: { model: model(GOOD) }, maxUnavailable: 1, analysis, drainTimeoutSeconds: 10 });
    const result = (await handle.result().finally(() => traffic.stop())) as RolloutResult;
    assert.equal(result.outcome, 'succeeded');
    assert.equal(result.status.analyses.length, NODES);
    for (const a of result.status.analyses) {
      assert.ok(a.ok && a.traffic && a.traffic.requests >= analysis.minRequests && a.traffic.errors === 0, JSON.stringify(a));
    }
    assert.deepEqual(await served(), Array(NODES).fill(model(GOOD).sha256));
  });
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import { startSimFleet, waitPoolAdopted, type SimFleet } from '../../scripts/bench/simFleet.ts';
import { inferenceLoad } from '../../scripts/lib/inferenceLoad.ts';
import { startDevServer } from '../../scripts/lib/temporal.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { startPool, waitStatus } from './helpers.ts';

const TQ = 'pool-autoscale-queue';
const POOL = 'queue';
const MODEL = '/models/queue.gguf';

describe('fleetPool queue autoscaling on the fleet simulator\'s simulated inference (real agents, real worker)', () => {
  const token = randomBytes(24).toString('hex');
  let env: TestWorkflowEnvironment;
  let fleet: SimFleet;
  let pool: WorkflowHandle;
  const spec: FleetPoolSpec = {
    name: POOL,
    minNodes: 2,
    maxNodes: 5,
    health: { probeIntervalSeconds: 1, drainTimeoutSeconds: 30 },
    // 4 slots per node; waiting requests per node above 1 grow the pool (busy slots alone never do).
    autoscaling: { type: 'queue', targetQueuePerNode: 1, targetSlotUtilization: 1, upAfterSeconds: 3, downAfterSeconds: 4, maxStep: 2 },
    disruption: { maxUnavailable: 2, minHealthy: 0 },
  };
  before(async () => {
    env = await startDevServer();
    fleet = await startSimFleet({
      address: env.address,
      taskQueue: TQ,
      pool: POOL,
      nodes: 2,
      token,
      simArgs: ['--inference', '--boot-seconds', '1', '--swap-seconds', '0.5', '--drain-seconds', '0', '--generation-ms', '1500', '--initial-model', MODEL],
      beforeWorker: (sim) => waitFor(async () => (await sim.timings(POOL)).filter((t) => t.swaps.some((s) => s.ok)).length === 2, 60_000, 'initial models to load'),
    });
    pool = await startPool(env.client, TQ, spec);
    await waitPoolAdopted(pool, 2, 120_000);
  });
  after(async () => {
    await pool?.terminate('test over').catch(() => {});
    for (const p of fleet?.procs ?? []) p.kill('SIGKILL');
    await env?.teardown();
  });

  it('a load step (requests waiting in the agents\' queues) scales up after upAfterSeconds; its end scales down after downAfterSeconds; no request fails', async () => {
    const stepAt = Date.now();
    const load = inferenceLoad({ clients: 12, token, nodes: async () => (await fleet.sim.list(POOL)).filter((n) => n.agentUrl).map((n) => ({ id: n.id, url: n.agentUrl! })) });
    let s = await waitStatus(pool, (x) => x.counts.members >= 3 && x.counts.provisioning === 0 && x.counts.healthy === x.counts.members, 'a scale-up under the load', 90_000);
    const up = s.events.find((e) => e.message.startsWith('autoscaler queue: up 2 → '));
    assert.ok(up, 'the decision is an event');
    assert.match(up.message, /queue \d+ on 2 node\(s\) \(\d+\.\d\/node > 1\), slots 8\/8 busy/, 'with its inputs');
    const after = Date.parse(up.at) - stepAt;
    assert.ok(after >= 3000, `not before upAfterSeconds (${after} ms)`);
    // Generous upper bound: probes slow down on a loaded 2-core machine; the benchmark measures the real figure.
    assert.ok(after <= 3000 + 12_000, `within the delay plus a few probes (${after} ms)`);
    assert.ok(s.events.some((e) => e.message === 'joined the pool (scale-up)'), 'new nodes joined once healthy and serving');
    assert.ok(s.autoscaler.load && s.autoscaler.load.slotsTotal >= 8, 'the status carries the measurements');

    const endAt = Date.now();
    const counts = await load.stop();
    assert.equal(counts.failed, 0, 'no request failed or was cut');
    assert.ok(counts.ok > 20);
    s = await waitStatus(pool, (x) => x.counts.members === 2 && x.leases.length === 0, 'the scale-down back to min', 90_000);
    const down = s.events.find((e) => e.message.startsWith('autoscaler queue: down') && Date.parse(e.at) >= endAt);
    assert.ok(down, 'the scale-down decision is an event');
    assert.ok(Date.parse(down.at) - endAt >= 4000, 'not before downAfterSeconds');
    assert.match(down.message, /queue 0 on \d node\(s\)/);
    assert.ok(s.events.some((e) => /^scaled down \(drain drained\)/.test(e.message)), 'drained, then terminated');
    assert.equal((await fleet.sim.list(POOL)).length, 2, 'no node left behind at the provider');
    assert.equal(s.desired, 2);
  });
});

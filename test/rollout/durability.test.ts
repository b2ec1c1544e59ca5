import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import type { RolloutResult } from '../../workflows/rollout/api.ts';
import { activityAttempts, waitForRunningActivity } from '../helpers/history.ts';
import { injectFatal, poolStatus } from '../pool/helpers.ts';
import { allServing, rolloutHarness, waitRollout } from './helpers.ts';

const TQ = 'rollout-durability';
const POOL = 'dur';
const NODES = 3;
const quick = { analysis: { intervalSeconds: 0, maxLatencyMs: 120_000 }, drainTimeoutSeconds: 20 };

describe('rollingUpdate crash safety and the shared disruption budget', () => {
  const spec: FleetPoolSpec = {
    name: POOL,
    minNodes: 1,
    maxNodes: 10,
    health: { probeIntervalSeconds: 1, unhealthyAfter: 2, unreachableAfterSeconds: 30, drainTimeoutSeconds: 20 },
    disruption: { maxUnavailable: 2, minHealthy: 1 },
  };
  const h = rolloutHarness({ taskQueue: TQ, spec, nodes: NODES });

  it('a worker SIGKILLed mid-swap: the rollout completes with no node left cordoned or half-updated', async () => {
    const { a, b } = h.models;
    await h.loadEverywhere(a); // set-up: every node serves A, whatever ran before
    const handle = await h.start('crash', { target: { model: { uri: b.path, sha256: b.sha256 } }, maxUnavailable: 2, ...quick });
    await waitForRunningActivity(handle, 'swapModel');
    await h.restartWorker();
    const r = (await handle.result()) as RolloutResult;
    assert.equal(r.outcome, 'succeeded');
    assert.ok((await activityAttempts(handle)).swapModel >= 2, 'the swap that was running when the worker died ran again');
    assert.deepEqual(Object.values(await h.served()), Array(NODES).fill(b.sha256));
    await allServing(h);
    assert.equal((await poolStatus(h.pool)).leases.length, 0, 'no lease left behind');
  });

  it('a rollout and a remediation in the same pool never disrupt more nodes than the budget together', async () => {
    const { a, b } = h.models;
    await h.loadEverywhere(b); // set-up: every node serves B, so the rollout to A walks them all
    const handle = await h.start('with-remediation', { target: { model: { uri: a.path, sha256: a.sha256 } }, maxUnavailable: 2, ...quick });
    const first = await waitRollout(handle, (s) => s.counts.inProgress > 0, 'the first batch to start');
    const victim = first.nodes.filter((n) => n.state === 'pending').at(-1)!.id;
    await injectFatal(h.fleet, victim);

    // Sample the agents themselves: how many members are out of service at once, and who holds leases.
    let maxOut = 0;
    const holders = new Set<string>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        try {
          const pool = await poolStatus(h.pool);
          pool.leases.forEach((l) => holders.add(l.kind));
          maxOut = Math.max(maxOut, pool.leases.length);
          // The victim is quarantined (cordoned) the moment it breaks, whatever the budget holds: a
          // broken node is out already. It counts once it holds its replacement's lease.
          let out = 0;
          const victimLeased = pool.leases.some((l) => l.nodeId === victim);
          for (const n of await h.fleet.provider.list(POOL)) {
            if (n.id === victim && !victimLeased) continue;
            const drain = (await h.health(n.id).catch(() => undefined))?.drain.state;
            if (drain && drain !== 'active') out++;
          }
          maxOut = Math.max(maxOut, out);
        } catch {
          /* a node went away between list and probe */
        }
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    const r = (await handle.result()) as RolloutResult;
    sampling = false;
    await sampler;
    assert.equal(r.outcome, 'succeeded', r.status.reason);
    // Replaced before or during its walk: either way it left the pool, which is no failure.
    assert.equal(r.status.nodes.find((n) => n.id === victim)?.state, 'left', JSON.stringify(r.status.events.filter((e) => e.nodeId === victim)));
    const pool = await poolStatus(h.pool);
    assert.ok(pool.replacements.started >= 1, 'the pool replaced the sick node');
    assert.ok(holders.has('external') && holders.has('replace'), `both the rollout and the remediation held leases: ${[...holders].join(', ')}`);
    assert.ok(maxOut <= 2, `at most the budget (2) disrupted at once, saw ${maxOut}`);
    assert.ok(pool.maxDisrupted <= 2);
    // The replacement joined during the rollout and was updated too, even when it joined after the
    // last batch: the rollout waits for nodes still joining (the pool declares no model to give them).
    const joined = r.status.events.filter((e) => /joined the pool during the rollout/.test(e.message));
    assert.equal(joined.length, 1, `the rollout picked up the replacement: ${JSON.stringify(r.status.events.map((e) => e.message))}`);
    const served = await h.served();
    assert.ok(!(victim in served), 'the sick node is gone');
    assert.deepEqual(Object.values(served), Array(Object.keys(served).length).fill(a.sha256));
    await allServing(h);
  });
});

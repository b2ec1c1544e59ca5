import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AgentClient } from '../../activities/agentClient.ts';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import { acquireLeaseUpdate, releaseLeaseUpdate, resizeUpdate } from '../../workflows/pool/api.ts';
import type { ReplaceNodeStatus } from '../../workflows/replaceNode.ts';
import { agentProcesses } from '../../scripts/lib/fleet.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { startReplace } from '../../scripts/lib/replace.ts';
import { injectFatal, liveIds, poolHarness, poolStatus, waitStatus } from './helpers.ts';

const TQ = 'pool-durability';
const POOL = 'dur';
const NODES = 3;
/** A low history threshold, so the pool continues as new every few probes. */
const SUGGEST_CAN_AT = 60;

describe('fleetPool durability: continue-as-new and worker SIGKILL', () => {
  const spec: FleetPoolSpec = {
    name: POOL,
    minNodes: 1,
    maxNodes: 6,
    health: { probeIntervalSeconds: 1, unhealthyAfter: 2, drainTimeoutSeconds: 10 },
    disruption: { maxUnavailable: 1, minHealthy: 0 },
  };

  // Replacements boot for 3 s: a window to kill the worker in.
  const h = poolHarness({ taskQueue: TQ, spec, nodes: NODES, fleet: { bootSeconds: 3 }, serverArgs: ['--dynamic-config-value', `limit.historyCount.suggestContinueAsNew=${SUGGEST_CAN_AT}`] });

  it('continues as new when the server suggests it, carrying nodes, leases and counters', async () => {
    const first = (await h.pool.describe()).runId;
    const lease = await h.pool.executeUpdate(acquireLeaseUpdate, { args: [{ holder: 'rollout/dur/1', ttlSeconds: 600 }] });
    assert.equal(lease.granted, true);
    const before = await poolStatus(h.pool);
    const s = await waitStatus(h.pool, (x) => x.runs >= 2, 'two continue-as-new', 120_000);
    assert.notEqual((await h.pool.describe()).runId, first, 'a new run');
    assert.deepEqual(s.nodes.map((n) => n.id).sort(), before.nodes.map((n) => n.id).sort(), 'members carried');
    assert.deepEqual(s.leases.map((l) => l.holder), ['rollout/dur/1'], 'the lease survived continue-as-new');
    assert.ok(s.events.some((e) => /continued as new/.test(e.message)));
    const hist = await h.pool.fetchHistory();
    assert.ok(hist.events!.length <= SUGGEST_CAN_AT * 2, `the current run's history stays short (${hist.events!.length} events)`);
    assert.deepEqual(await h.pool.executeUpdate(releaseLeaseUpdate, { args: [{ holder: 'rollout/dur/1' }] }), { released: true });
  });

  it('a replaceNode started outside the pool waits for a slot in its budget, and the pool keeps its size', async () => {
    const hold = await h.pool.executeUpdate(acquireLeaseUpdate, { args: [{ holder: 'rollout/dur/2' }] });
    assert.equal(hold.granted, true, 'the budget (maxUnavailable 1) is now full');
    const start = await poolStatus(h.pool);
    const target = start.nodes[0].id;
    const outside = await startReplace(h.env.client, TQ, { pool: POOL, nodeId: target, reason: 'operator via CLI', drainTimeoutSeconds: 10 });
    await waitStatus(h.pool, (x) => x.queue.some((q) => q.holder === `replace/${POOL}/${target}`), 'the outside replacement to queue for the budget');
    assert.equal((await outside.query<ReplaceNodeStatus>('status')).phase, 'validating', 'it waits before cordoning');
    const agent = new AgentClient((await h.fleet.provider.describe(target))!.agentUrl!, h.fleet.token);
    assert.equal((await agent.drainStatus()).state, 'active', 'the node was not touched while waiting');

    await h.pool.executeUpdate(releaseLeaseUpdate, { args: [{ holder: 'rollout/dur/2' }] });
    const r = await outside.result();
    let s = await waitStatus(
      h.pool,
      (x) => x.nodes.some((n) => n.id === r.replacementNodeId) && !x.nodes.some((n) => n.id === target) && x.leases.length === 0,
      'the pool to see the outside replacement',
    );
    const at = s.lastProbe!.at;
    s = await waitStatus(h.pool, (x) => Date.parse(x.lastProbe!.at) - Date.parse(at) >= 3000, 'a few more probes');
    assert.equal(s.counts.members, NODES);
    assert.equal(s.counts.provisioning, 0, 'no extra scale-up');
    assert.equal(s.replacements.started, start.replacements.started, 'the pool did not replace it a second time');
    assert.equal((await liveIds(h.fleet)).length, NODES, 'no extra instance');
    assert.ok(s.events.some((e) => e.nodeId === target && /outside the pool took a lease/.test(e.message)));
  });

  it('worker SIGKILL during a replacement: the replacement finishes once, no leaked lease, no duplicate instance', async () => {
    const sick = (await poolStatus(h.pool)).nodes[0].id;
    const replacedBefore = (await poolStatus(h.pool)).replacements.succeeded;
    await injectFatal(h.fleet, sick);
    const child = h.env.client.workflow.getHandle(`replace/${POOL}/${sick}`);
    await waitFor(
      async () => {
        try {
          const p = (await child.query<ReplaceNodeStatus>('status')).phase;
          return p === 'provisioning' || p === 'waiting-healthy';
        } catch {
          return false;
        }
      },
      90_000,
      'the replacement to be provisioning',
    );
    await h.restartWorker();
    const s = await waitStatus(h.pool, (x) => x.replacements.succeeded === replacedBefore + 1 && x.counts.healthy === NODES && x.leases.length === 0, 'the replacement to finish after the crash', 120_000);
    assert.equal(s.leases.length, 0, 'no leaked lease');
    assert.equal(s.queue.length, 0);
    assert.equal((await liveIds(h.fleet)).length, NODES, 'exactly one replacement instance');
    assert.deepEqual(await liveIds(h.fleet), s.nodes.map((n) => n.id).sort());
    await waitFor(() => agentProcesses(h.fleet.dir).length === NODES, 20_000, `exactly ${NODES} agent processes`);
  });

  it('worker SIGKILL during a scale-up: one new instance per key, and the pool settles at the new size', async () => {
    await h.pool.executeUpdate(resizeUpdate, { args: [{ desiredNodes: NODES + 1 }] });
    await waitStatus(h.pool, (x) => x.counts.provisioning === 1, 'the scale-up to start');
    await waitFor(async () => (await liveIds(h.fleet)).length === NODES + 1, 30_000, 'the new instance to exist');
    await h.restartWorker();
    const s = await waitStatus(h.pool, (x) => x.counts.members === NODES + 1 && x.counts.healthy === NODES + 1 && x.counts.provisioning === 0, 'the scale-up to finish', 120_000);
    assert.equal((await liveIds(h.fleet)).length, NODES + 1, 'no duplicate instance');
    assert.deepEqual(await liveIds(h.fleet), s.nodes.map((n) => n.id).sort());
    assert.equal(s.leases.length, 0);
    await waitFor(() => agentProcesses(h.fleet.dir).length === NODES + 1, 20_000, `exactly ${NODES + 1} agent processes`);
  });
});

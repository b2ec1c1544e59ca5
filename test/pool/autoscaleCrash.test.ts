// A serving pool driven by a scheduled window on real agents and the real control worker as a child
// process: the worker is SIGKILLed while the window's scale-up provisions, and again while its
// scale-down drains. The pool ends at exactly the decided size, with one instance per member and no
// lease left; every node the scale-up adds serves the pool's model before the pool counts it.
//
// QUERY_GAP: no status query reaches the pool between the kill and the fresh worker's first workflow
// task. A query then (the run cached nowhere, a timer fired while no worker ran) makes the TS SDK
// 1.24 worker run the loop on a stale clock and record commands a replay does not make: the next
// replay fails with a nondeterminism error and the pool stops. A 20-line workflow does the same.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import type { ScheduleWindowSpec } from '../../workflows/inputs/autoscaling.ts';
import { applySpecUpdate, type PoolStatus } from '../../workflows/pool/api.ts';
import { agentProcesses } from '../../scripts/lib/fleet.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { activityAttempts, waitForRunningActivity } from '../helpers/history.ts';
import { agentCall, allServe, ref, servedBy, tinyModels } from '../serving/helpers.ts';
import { liveIds, poolHarness, poolStatus, runJob, waitStatus } from './helpers.ts';

const TQ = 'pool-autoscale-crash';
const POOL = 'ascrash';
const models = tinyModels();
after(() => rmSync(models.dir, { recursive: true, force: true }));

/** "HH:MM:SS" in UTC at `at`. */
const hms = (at: number) => new Date(at).toISOString().slice(11, 19);

describe('autoscaling a serving pool through worker SIGKILLs (scheduled window, real agents, real worker)', () => {
  const spec: FleetPoolSpec = {
    name: POOL,
    minNodes: 1,
    maxNodes: 3,
    health: { probeIntervalSeconds: 1, drainTimeoutSeconds: 15 },
    disruption: { maxUnavailable: 2, minHealthy: 0 },
    serving: { model: ref(models.a) },
  };
  const A = models.a.sha256;
  // New nodes boot for 3 s: the window to kill the worker in while they provision.
  const h = poolHarness({ taskQueue: TQ, spec, nodes: 1, fleet: { bootSeconds: 3, modelDirs: [models.dir] } });
  let window: ScheduleWindowSpec;
  const scheduled = (w: ScheduleWindowSpec): FleetPoolSpec => ({ ...spec, autoscaling: { type: 'scheduled', timeZone: 'UTC', windows: [w], downAfterSeconds: 1 } });
  const events = (s: PoolStatus, re: RegExp, since: number) => s.events.filter((e) => re.test(e.message) && Date.parse(e.at) >= since);
  /** Queries stop from just before the kill until the fresh worker has completed a workflow task (see QUERY_GAP). */
  let quiet = false;
  async function restartQuietly(): Promise<void> {
    quiet = true;
    await new Promise((r) => setTimeout(r, 400)); // a sample in flight ends
    await h.restartWorker();
    const identity = `${h.worker.child.pid}@`;
    await waitFor(
      async () => ((await h.pool.fetchHistory()).events ?? []).some((e) => e.workflowTaskCompletedEventAttributes?.identity?.startsWith(identity)),
      90_000,
      'the fresh worker to complete a workflow task of the pool',
      250,
    );
    quiet = false;
  }

  it('scale-up with the worker killed mid-provision: exactly the window\'s min, one instance per key, each new node serving the model before it counts', async () => {
    await waitStatus(h.pool, allServe(A, 1), 'the adopted node to serve the pool model', 90_000);
    const adopted = h.fleet.nodeIds[0];
    // A window must not cross midnight (UTC here): wait out the last minutes of a day.
    await waitFor(() => Date.now() % 86_400_000 < 86_400_000 - 300_000, 301_000, 'a time well before midnight UTC');
    const opens = Math.ceil((Date.now() + 3000) / 1000) * 1000;
    // Open long enough for any loaded machine; the next case moves its end.
    window = { days: 'daily', start: hms(opens), end: hms(opens + 240_000), minNodes: 3, maxNodes: 3 };
    const startedAt = Date.now();
    assert.equal((await h.pool.executeUpdate(applySpecUpdate, { args: [scheduled(window)] })).desired, 1, 'before the window: the pool min');

    // Samples the pool while it scales: a member, and the autoscaler's capacity, count only once they serve A.
    const violations: string[] = [];
    const seen = new Set<string>([adopted]);
    let maxLive = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxLive = Math.max(maxLive, (await liveIds(h.fleet)).length);
        if (quiet) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        const s = await poolStatus(h.pool);
        const serving = s.nodes.filter((n) => n.phase === 'active' && n.model?.sha256 === A).length;
        for (const n of s.nodes) if (n.model?.sha256 !== A) violations.push(`member ${n.id} (${n.phase}) serves ${n.model?.sha256 ?? 'nothing'}`);
        if (s.counts.healthy > serving) violations.push(`${s.counts.healthy} healthy, ${serving} serving A`);
        if ((s.autoscaler.load?.nodes ?? 0) > serving) violations.push(`autoscaler counts ${s.autoscaler.load!.nodes} serving nodes, ${serving} serve A`);
        for (const n of s.nodes.filter((x) => !seen.has(x.id))) {
          seen.add(n.id);
          // The moment it shows up as a member, its own agent serves A and is ready.
          try {
            const served = await servedBy(h.fleet, n.id);
            const ready = (await agentCall(h.fleet, n.id, 'GET', '/ready')).status;
            if (served !== A || ready !== 200) violations.push(`new member ${n.id}: agent serves ${served}, /ready ${ready}`);
          } catch (err) {
            violations.push(`new member ${n.id}: ${(err as Error).message}`);
          }
        }
        await new Promise((r) => setTimeout(r, 150));
      }
    })();

    try {
      await waitForRunningActivity(h.pool, 'provisionNode', 30_000);
      const s0 = await poolStatus(h.pool);
      assert.equal(s0.counts.provisioning, 2, 'the window opened: two scale-ups at once');
      assert.equal(s0.counts.members, 1, 'not members while they provision');
      await restartQuietly();
      const s = await waitStatus(h.pool, (x) => allServe(A, 3)(x) && x.counts.healthy === 3 && x.counts.provisioning === 0, 'the scale-up to finish after the crash', 120_000);
      sampling = false;
      await sampler;

      assert.deepEqual(violations, [], 'no member counted before it served the pool model');
      const keys = events(s, /^scaling up: provisioning with key /, startedAt);
      assert.equal(keys.length, 2, 'two keys, none provisioned again after the crash');
      assert.ok(Date.parse(keys[0].at) >= opens, 'not before the window opened (workflow time)');
      const fresh = s.nodes.filter((n) => n.id !== adopted);
      for (const n of fresh) {
        assert.ok(s.events.some((e) => e.nodeId === n.id && e.message === `joined the pool (scale-up), serving ${A.slice(0, 12)}…`), `${n.id} joined serving A`);
        assert.equal(await servedBy(h.fleet, n.id), A);
      }
      assert.ok((await activityAttempts(h.pool)).provisionNode >= 2, 'the crash hit a provisionNode, which ran again');
      assert.equal(s.desired, 3);
      assert.equal(maxLive, 3, 'never more than the decided size at the provider');
      assert.deepEqual(await liveIds(h.fleet), s.nodes.map((n) => n.id).sort(), 'one instance per member, no orphan');
      assert.equal(s.leases.length, 0, 'no leaked lease');
      await waitFor(() => agentProcesses(h.fleet.dir).length === 3, 20_000, 'exactly 3 agent processes');
    } finally {
      sampling = false;
      await sampler.catch(() => {});
    }
  });

  it('scale-down with the worker killed mid-drain: back to the pool min, the drained nodes terminated, no lease or instance left', async () => {
    let s = await poolStatus(h.pool);
    assert.equal(s.counts.members, 3, 'the previous case left the window\'s size');
    // Jobs in flight on every node, so the drains take a few seconds: the window to kill the worker in.
    let loading = true;
    const load = (async () => {
      while (loading) {
        for (const id of await liveIds(h.fleet)) await runJob(h.fleet, id, 5).catch(() => {}); // cordoned nodes answer 503
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    try {
      // The window now ends two seconds from here: by workflow time, then downAfterSeconds, the pool shrinks.
      const closes = Math.ceil((Date.now() + 2000) / 1000) * 1000;
      await h.pool.executeUpdate(applySpecUpdate, { args: [scheduled({ ...window, end: hms(closes) })] });
      await waitForRunningActivity(h.pool, 'drainNode', 30_000);
      await restartQuietly();
      loading = false;
      s = await waitStatus(h.pool, (x) => x.counts.members === 1 && x.leases.length === 0 && x.queue.length === 0, 'the scale-down to finish after the crash', 120_000);
      const down = events(s, /^autoscaler scheduled: down 3 → 1: /, closes);
      assert.equal(down.length, 1, 'one decision, after the window closed');
      const gone = events(s, /^scaled down \(drain /, closes).map((e) => e.nodeId);
      assert.equal(gone.length, 2, `both drained, then terminated: ${JSON.stringify(s.events.filter((e) => Date.parse(e.at) >= closes).map((e) => `${e.at} ${e.nodeId ?? ''} ${e.message}`), null, 1)}`);
      for (const id of gone) assert.equal((await h.fleet.provider.describe(id!))?.state, 'terminated');
      assert.ok((await activityAttempts(h.pool)).drainNode >= 2, 'the crash hit a drainNode, which ran again');
      assert.equal(s.desired, 1);
      assert.deepEqual(await liveIds(h.fleet), s.nodes.map((n) => n.id), 'one instance per member, no orphan');
      assert.equal(await servedBy(h.fleet, s.nodes[0].id), A, 'the node kept still serves the pool model');
      await waitFor(() => agentProcesses(h.fleet.dir).length === 1, 20_000, 'exactly 1 agent process');
    } finally {
      loading = false;
      await load;
    }
  });
});

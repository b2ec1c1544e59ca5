// A pool watched through worker restarts: a status query every 150 ms, as a Web UI or a dashboard
// sends, through a SIGKILL of the control worker and its restart. When such a query reaches the
// fresh worker before the pending workflow task does, the TS SDK 1.24 applies the timer that fired
// during the outage on the previous task's time, and the commands it records then differ from any
// replay's: before the history clock (workflows/pool/clock.ts) the pool's next replay failed with
// a nondeterminism error and the pool stopped (the chaos soak, seed 61204; test/pool/autoscaleCrash).
// Whether the query wins that race is timing, so the last case makes the SDK's mistake on purpose:
// the pool's history, with every workflow task's time moved back to the run's start, must still
// replay, i.e. no command the pool records depends on when its task ran.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import { workflowBundle } from '../../scripts/lib/bundle.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { withTaskTimesAtStart, type HistoryJSON } from '../helpers/history.ts';
import { poolHarness, poolStatus, waitStatus } from './helpers.ts';

const TQ = 'pool-query-restart';

describe('a pool queried through a worker SIGKILL and restart (real agents, real worker)', () => {
  const spec: FleetPoolSpec = {
    name: 'qrestart',
    minNodes: 2,
    maxNodes: 2,
    health: { probeIntervalSeconds: 1 },
    disruption: { maxUnavailable: 1, minHealthy: 0 },
  };
  const h = poolHarness({ taskQueue: TQ, spec, nodes: 2 });

  let history: temporal.api.history.v1.IHistory;

  it('keeps probing after the restart, with no workflow task failure, and its whole history replays', async () => {
    let polling = true;
    let answered = 0;
    const poller = (async () => {
      while (polling) {
        await poolStatus(h.pool).then(
          () => answered++,
          () => {}, // no worker: the query times out, as a UI's does
        );
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    try {
      await h.worker.kill('SIGKILL');
      // The probe's timer fires (and a probe may end) while no worker runs: a task is pending.
      await new Promise((r) => setTimeout(r, 2500));
      const before = (await poolStatus(h.pool).catch(() => undefined))?.lastProbe?.at;
      await h.restartWorker();
      const identity = `${h.worker.child.pid}@`;
      await waitFor(
        async () => ((await h.pool.fetchHistory()).events ?? []).some((e) => e.workflowTaskCompletedEventAttributes?.identity?.startsWith(identity)),
        90_000,
        'the fresh worker to complete a workflow task of the pool',
        250,
      );
      await waitStatus(h.pool, (s) => s.lastProbe !== undefined && s.lastProbe.at !== before && s.counts.healthy === 2, 'the pool to probe again', 60_000);
      // Probes go on at their interval (a nondeterministic pool stops: its tasks fail on every retry).
      const at = (await poolStatus(h.pool)).lastProbe!.at;
      await waitStatus(h.pool, (s) => s.lastProbe!.at > at, 'the next probe', 30_000);
      await new Promise((r) => setTimeout(r, 8000)); // more probes: tasks for the last case to move
    } finally {
      polling = false;
      await poller;
    }
    assert.ok(answered > 0, 'the status query was answered');
    history = await h.pool.fetchHistory();
    const failures = (history.events ?? []).filter((e) => e.workflowTaskFailedEventAttributes);
    assert.deepEqual(
      failures.map((e) => e.workflowTaskFailedEventAttributes?.failure?.message),
      [],
      'no workflow task failure in the pool history',
    );
    await Worker.runReplayHistory({ workflowBundle: { codePath: await workflowBundle() } }, history, h.pool.workflowId);
  });

  it('replays with every workflow task\'s time moved back to the run\'s start (what the SDK does to a query-replayed run)', async () => {
    const { history: timeless, moved } = withTaskTimesAtStart(JSON.parse(historyToJSON(history)) as HistoryJSON);
    assert.ok(moved > 10, `the history has workflow tasks to move (${moved})`);
    await Worker.runReplayHistory({ workflowBundle: { codePath: await workflowBundle() } }, historyFromJSON(timeless), h.pool.workflowId);
  });
});

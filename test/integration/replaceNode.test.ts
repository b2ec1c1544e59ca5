import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { AgentClient } from '../../activities/agentClient.ts';
import type { ReplaceNodeResult, ReplaceNodeStatus } from '../../workflows/replaceNode.ts';
import { agentProcesses, startFleet, type TestFleet } from '../../scripts/lib/fleet.ts';
import { spawnWorker, type WorkerProcess } from '../../scripts/lib/workers.ts';
import { startReplace } from '../../scripts/lib/replace.ts';
import { waitForPhase } from '../helpers/replace.ts';
import { startDevServer } from '../../scripts/lib/temporal.ts';

const TQ = 'replace-e2e';

describe('replaceNode end to end on a local fleet of 3 real agents', () => {
  let env: TestWorkflowEnvironment;
  let fleet: TestFleet;
  let worker: WorkerProcess;
  const agent = async (nodeId: string) => new AgentClient((await fleet.provider.describe(nodeId))!.agentUrl!, fleet.token);

  before(async () => {
    [env, fleet] = await Promise.all([startDevServer(), startFleet({ pool: 'demo', nodes: 3, simJobs: 2, simJobSeconds: 2, bootSeconds: 1 })]);
    worker = await spawnWorker(fleet, env.address, TQ);
  });
  after(async () => {
    await worker?.kill('SIGTERM');
    await fleet?.cleanup();
    await env?.teardown();
  });

  it('cordons, drains and terminates the sick node, and brings up a healthy replacement', async () => {
    const [sick, ...others] = fleet.nodeIds;
    await (await agent(sick)).health(); // reachable before we start
    await fetch(`${(await fleet.provider.describe(sick))!.agentUrl}/sim/faults`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fleet.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'xid', gpu: 1, code: 79 }),
    });
    assert.equal((await (await agent(sick)).health()).status, 'unhealthy');

    const handle = await startReplace(env.client, TQ, { pool: 'demo', nodeId: sick, reason: 'xid 79', drainTimeoutSeconds: 30 });

    await waitForPhase(handle, 'draining');
    const drain = await (await agent(sick)).drainStatus();
    assert.ok(['draining', 'drained'].includes(drain.state), `sick node is draining, got ${drain.state}`);
    assert.equal((await (await agent(sick)).ready()).ready, false, 'a draining node is not ready');
    // The workflow id is the lock: a second replacement of the same node cannot start.
    await assert.rejects(startReplace(env.client, TQ, { pool: 'demo', nodeId: sick }), WorkflowExecutionAlreadyStartedError);

    const result: ReplaceNodeResult = await handle.result();
    assert.deepEqual(
      result.phases.map((p) => p.phase),
      ['validating', 'cordoning', 'draining', 'terminating', 'provisioning', 'waiting-healthy'],
    );
    assert.ok(result.phases.every((p) => typeof p.durationMs === 'number'));
    assert.equal((await fleet.provider.describe(sick))?.state, 'terminated');
    const live = await fleet.provider.list('demo');
    assert.deepEqual(live.map((n) => n.id).sort(), [...others, result.replacementNodeId].sort());
    assert.equal((await (await agent(result.replacementNodeId)).health()).status, 'healthy');
    assert.equal(agentProcesses(fleet.dir).length, 3, 'the old agent process is gone and exactly 3 run');

    const status = await handle.query<ReplaceNodeStatus>('status');
    assert.equal(status.phase, 'done');
    const desc = await handle.describe();
    assert.deepEqual(desc.searchAttributes.DrydockPhase, ['done']);
    assert.deepEqual(desc.searchAttributes.DrydockNode, [sick]);
    assert.deepEqual(desc.searchAttributes.DrydockPool, ['demo']);
  });

  it('on drain timeout without force, uncordons the node and fails saying how to proceed', async () => {
    const [node] = (await fleet.provider.list('demo')).map((n) => n.id);
    const a = await agent(node);
    await fetch(`${a.baseUrl}/jobs`, { method: 'POST', headers: { authorization: `Bearer ${fleet.token}` }, body: '{"seconds": 120}' });
    const handle = await startReplace(env.client, TQ, { pool: 'demo', nodeId: node, drainTimeoutSeconds: 1 });
    const err = await handle.result().then(
      () => assert.fail('expected the replacement to fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, 'DrainTimeout');
    assert.match(err.cause.message, /force: true/);
    assert.equal((await a.drainStatus()).state, 'active', 'the node was uncordoned');
    assert.equal((await a.ready()).ready, true);
    assert.equal((await fleet.provider.list('demo')).length, 3, 'nothing was terminated or added');
    assert.deepEqual((await handle.describe()).searchAttributes.DrydockPhase, ['failed']);
  });

  it('on drain timeout with force, cancels the remaining work and replaces the node', async () => {
    const [node] = (await fleet.provider.list('demo')).map((n) => n.id);
    const a = await agent(node);
    await fetch(`${a.baseUrl}/jobs`, { method: 'POST', headers: { authorization: `Bearer ${fleet.token}` }, body: '{"seconds": 120}' });
    // A previous run of this id failed; Temporal allows a new run once it is closed.
    const handle = await startReplace(env.client, TQ, { pool: 'demo', nodeId: node, drainTimeoutSeconds: 1, force: true });
    const result: ReplaceNodeResult = await handle.result();
    assert.match(result.phases.find((p) => p.phase === 'draining')!.note ?? '', /forced, \d+ cancelled/);
    assert.equal((await fleet.provider.describe(node))?.state, 'terminated');
    assert.equal((await fleet.provider.list('demo')).length, 3);
  });
});

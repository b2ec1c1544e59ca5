import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../../activities/index.ts';
import { PoolRegistry } from '../../activities/pools.ts';
import { startFleet, type TestFleet } from '../../scripts/lib/fleet.ts';
import { workflowBundle } from '../../scripts/lib/bundle.ts';
import { startDevServer } from '../../scripts/lib/temporal.ts';
import { inProcessVersioning } from '../../scripts/lib/workers.ts';

const TQ = 'replace-validation';

describe('replaceNode rejects bad input at once, non-retryably, naming the field', () => {
  let env: TestWorkflowEnvironment;
  let fleet: TestFleet;
  let worker: Worker;
  let running: Promise<void>;

  before(async () => {
    [env, fleet] = await Promise.all([startDevServer(), startFleet({ pool: 'demo', nodes: 1 })]);
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: TQ,
      workflowBundle: { codePath: await workflowBundle() },
      activities: createActivities({ pools: PoolRegistry.fromFile(fleet.poolsFile, fleet.auth) }),
      workerDeploymentOptions: inProcessVersioning().workerDeploymentOptions,
    });
    running = worker.run();
    await inProcessVersioning().makeCurrent(env.client);
  });
  after(async () => {
    worker?.shutdown();
    await running;
    await fleet?.cleanup();
    await env?.teardown();
  });

  const node = () => fleet.nodeIds[0];
  const cases: Array<[string, () => unknown, RegExp, string?]> = [
    ['missing nodeId', () => ({ pool: 'demo' }), /^nodeId: is required/],
    ['missing pool', () => ({ nodeId: node() }), /^pool: is required/],
    ['nodeId of the wrong type', () => ({ pool: 'demo', nodeId: 42 }), /^nodeId: expected a string, got number 42/],
    ['empty nodeId', () => ({ pool: 'demo', nodeId: '' }), /^nodeId: must not be empty/],
    ['malformed pool name', () => ({ pool: 'Demo Pool', nodeId: node() }), /^pool: 'Demo Pool' is not valid/],
    ['negative drain timeout', () => ({ pool: 'demo', nodeId: node(), drainTimeoutSeconds: -5 }), /^drainTimeoutSeconds: must be between 0 and 86400, got -5/],
    ['drain timeout as a string', () => ({ pool: 'demo', nodeId: node(), drainTimeoutSeconds: '30' }), /^drainTimeoutSeconds: expected an integer, got the string '30'/],
    ['fractional drain timeout', () => ({ pool: 'demo', nodeId: node(), drainTimeoutSeconds: 1.5 }), /^drainTimeoutSeconds: expected an integer/],
    ['force that is not a boolean', () => ({ pool: 'demo', nodeId: node(), force: 'yes' }), /^force: expected true or false/],
    ['an unknown field (typo)', () => ({ pool: 'demo', nodeId: node(), drainTimeout: 30 }), /^drainTimeout: unknown field/],
    ['a reason that is too long', () => ({ pool: 'demo', nodeId: node(), reason: 'x'.repeat(501) }), /^reason: must be at most 500 characters/],
    ['null input', () => null, /^input: expected a JSON object, got null/],
    ['an array as input', () => [{ pool: 'demo' }], /^input: expected a JSON object, got an array/],
    ['an unknown pool', () => ({ pool: 'nope', nodeId: 'n1' }), /^pool: unknown pool 'nope' \(known pools: demo\)/],
    ['a node not in the pool', () => ({ pool: 'demo', nodeId: 'demo-ffffffff' }), /^nodeId: no live node 'demo-ffffffff' in pool 'demo'/],
    ['a workflow id off the convention', () => ({ pool: 'demo', nodeId: node() }), /^workflowId: must be 'replace\/demo\/demo-/, 'replace-something-else'],
  ];

  for (const [name, input, message, workflowId] of cases) {
    it(`rejects ${name}`, async () => {
      const started = Date.now();
      const args = input() as { pool?: unknown; nodeId?: unknown } | null;
      // The conventional id where pool and node are strings, so only the field under test is wrong.
      const id = workflowId ?? (typeof args?.pool === 'string' && typeof args?.nodeId === 'string' ? `replace/${args.pool}/${args.nodeId}` : `replace/bad/${name.replace(/\W+/g, '-')}`);
      const err = await env.client.workflow
        .execute('replaceNode', { taskQueue: TQ, workflowId: id, args: [args] })
        .then(
          () => assert.fail('expected the workflow to fail'),
          (e: unknown) => e,
        );
      assert.ok(err instanceof WorkflowFailedError, String(err));
      const cause = err.cause;
      assert.ok(cause instanceof ApplicationFailure, `cause is ${cause}`);
      assert.equal(cause.type, 'InvalidArgument');
      assert.equal(cause.nonRetryable, true);
      assert.match(cause.message, message);
      // "At once": no retries, no waiting on timeouts (generous bound for a loaded CI machine).
      assert.ok(Date.now() - started < 15_000, 'failed quickly');
    });
  }

  it('touched nothing: the node is still active and the pool unchanged', async () => {
    const nodes = await fleet.provider.list('demo');
    assert.equal(nodes.length, 1);
    const res = await fetch(`${nodes[0].agentUrl}/drain`, { headers: { authorization: `Bearer ${fleet.token}` } });
    assert.equal((await res.json()).state, 'active');
  });
});

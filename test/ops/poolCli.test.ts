import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { spawnWorker, type WorkerProcess } from '../../scripts/lib/workers.ts';
import { startFleet, type TestFleet } from '../../scripts/lib/fleet.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { runCli } from '../helpers/cli.ts';
import { startDevServer } from '../../scripts/lib/temporal.ts';

/** `drydock pool apply | status | cordon | uncordon | replace` against a real pool manager on real agents. */
const TQ = 'pool-cli';
const POOL = 'pcli';
const NODES = 3;


describe('drydock pool with a fleetPool manager', () => {
  let env: TestWorkflowEnvironment;
  let fleet: TestFleet;
  let worker: WorkerProcess;
  let dir: string;
  // The CLI's JSON, checked field by field.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const cli = (args: string[]) => runCli<Record<string, any>>(args, { TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: 'default', DRYDOCK_TASK_QUEUE: TQ }, 180_000);
  const spec = (extra: string) => {
    const file = join(dir, `spec-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, `name: ${POOL}\nminNodes: ${NODES}\n${extra}`);
    return file;
  };
  const status = async () => {
    const r = await cli(['--json', 'pool', 'status', POOL]);
    assert.equal(r.code, 0, r.stderr);
    return r.json();
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'drydock-pool-cli-'));
    [env, fleet] = await Promise.all([startDevServer(), startFleet({ pool: POOL, nodes: NODES, bootSeconds: 1 })]);
    worker = await spawnWorker(fleet, env.address, TQ);
  });
  after(async () => {
    await env?.client.workflow.getHandle(`pool/${POOL}`).terminate('test over').catch(() => {});
    await worker?.kill('SIGTERM');
    await fleet?.cleanup();
    await env?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('without a manager: status says how to start one, and cordon is refused with exit 2', async () => {
    const s = await status();
    assert.equal(s.manager, null);
    const human = await cli(['pool', 'status', POOL]);
    assert.match(human.stdout, /no manager running \('drydock pool apply -f <spec>' starts one\)/);
    const cordon = await cli(['pool', 'cordon', POOL, fleet.nodeIds[0]]);
    assert.equal(cordon.code, 2);
    assert.match(cordon.stderr, /pool 'pcli' has no running manager/);
  });

  it('apply rejects a bad spec naming the field, starts the manager, then updates it in place', async () => {
    const bad = await cli(['--json', 'pool', 'apply', '-f', spec('maxNodes: 2\n')]);
    assert.equal(bad.code, 2);
    assert.match(bad.json().message, /^maxNodes: must be >= minNodes \(3\), got 2/);

    const health = 'health: { probeIntervalSeconds: 1, unhealthyAfter: 3, drainTimeoutSeconds: 20 }\ndisruption: { maxUnavailable: 1, minHealthy: 0 }\n';
    const first = await cli(['--json', 'pool', 'apply', '-f', spec(`maxNodes: ${NODES}\n${health}`)]);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(first.json(), { workflowId: `pool/${POOL}`, action: 'started' });
    await waitFor(async () => (await status()).manager?.counts.healthy === NODES, 90_000, 'the manager to adopt the nodes');

    const second = await cli(['--json', 'pool', 'apply', '-f', spec(`maxNodes: ${NODES + 1}\n${health}`)]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.json().action, 'updated');
    assert.equal(second.json().desired, NODES);
    assert.equal((await status()).manager.maxNodes, NODES + 1);
  });

  it('cordon goes through the disruption budget; uncordon gives the node back; unknown nodes are bad input', async () => {
    const [a, b] = fleet.nodeIds;
    const first = await cli(['--json', 'pool', 'cordon', POOL, a]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.json().granted, true);
    await waitFor(async () => (await status()).manager.nodes.find((n: { id: string }) => n.id === a)?.phase === 'cordoned', 30_000, 'the node to be cordoned');
    const second = await cli(['pool', 'cordon', POOL, b]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /cordon .*: queued for the disruption budget \(position 1\)/, 'maxUnavailable 1 is in use');

    assert.equal((await cli(['pool', 'uncordon', POOL, a])).code, 0);
    await waitFor(async () => (await status()).manager.nodes.find((n: { id: string }) => n.id === b)?.phase === 'cordoned', 30_000, 'the queued cordon to be granted');
    assert.equal((await cli(['pool', 'uncordon', POOL, b])).code, 0);
    const again = await cli(['pool', 'uncordon', POOL, b]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /uncordonNode: nodeId: .* was not cordoned through this pool/);
    const unknown = await cli(['pool', 'cordon', POOL, 'no-such-node']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /nodeId/);
  });

  it('replace --wait goes through the pool manager and follows the replaceNode it starts', async () => {
    await waitFor(async () => (await status()).manager.counts.disrupted === 0, 30_000, 'the budget to be free');
    const node = fleet.nodeIds[2];
    const r = await cli(['--json', 'pool', 'replace', POOL, node, '--reason', 'cli test', '--wait']);
    assert.equal(r.code, 0, `${r.stderr}\nworker: ${worker.output().slice(-2000)}`);
    const out = r.json();
    assert.equal(out.via, `pool/${POOL}`);
    assert.equal(out.workflowId, `replace/${POOL}/${node}`);
    assert.equal(out.status, 'COMPLETED');
    assert.equal((await fleet.provider.describe(node))?.state, 'terminated');
    await waitFor(
      async () => {
        const m = (await status()).manager;
        return m.replacements.succeeded === 1 && m.nodes.some((n: { id: string }) => n.id === out.result.replacementNodeId);
      },
      60_000,
      'the manager to count the replacement and adopt the new node',
    );
    const refused = await cli(['pool', 'replace', POOL, out.result.replacementNodeId, '--drain-timeout', '5']);
    assert.equal(refused.code, 2, 'a managed pool drains with its spec');
    assert.match(refused.stderr, /--drain-timeout: pool pcli has a manager/);
  });
});

/**
 * Records real workflow histories as replay fixtures (test/fixtures/histories/<type>.json:
 * `{ workflowId, history }`, the history as `temporal workflow show --output json` prints it).
 * Re-run after an intended change to a workflow's command sequence: `npm run record-histories`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../activities/index.ts';
import { PoolRegistry } from '../activities/pools.ts';
import { REPO_ROOT } from './lib/paths.ts';
import { startFleet } from './lib/fleet.ts';
import { waitFor } from './lib/waitFor.ts';
import { workflowBundle } from './lib/bundle.ts';
import { writeTinyLlama } from './lib/tinyLlama.ts';
import { startReplace } from './lib/replace.ts';
import { startDevServer, temporalBin } from './lib/temporal.ts';

/** `npm run record-histories -- fleetPool` (or rollingUpdate) records only that type. */
const only = process.argv[2];

function writeFixture(type: string, workflowId: string, address: string): void {
  const file = join(REPO_ROOT, `test/fixtures/histories/${type}.json`);
  const json = execFileSync(temporalBin(), ['workflow', 'show', '--workflow-id', workflowId, '--address', address, '--output', 'json'], { encoding: 'utf8' });
  writeFileSync(file, JSON.stringify({ workflowId, history: JSON.parse(json) }, null, 1) + '\n');
  console.log(`wrote ${file}`);
}

/** A pool that adopts its nodes, sees one turn fatal, replaces it through the budget, and is then stopped. */
async function recordFleetPool(env: Awaited<ReturnType<typeof startDevServer>>, fleet: Awaited<ReturnType<typeof startFleet>>): Promise<void> {
  const spec = { name: 'demo', minNodes: 1, maxNodes: 4, health: { probeIntervalSeconds: 1, drainTimeoutSeconds: 10 }, disruption: { minHealthy: 0 } };
  const handle = await env.client.workflow.start('fleetPool', { taskQueue: 'record', workflowId: 'pool/demo', args: [spec] });
  const status = () => handle.query<{ phase: string; replacements: { succeeded: number }; leases: unknown[]; nodes: { id: string }[] }>('status');
  await waitFor(async () => (await status()).phase === 'running', 60_000, 'the pool to run');
  const sick = (await status()).nodes[0].id;
  const url = (await fleet.provider.describe(sick))!.agentUrl!;
  await fetch(`${url}/sim/faults`, { method: 'POST', headers: { authorization: `Bearer ${fleet.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'xid', gpu: 0, code: 79 }) });
  await waitFor(async () => ((s) => s.replacements.succeeded === 1 && s.leases.length === 0)(await status()), 120_000, 'the replacement');
  await handle.terminate('recorded for replay');
  writeFixture('fleetPool', handle.workflowId, env.address);
}

/** Rollouts on the pool's agents (no pool workflow): rolling with a pause step and analysis, then blue-green. */
async function recordRollouts(env: Awaited<ReturnType<typeof startDevServer>>, fleet: Awaited<ReturnType<typeof startFleet>>): Promise<void> {
  const models = [1, 2, 3].map((seed) => writeTinyLlama(join(fleet.dir, 'models', `tiny-${seed}.gguf`), { seed, name: `tiny-${seed}` }));
  for (const n of await fleet.provider.list('demo')) {
    const res = await fetch(`${n.agentUrl}/model`, { method: 'PUT', headers: { authorization: `Bearer ${fleet.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ uri: models[0].path, sha256: models[0].sha256 }) });
    if (!res.ok) throw new Error(`loading the first model on ${n.id}: ${await res.text()}`);
  }
  const analysis = { intervalSeconds: 1, everySeconds: 1, maxLatencyMs: 120_000 };
  const rolling = await env.client.workflow.start('rollingUpdate', {
    taskQueue: 'record',
    workflowId: 'rollout/demo/record-rolling',
    args: [{ pool: 'demo', target: { model: { uri: models[1].path, sha256: models[1].sha256 } }, steps: [{ batch: 1 }, { pause: { seconds: 1 } }], analysis, drainTimeoutSeconds: 10 }],
  });
  await rolling.result();
  writeFixture('rollingUpdate', rolling.workflowId, env.address);
  const blueGreen = await env.client.workflow.start('rollingUpdate', {
    taskQueue: 'record',
    workflowId: 'rollout/demo/record-bluegreen',
    args: [{ pool: 'demo', target: { model: { uri: models[2].path, sha256: models[2].sha256 } }, strategy: 'blueGreen', scaleDownDelaySeconds: 1, analysis, drainTimeoutSeconds: 10 }],
  });
  await blueGreen.result();
  writeFixture('rollingUpdate-blueGreen', blueGreen.workflowId, env.address);
}

async function main(): Promise<void> {
  const [env, fleet] = await Promise.all([startDevServer(), startFleet({ pool: 'demo', nodes: 2, simJobs: 1, simJobSeconds: 1 })]);
  try {
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: 'record',
      workflowBundle: { codePath: await workflowBundle() },
      activities: createActivities({ pools: PoolRegistry.fromFile(fleet.poolsFile, fleet.auth) }),
    });
    await worker.runUntil(async () => {
      if (only === 'fleetPool') return recordFleetPool(env, fleet);
      if (only === 'rollingUpdate') return recordRollouts(env, fleet);
      const handle = await startReplace(env.client, 'record', { pool: 'demo', nodeId: fleet.nodeIds[0], reason: 'recorded for replay', drainTimeoutSeconds: 30 });
      await handle.result();
      const file = join(REPO_ROOT, 'test/fixtures/histories/replaceNode.json');
      // The CLI's proto3 JSON is what `historyFromJSON` reads (and what users capture from production).
      const json = execFileSync(temporalBin(), ['workflow', 'show', '--workflow-id', handle.workflowId, '--address', env.address, '--output', 'json'], { encoding: 'utf8' });
      writeFileSync(file, JSON.stringify({ workflowId: handle.workflowId, history: JSON.parse(json) }, null, 1) + '\n');
      console.log(`wrote ${file}`);
      if (!only) await recordFleetPool(env, fleet);
      if (!only) await recordRollouts(env, fleet);
    });
  } finally {
    await fleet.cleanup();
    await env.teardown();
  }
}

await main();

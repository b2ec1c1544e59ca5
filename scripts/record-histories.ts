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
import { REPO_ROOT } from '../activities/providers/local.ts';
import { startFleet, workflowBundle } from '../test/helpers/fleet.ts';
import { startReplace } from '../test/helpers/replace.ts';
import { startDevServer, temporalBin } from '../test/helpers/temporal.ts';

async function main(): Promise<void> {
  const [env, fleet] = await Promise.all([startDevServer(), startFleet({ pool: 'demo', nodes: 2, simJobs: 1, simJobSeconds: 1 })]);
  try {
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: 'record',
      workflowBundle: { codePath: await workflowBundle() },
      activities: createActivities({ pools: PoolRegistry.fromFile(fleet.poolsFile, fleet.token), agentToken: fleet.token }),
    });
    await worker.runUntil(async () => {
      const handle = await startReplace(env.client, 'record', { pool: 'demo', nodeId: fleet.nodeIds[0], reason: 'recorded for replay', drainTimeoutSeconds: 30 });
      await handle.result();
      const file = join(REPO_ROOT, 'test/fixtures/histories/replaceNode.json');
      // The CLI's proto3 JSON is what `historyFromJSON` reads (and what users capture from production).
      const json = execFileSync(temporalBin(), ['workflow', 'show', '--workflow-id', handle.workflowId, '--address', env.address, '--output', 'json'], { encoding: 'utf8' });
      writeFileSync(file, JSON.stringify({ workflowId: handle.workflowId, history: JSON.parse(json) }, null, 1) + '\n');
      console.log(`wrote ${file}`);
    });
  } finally {
    await fleet.cleanup();
    await env.teardown();
  }
}

await main();

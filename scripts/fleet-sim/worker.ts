/**
 * A control worker whose one pool lives in the fleet simulator: the real workflows and
 * activities, only the provider differs. Env: TEMPORAL_ADDRESS, DRYDOCK_TASK_QUEUE,
 * DRYDOCK_AGENT_TOKEN, FLEET_SIM_URL, FLEET_SIM_POOL, optional DRYDOCK_WORKFLOW_BUNDLE.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities/index.ts';
import { WORKFLOWS_PATH } from '../../workers/workflowsPath.ts';
import { SimPoolRegistry } from './provider.ts';

const env = (k: string): string => {
  const v = process.env[k];
  if (!v) {
    console.error(`fleet-sim worker: ${k} must be set`);
    process.exit(2);
  }
  return v;
};
const token = env('DRYDOCK_AGENT_TOKEN');
const pools = new SimPoolRegistry(env('FLEET_SIM_POOL'), env('FLEET_SIM_URL'), token);
const connection = await NativeConnection.connect({ address: env('TEMPORAL_ADDRESS') });
const bundle = process.env.DRYDOCK_WORKFLOW_BUNDLE;
const worker = await Worker.create({
  connection,
  taskQueue: env('DRYDOCK_TASK_QUEUE'),
  ...(bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath: WORKFLOWS_PATH }),
  activities: createActivities({ pools, agentToken: token }),
  // Hundreds of concurrent probes and replacements: room for them.
  maxConcurrentActivityTaskExecutions: 200,
});
console.log(`fleet-sim worker: ready, pool ${pools.names()[0]}`);
process.on('SIGTERM', () => worker.shutdown());
await worker.run();
await connection.close();

import { Worker } from '@temporalio/worker';
import { createActivities } from '../activities/index.ts';
import { PoolRegistry, PoolsFileError } from '../activities/pools.ts';
import { loadControlWorkerConfig, WorkerConfigError } from './config.ts';
import { CodecConfigError, dataConverterFromEnv } from './codec.ts';
import { connectWorker } from './connection.ts';
import { installMetrics, MetricsConfigError } from './metrics.ts';
import { WORKFLOWS_PATH } from './workflowsPath.ts';

/** The control worker: runs every fleet workflow and the activities that reach providers and agents. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadControlWorkerConfig(process.env);
  } catch (err) {
    if (err instanceof WorkerConfigError) {
      console.error(`control worker: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const pools = PoolRegistry.fromFile(config.poolsFile, config.agentToken);
  const dataConverter = dataConverterFromEnv(); // before connecting, so a bad key fails fast
  const metrics = await installMetrics(); // must run before the first connection creates the Runtime
  const { connection, namespace } = await connectWorker();
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue: config.taskQueue,
    ...(config.workflowBundle ? { workflowBundle: { codePath: config.workflowBundle } } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities({ pools, agentToken: config.agentToken }),
    dataConverter,
    interceptors: { activity: metrics.activityInterceptors },
    shutdownGraceTime: config.shutdownGraceMs,
  });
  console.log(`control worker: namespace ${namespace}, task queue ${config.taskQueue}, pools ${pools.names().join(', ')}`);
  await worker.run();
  await connection.close();
  await metrics.close();
}

main().catch((err) => {
  if (err instanceof CodecConfigError || err instanceof MetricsConfigError || err instanceof PoolsFileError) {
    console.error(`control worker: ${err.message}`);
    process.exit(2);
  }
  console.error('control worker failed:', err);
  process.exit(1);
});

import { Worker } from '@temporalio/worker';
import { createActivities } from '../activities/index.ts';
import type { PoolRegistry } from '../activities/pools.ts';
import { dataConverterFromEnv } from './codec.ts';
import type { ControlWorkerConfig } from './config.ts';
import { connectWorker } from './connection.ts';
import { installMetrics } from './metrics.ts';
import { deploymentOptions } from './versioning.ts';
import { WORKFLOWS_PATH } from './workflowsPath.ts';

export interface ControlWorker {
  worker: Worker;
  namespace: string;
  /** Runs until shutdown (SIGTERM/SIGINT: the SDK's default signals), then closes the connection and metrics. */
  run(): Promise<void>;
}

/**
 * The control worker over `pools`, with every setting production runs with: codec, metrics
 * interceptors (when DRYDOCK_METRICS_ADDRESS is set), SDK default concurrency, shutdown grace,
 * Worker Deployment Versioning (config.version).
 * workers/control.ts serves the pools file with it; the fleet simulator's worker (the benchmarks)
 * serves simulated pools with the very same worker. Throws CodecConfigError / MetricsConfigError.
 */
export async function createControlWorker(config: ControlWorkerConfig, pools: PoolRegistry): Promise<ControlWorker> {
  const dataConverter = dataConverterFromEnv(); // before connecting, so a bad key fails fast
  const metrics = await installMetrics(); // must run before the first connection creates the Runtime
  const { connection, namespace } = await connectWorker();
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue: config.taskQueue,
    ...(config.workflowBundle ? { workflowBundle: { codePath: config.workflowBundle } } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities({ pools }),
    dataConverter,
    interceptors: { activity: metrics.activityInterceptors },
    shutdownGraceTime: config.shutdownGraceMs,
    workerDeploymentOptions: deploymentOptions(config.version),
  });
  return {
    worker,
    namespace,
    async run() {
      await worker.run();
      await connection.close();
      await metrics.close();
    },
  };
}

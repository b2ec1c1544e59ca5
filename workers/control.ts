import { PoolRegistry, PoolsFileError } from '../activities/pools.ts';
import { CodecConfigError } from './codec.ts';
import { loadControlWorkerConfig, WorkerConfigError } from './config.ts';
import { createControlWorker } from './controlWorker.ts';
import { MetricsConfigError } from './metrics.ts';
import { versionString } from './versioning.ts';

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
  const pools = PoolRegistry.fromFile(config.poolsFile, config.agentAuth);
  const { namespace, run } = await createControlWorker(config, pools);
  console.log(`control worker: namespace ${namespace}, task queue ${config.taskQueue}, version ${versionString(config.version)}, pools ${pools.names().join(', ')}; agents: ${config.agentAuth.describe()}`);
  await run();
}

main().catch((err) => {
  if (err instanceof CodecConfigError || err instanceof MetricsConfigError || err instanceof PoolsFileError) {
    console.error(`control worker: ${err.message}`);
    process.exit(2);
  }
  console.error('control worker failed:', err);
  process.exit(1);
});

import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { Worker } from '@temporalio/worker';
import { createTrainingActivities } from '../activities/training/activities.ts';
import { describeBackend, loadBackend } from '../activities/training/backend.ts';
import { loadDataset } from '../activities/training/data.ts';
import { TrainerMetrics } from '../activities/training/metrics.ts';
import { CodecConfigError, dataConverterFromEnv } from './codec.ts';
import { WorkerConfigError } from './config.ts';
import { connectWorker } from './connection.ts';
import { loadMetricsConfig, MetricsConfigError } from './metrics.ts';
import { loadTrainerWorkerConfig } from './trainerConfig.ts';
import { deploymentOptions, versionString } from './versioning.ts';

/**
 * The trainer worker: runs training activities (shards, aggregation, checkpoints) on its own task
 * queue, one at a time per GPU, with the best TensorFlow.js backend this host can load.
 */
async function main(): Promise<void> {
  let config;
  let metricsAt;
  let dataConverter;
  try {
    config = loadTrainerWorkerConfig(process.env);
    metricsAt = loadMetricsConfig(process.env);
    dataConverter = dataConverterFromEnv();
  } catch (err) {
    if (err instanceof WorkerConfigError || err instanceof MetricsConfigError || err instanceof CodecConfigError) {
      console.error(`trainer worker: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const backend = await loadBackend();
  loadDataset('mnist'); // parse the digits once, before the first shard arrives
  const metrics = new TrainerMetrics();
  metrics.watchBackend(backend);
  let metricsNote = 'metrics off (set DRYDOCK_METRICS_ADDRESS=host:port)';
  if (metricsAt) {
    const server = createServer(async (req, res) => {
      if (req.url !== '/metrics') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(await metrics.registry.metrics());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`DRYDOCK_METRICS_ADDRESS: cannot listen on ${metricsAt.host}:${metricsAt.port}: ${err.message}`)));
      server.listen(metricsAt.port, metricsAt.host, resolve);
    });
    server.unref();
    metricsNote = `metrics http://${metricsAt.host}:${(server.address() as { port: number }).port}/metrics`;
  }
  const identity = `trainer@${hostname()}/${process.pid}`;
  const { connection, namespace } = await connectWorker();
  const worker = await Worker.create({
    connection,
    namespace,
    identity,
    taskQueue: config.taskQueue,
    activities: createTrainingActivities({ metrics, identity }),
    // Same codec as the control worker: with DRYDOCK_CODEC_KEY set, activity inputs arrive encrypted.
    dataConverter,
    maxConcurrentActivityTaskExecutions: config.concurrency,
    shutdownGraceTime: config.shutdownGraceMs,
    // The control worker's version: a pinned trainingJob's activities stay on the build that started it.
    workerDeploymentOptions: deploymentOptions(config.version),
  });
  const skipped = backend.skipped.length ? ` (not loaded: ${backend.skipped.join('; ')})` : '';
  console.log(`trainer worker: ${identity}, namespace ${namespace}, task queue ${config.taskQueue}, version ${versionString(config.version)}, backend ${describeBackend(backend)}${skipped}, ${metricsNote}`);
  await worker.run();
  await connection.close();
}

main().catch((err) => {
  console.error('trainer worker failed:', err);
  process.exit(1);
});

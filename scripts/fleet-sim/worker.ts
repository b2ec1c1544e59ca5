/**
 * The control worker, with production's settings (workers/controlWorker.ts), whose one pool lives
 * in the fleet simulator: the real workflows and activities, only the provider differs. Env: as
 * workers/control.ts (TEMPORAL_ADDRESS, DRYDOCK_TASK_QUEUE, DRYDOCK_AGENT_TOKEN, optional
 * DRYDOCK_WORKFLOW_BUNDLE, DRYDOCK_METRICS_ADDRESS, codec keys) but no pools file: FLEET_SIM_URL
 * and FLEET_SIM_POOL (one pool, or several comma-separated) instead.
 */
import { loadControlWorkerConfig } from '../../workers/config.ts';
import { createControlWorker } from '../../workers/controlWorker.ts';
import { versionString } from '../../workers/versioning.ts';
import { SimPoolRegistry } from './provider.ts';

const required = (k: string): string => {
  const v = process.env[k];
  if (!v) {
    console.error(`fleet-sim worker: ${k} must be set`);
    process.exit(2);
  }
  return v;
};
let config;
try {
  config = loadControlWorkerConfig(process.env);
} catch (err) {
  console.error(`fleet-sim worker: ${(err as Error).message}`);
  process.exit(2);
}
const pools = new SimPoolRegistry(required('FLEET_SIM_POOL'), required('FLEET_SIM_URL'), config.agentToken);
const { run } = await createControlWorker(config, pools);
console.log(`fleet-sim worker: ready, version ${versionString(config.version)}, pool ${pools.names().join(', ')}`);
await run();

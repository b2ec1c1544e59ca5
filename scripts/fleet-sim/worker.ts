/**
 * The control worker, with production's settings (workers/controlWorker.ts), whose one pool lives
 * in the fleet simulator: the real workflows and activities, only the provider differs. Env: as
 * workers/control.ts (TEMPORAL_ADDRESS, DRYDOCK_TASK_QUEUE, DRYDOCK_AGENT_KEY for per-node tokens,
 * optional DRYDOCK_WORKFLOW_BUNDLE, DRYDOCK_METRICS_ADDRESS, codec keys) but no pools file:
 * FLEET_SIM_URL and FLEET_SIM_POOL (one pool, or several comma-separated) instead, and
 * FLEET_SIM_TOKEN (default DRYDOCK_AGENT_TOKEN) for the simulator's API. Without a key it runs the
 * dev-only shared-token mode with that token, and says so in its ready line.
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
const simToken = process.env.FLEET_SIM_TOKEN ?? process.env.DRYDOCK_AGENT_TOKEN ?? '';
const keyed = process.env.DRYDOCK_AGENT_KEY !== undefined || process.env.DRYDOCK_AGENT_KEY_FILE !== undefined;
let config;
try {
  config = loadControlWorkerConfig({ ...(keyed ? {} : { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: simToken }), ...process.env });
} catch (err) {
  console.error(`fleet-sim worker: ${(err as Error).message}`);
  process.exit(2);
}
const pools = new SimPoolRegistry(required('FLEET_SIM_POOL'), required('FLEET_SIM_URL'), simToken, config.agentAuth);
const { run } = await createControlWorker(config, pools);
console.log(`fleet-sim worker: ready, version ${versionString(config.version)}, pool ${pools.names().join(', ')}; agents: ${config.agentAuth.describe()}`);
await run();

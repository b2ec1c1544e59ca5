/**
 * The fleet simulator as a process: `node --import tsx scripts/fleet-sim/main.ts [--port N]
 * [--boot-seconds S] [--rack-size R]` with DRYDOCK_AGENT_TOKEN in the env. Prints its control URL.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FleetSimulator } from './simulator.ts';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, 'boot-seconds': { type: 'string', default: '2' }, 'rack-size': { type: 'string', default: '25' } } });
const token = process.env.DRYDOCK_AGENT_TOKEN ?? '';
if (token.length < 16) {
  console.error('fleet-sim: DRYDOCK_AGENT_TOKEN must be set (16+ characters), the same token the worker uses');
  process.exit(2);
}
const sim = new FleetSimulator({
  token,
  dataDir: mkdtempSync(join(tmpdir(), 'drydock-fleet-sim-')),
  bootSeconds: Number(values['boot-seconds']),
  rackSize: Number(values['rack-size']),
});
const { url } = await sim.serve(Number(values.port));
console.log(`fleet-sim: listening ${url}`);
const stop = async () => {
  await sim.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());

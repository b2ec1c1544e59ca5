/**
 * The fleet simulator as a process: `node --import tsx scripts/fleet-sim/main.ts [--port N]
 * [--boot-seconds S] [--rack-size R]` with DRYDOCK_AGENT_TOKEN in the env. Prints its control URL.
 *
 * Simulated inference on every agent (no model files): `--inference` plus per-node durations as
 * `X` or `MIN-MAX` (drawn per node, seeded): `--swap-seconds 2-4 --drain-seconds 0.5-2
 * --generation-ms 100-300 [--seed N] [--initial-model /models/base.gguf]
 * [--fail-sha256 A,B] [--bad-output-sha256 C] [--oom-sha256 D]`. Measured durations: GET /timings?pool=P.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FleetSimulator, type DurationRange } from './simulator.ts';

const str = { type: 'string' } as const;
const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' }, 'boot-seconds': { type: 'string', default: '2' }, 'rack-size': { type: 'string', default: '25' },
    inference: { type: 'boolean', default: false }, 'swap-seconds': { type: 'string', default: '2-4' }, 'drain-seconds': { type: 'string', default: '0.5-2' },
    'generation-ms': { type: 'string', default: '100-300' }, 'download-seconds': { type: 'string', default: '0' }, seed: { type: 'string', default: '1' }, 'initial-model': str, 'fail-sha256': str, 'bad-output-sha256': str, 'oom-sha256': str,
  },
});
const token = process.env.DRYDOCK_AGENT_TOKEN ?? '';
if (token.length < 16) {
  console.error('fleet-sim: DRYDOCK_AGENT_TOKEN must be set (16+ characters), the same token the worker uses');
  process.exit(2);
}

function range(flag: string, raw: string): DurationRange {
  const m = /^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?$/.exec(raw);
  if (!m || (m[2] !== undefined && Number(m[2]) < Number(m[1]))) {
    console.error(`fleet-sim: --${flag}: expected X or MIN-MAX (numbers, MIN <= MAX), got '${raw}'`);
    process.exit(2);
  }
  return m[2] === undefined ? Number(m[1]) : [Number(m[1]), Number(m[2])];
}
const list = (raw: string | undefined) => (raw ? raw.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean) : undefined);

const sim = new FleetSimulator({
  token,
  dataDir: mkdtempSync(join(tmpdir(), 'drydock-fleet-sim-')),
  bootSeconds: Number(values['boot-seconds']),
  rackSize: Number(values['rack-size']),
  inference: values.inference
    ? {
        swapSeconds: range('swap-seconds', values['swap-seconds']),
        drainSeconds: range('drain-seconds', values['drain-seconds']),
        generationMs: range('generation-ms', values['generation-ms']),
        downloadSeconds: range('download-seconds', values['download-seconds']),
        seed: Number(values.seed),
        initialModel: values['initial-model'],
        failSha256: list(values['fail-sha256']),
        badOutputSha256: list(values['bad-output-sha256']),
        oomSha256: list(values['oom-sha256']),
      }
    : undefined,
});
const { url } = await sim.serve(Number(values.port));
console.log(`fleet-sim: listening ${url}`);
const stop = async () => {
  await sim.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());

/**
 * Chaos soak: `node --import tsx scripts/bench/chaos.ts [--minutes 30] [--seed N] [--fault-rate 0.5]
 * [--kill-rate 1.5] [--nodes 4]`. A pool, rollouts, backups and training jobs under random node
 * faults (per node per minute), provider capacity / throttling, control and trainer SIGKILLs and
 * Temporal restarts (kills per minute), invariants checked every second (scripts/sim/chaos.ts).
 * Prints the count of each fault and kill, each invariant's violations and the pool's convergence
 * time after the storm, beside a calm baseline (the same workloads and time, no faults), as a
 * ratio. Exits 1 when any invariant was violated; rerun with the printed seed to repeat.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { printReport, runChaos } from '../sim/chaos.ts';

const { values: a } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    seed: { type: 'string', default: String(Date.now() % 100_000) },
    'fault-rate': { type: 'string', default: '0.5' },
    'kill-rate': { type: 'string', default: '1.5' },
    nodes: { type: 'string', default: '4' },
    baseline: { type: 'string', default: '1' },
  },
});
const run = async (faultRate: number, killRate: number, seconds: number) => {
  const work = mkdtempSync(join(tmpdir(), 'drydock-chaos-'));
  try {
    return await runChaos({ seed: Number(a.seed), seconds, faultRate, killRate, nodes: Number(a.nodes), work, convergeSeconds: 300 });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
};
const storm = await run(Number(a['fault-rate']), Number(a['kill-rate']), Number(a.minutes) * 60);
printReport(storm);
if (a.baseline !== '0') {
  // Calm baseline: the same setup for a minute without faults; convergence then is the time the
  // workloads in flight need to end, the floor the storm's figure is compared with.
  const calm = await run(0, 0, 60);
  const s = storm.convergedAfterSeconds.chaos;
  const c = calm.convergedAfterSeconds.chaos;
  console.log(`baseline (no faults, 60 s): converged after ${c === null ? 'NEVER' : `${c.toFixed(1)} s`}; storm / baseline = ${s !== null && c ? (s / c).toFixed(2) : 'n/a'}`);
}
process.exit(storm.violations.length ? 1 : 0);

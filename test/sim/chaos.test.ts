import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { printReport, runChaos } from '../../scripts/sim/chaos.ts';

/**
 * One fixed seed of chaos mode (about 3 minutes): a pool, rollouts, backups and training jobs under
 * random node and provider faults, worker SIGKILLs and Temporal restarts; no invariant may break.
 * A failure prints the seed and each violation; `scripts/bench/chaos.ts --seed 7 --minutes 1.7
 * --fault-rate 2 --kill-rate 2` repeats it.
 */
describe('chaos mode, seed 7', () => {
  it('keeps every invariant through a 100 s storm and converges after it', async () => {
    const work = mkdtempSync(join(tmpdir(), 'drydock-chaos-test-'));
    const lines: string[] = [];
    try {
      const report = await runChaos({ seed: 7, seconds: 100, faultRate: 2, killRate: 2, work, convergeSeconds: 150, log: (l) => lines.push(l) });
      printReport(report, (l) => lines.push(l));
      assert.deepEqual(report.violations, [], lines.join('\n'));
      assert.ok(Object.values(report.faults).reduce((a, b) => a + b, 0) >= 5, `faults were injected: ${JSON.stringify(report.faults)}`);
      assert.ok(Object.values(report.kills).reduce((a, b) => a + b, 0) >= 1, `workers or the server were killed: ${JSON.stringify(report.kills)}`);
      assert.ok(report.completed.backups >= 1 && report.completed.trainingJobs >= 1 && report.completed.rollouts >= 1, JSON.stringify(report.completed));
      assert.equal(typeof report.convergedAfterSeconds.chaos, 'number');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

/**
 * The run's log for an assertion message: the whole log goes to a file (a storm logs thousands of
 * lines, and a message that big stalls the test runner), the message holds its last lines.
 */
function failureLog(lines: string[]): string {
  const file = join(tmpdir(), `drydock-chaos-seed7-${process.pid}.log`);
  writeFileSync(file, lines.join('\n'));
  return `${lines.slice(-60).join('\n')}\n(the whole log: ${file})`;
}

describe('chaos mode, seed 7', () => {
  it('keeps every invariant through a 100 s storm and converges after it', async () => {
    const work = mkdtempSync(join(tmpdir(), 'drydock-chaos-test-'));
    const lines: string[] = [];
    try {
      const report = await runChaos({ seed: 7, seconds: 100, faultRate: 2, killRate: 2, work, convergeSeconds: 150, log: (l) => lines.push(l) });
      printReport(report, (l) => lines.push(l));
      // Counted, not diffed: a diff of thousands of violations is as big as the log.
      assert.equal(report.violations.length, 0, `${JSON.stringify(report.violations.slice(0, 20), null, 1)}\n${failureLog(lines)}`);
      assert.ok(Object.values(report.faults).reduce((a, b) => a + b, 0) >= 5, `faults were injected: ${JSON.stringify(report.faults)}`);
      assert.ok(Object.values(report.kills).reduce((a, b) => a + b, 0) >= 1, `workers or the server were killed: ${JSON.stringify(report.kills)}`);
      assert.ok(report.completed.backups >= 1 && report.completed.trainingJobs >= 1 && report.completed.rollouts >= 1, JSON.stringify(report.completed));
      assert.equal(typeof report.convergedAfterSeconds.chaos, 'number', failureLog(lines));
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

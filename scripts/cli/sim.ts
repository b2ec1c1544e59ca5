import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { printReport, runChaos } from '../sim/chaos.ts';
import { runScenarioFile } from '../sim/run.ts';
import { CliError, EXIT } from './runtime.ts';

/**
 * `drydock sim run FILE` and `drydock sim chaos`: scenario files and chaos runs on a throw-away
 * stack (own dev server, fleet simulator, workers), not on the cluster the other commands talk to.
 */
export function registerSimCommands(program: Command): void {
  const sim = program.command('sim').description('simulated fleets: scenario files and chaos runs on a local throw-away stack (docs/operations.md)');
  sim
    .command('run <file>')
    .description('run a scenario file; exit 0 when every step passed, 1 naming the first failed step, 2 for a bad file')
    .action(async (file: string) => {
      const code = await runScenarioFile(file, (l) => process.stderr.write(`${l}\n`));
      if (code === 1) throw new CliError(EXIT.workflowFailed, `scenario ${file} failed (see the step above)`);
      if (code === 2) throw new CliError(EXIT.badInput, `scenario ${file} is not valid (see above)`);
    });
  sim
    .command('chaos')
    .description('random faults, kills and restarts over a pool, rollouts, backups and training; exit 1 on any invariant violation')
    .option('--seed <n>', 'seed (print it to repeat a run)', String(Date.now() % 100_000))
    .option('--minutes <n>', 'storm length', '3')
    .option('--fault-rate <n>', 'node faults per node per minute', '0.5')
    .option('--kill-rate <n>', 'worker kills and Temporal restarts per minute', '1.5')
    .action(async (o: { seed: string; minutes: string; faultRate: string; killRate: string }) => {
      const work = mkdtempSync(join(tmpdir(), 'drydock-chaos-'));
      try {
        const report = await runChaos({ seed: Number(o.seed), seconds: Number(o.minutes) * 60, faultRate: Number(o.faultRate), killRate: Number(o.killRate), work, log: (l) => process.stderr.write(`${l}\n`) });
        printReport(report);
        if (report.violations.length) throw new CliError(EXIT.workflowFailed, `${report.violations.length} invariant violations with seed ${report.seed}`);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
}

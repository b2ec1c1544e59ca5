import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { CliError, EXIT } from './runtime.ts';

/**
 * The stack behind `drydock sim` starts its own dev server through @temporalio/testing, a dev
 * dependency: loaded only when a sim command runs, so the CLI installed without dev dependencies
 * (the images, the CI examples: --omit=dev) works for every other command.
 */
async function simStack(): Promise<{ chaos: typeof import('../sim/chaos.ts'); run: typeof import('../sim/run.ts') }> {
  try {
    return { chaos: await import('../sim/chaos.ts'), run: await import('../sim/run.ts') };
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') {
      throw new CliError(EXIT.badInput, `drydock sim needs a full checkout with its development dependencies (npm install without --omit=dev): ${(err as Error).message.split('\n')[0]}`);
    }
    throw err;
  }
}

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
      const { runScenarioFile } = (await simStack()).run;
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
      const { printReport, runChaos } = (await simStack()).chaos;
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

import { pathToFileURL } from 'node:url';
import { ServiceError } from '@temporalio/client';
import { Command, CommanderError } from 'commander';
import { registerBackupCommands } from './backup.ts';
import { registerPoolCommands } from './pool.ts';
import { registerRolloutCommands } from './rollout/commands.ts';
import { CliError, EXIT } from './runtime.ts';
import { registerSetupCommand } from './setup.ts';
import { registerSimCommands } from './sim.ts';
import { registerTrainCommands } from './train.ts';

/** Commander exits the process on usage errors by default; we map them to exit code 2 instead. */
function exitOverrideAll(cmd: Command): void {
  cmd.exitOverride();
  for (const sub of cmd.commands) exitOverrideAll(sub);
}

/** The `drydock` command line: every command is a thin client of a Temporal workflow. */
export function buildProgram(): Command {
  const program = new Command('drydock')
    .description('operate GPU fleets through drydock workflows on Temporal')
    .option('--json', 'print results as JSON on stdout (progress still goes to stderr)')
    .option('--address <host:port>', 'Temporal frontend (default: TEMPORAL_ADDRESS, the profile, or localhost:7233)')
    .option('--namespace <name>', 'Temporal namespace (default: TEMPORAL_NAMESPACE, the profile, or default)')
    .option('--profile <name>', 'profile of the Temporal CLI config file (default: TEMPORAL_PROFILE or default)')
    .option('--task-queue <name>', "the drydock workers' task queue (default: DRYDOCK_TASK_QUEUE or drydock)")
    .addHelpText(
      'after',
      '\nExit codes: 0 success, 1 the workflow failed or rolled back, 2 bad input, 3 cannot reach Temporal.\n' +
        'Connection settings follow the temporal CLI: profiles, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*.',
    )
    .showHelpAfterError(false);
  registerSetupCommand(program);
  registerPoolCommands(program);
  registerBackupCommands(program);
  registerTrainCommands(program);
  registerRolloutCommands(program);
  registerSimCommands(program);
  exitOverrideAll(program);
  return program;
}

function reportError(err: unknown, json: boolean): number {
  let code: number;
  let message: string;
  let details: unknown;
  if (err instanceof CliError) {
    ({ exitCode: code, message, details } = err);
  } else if (err instanceof ServiceError && /namespace/i.test(err.message) && /not found/i.test(err.message)) {
    code = EXIT.badInput;
    message = `${err.message}: check --namespace / TEMPORAL_NAMESPACE`;
  } else {
    code = EXIT.workflowFailed;
    message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  }
  process.stderr.write(`drydock: ${message}\n`);
  if (json) process.stdout.write(`${JSON.stringify({ status: 'FAILED', exitCode: code, message, ...(details as object) }, null, 2)}\n`);
  return code;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed the usage problem or the help text.
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    }
    return reportError(err, argv.includes('--json'));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then((code) => process.exit(code));
}

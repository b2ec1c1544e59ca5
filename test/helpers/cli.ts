import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';

export interface CliRun<J = Record<string, unknown>> {
  code: number;
  stdout: string;
  stderr: string;
  json: () => J;
}

// The CLI runs as a user would, not as a child of this test runner (which would make it hang).
const { NODE_TEST_CONTEXT: _, ...userEnv } = process.env;
export const cliUserEnv: NodeJS.ProcessEnv = userEnv;

/** Runs the `drydock` bin (scripts/cli/drydock.mjs) with `env` on top of the user's environment. */
export function runCli<J = Record<string, unknown>>(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<CliRun<J>> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(REPO_ROOT, 'scripts/cli/drydock.mjs'), ...args], { cwd: REPO_ROOT, timeout: timeoutMs, env: { ...userEnv, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr, json: () => JSON.parse(stdout) as J }),
    );
  });
}

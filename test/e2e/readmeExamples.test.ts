import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { stackProcesses, startDevStack, type DevStack } from '../helpers/devStack.ts';
import { temporalBin } from '../../scripts/lib/temporal.ts';

/** Every ```sh block of the README whose first command is `temporal`, in order. */
export function temporalExamples(readme: string): string[] {
  return [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1].trim()).filter((block) => block.startsWith('temporal '));
}

describe('the README\'s temporal examples run as written against npm run dev', () => {
  // Run from a folder whose .drydock/dev is the dev stack's dir, as a user runs them from the repo root.
  const root = mkdtempSync(join(tmpdir(), 'drydock-readme-'));
  const dir = join(root, '.drydock/dev');
  let stack: DevStack | undefined;
  after(async () => {
    await stack?.ctrlC().catch(() => undefined);
    for (const p of stackProcesses(dir)) process.kill(p, 'SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  const examples = temporalExamples(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'));

  it('finds an example for every workflow type', () => {
    for (const type of ['replaceNode', 'fleetPool', 'rollingUpdate', 'backup', 'restore', 'trainingJob']) {
      assert.ok(examples.some((e) => e.includes(`--type ${type} `)), `README has a temporal workflow start example for ${type}`);
    }
  });

  it('runs each example block in order; every command succeeds', { timeout: 600_000 }, async () => {
    mkdirSync(dir, { recursive: true });
    stack = await startDevStack(dir);
    const env = { ...process.env, TEMPORAL_ADDRESS: stack.address, PATH: `${dirname(temporalBin())}:${process.env.PATH}` };
    for (const block of examples) {
      const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', block], { cwd: root, env, timeout: 240_000 }).catch((err) =>
        assert.fail(`README example failed:\n${block}\n${err.stderr ?? ''}${err.stdout ?? ''}\n--- dev stack ---\n${stack!.output().slice(-4000)}`),
      );
      assert.ok(stdout.length > 0, `README example printed something:\n${block}`);
    }
  });
});

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { stackProcesses, startDevStack, type DevStack } from '../helpers/devStack.ts';
import { temporalBin } from '../../scripts/lib/temporal.ts';
import { Client, Connection } from '@temporalio/client';
import { LocalProvider } from '../../activities/providers/local.ts';
import { devAgentToken, loadDevConfig } from '../../scripts/devConfig.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import type { PoolStatus } from '../../workflows/pool/api.ts';

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

    // After the README's rollout the pool serves demo-v2: a node the pool remediates comes back on demo-v2.
    const connection = await Connection.connect({ address: stack.address });
    try {
      const pool = new Client({ connection }).workflow.getHandle('pool/demo');
      const v2 = createHash('sha256').update(readFileSync(join(dir, 'models', 'demo-v2.gguf'))).digest('hex');
      const onV2 = (s: PoolStatus) => s.serving?.desired.sha256 === v2 && s.nodes.length === 3 && s.nodes.every((n) => n.model?.sha256 === v2 && n.phase === 'active') && s.leases.length === 0;
      const status = () => pool.query<PoolStatus>('status');
      await waitFor(async () => onV2(await status()), 60_000, 'the pool to serve demo-v2 after the rollout');
      const provider = new LocalProvider(loadDevConfig({ DRYDOCK_DEV_DIR: dir }).pool.provider, devAgentToken(dir));
      const sick = (await status()).nodes[0].id;
      const url = (await provider.describe(sick))!.agentUrl!;
      await fetch(`${url}/sim/faults`, { method: 'POST', headers: { authorization: `Bearer ${devAgentToken(dir)}`, 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'xid', gpu: 0, code: 79 }) });
      let last: PoolStatus | undefined;
      await waitFor(async () => {
        last = await status();
        return !last.nodes.some((n) => n.id === sick) && last.replacements.succeeded >= 1 && onV2(last);
      }, 240_000, 'the pool to replace the sick node with one serving demo-v2').catch((err) => assert.fail(`${err}\n${JSON.stringify(last?.events.slice(-10))}`));
    } finally {
      await connection.close();
    }
  });
});

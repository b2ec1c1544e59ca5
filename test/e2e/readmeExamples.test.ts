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
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { LocalProvider } from '../../activities/providers/local.ts';
import { devCredentials, loadDevConfig } from '../../scripts/devConfig.ts';
import { waitFor, waitQuery } from '../../scripts/lib/waitFor.ts';
import type { BackupResult } from '../../workflows/backup.ts';
import type { PoolStatus } from '../../workflows/pool/api.ts';
import type { ReplaceNodeResult } from '../../workflows/replaceNode.ts';
import type { RestoreResult } from '../../workflows/restore.ts';
import type { RolloutResult } from '../../workflows/rollout/api.ts';
import type { TrainingJobResult } from '../../workflows/trainingJob.ts';

/** Every ```sh block of the README whose first command is `temporal`, in order. */
export function temporalExamples(readme: string): string[] {
  return [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1].trim()).filter((block) => block.startsWith('temporal '));
}

type Check = (handle: WorkflowHandle, dir: string) => Promise<void>;

/** What the README says each example does, checked on the workflow it started (ids as the README gives them). */
const checks: Record<string, Check> = {
  async replaceNode(handle) {
    // "the result lists every phase with its timing and the replacement's node id"; the demo nodes
    // serve demo-v1, so the replacement converges to it (issue 16) before it counts.
    const r = (await handle.result()) as ReplaceNodeResult;
    assert.equal((await handle.describe()).status.name, 'COMPLETED');
    assert.deepEqual(r.phases.map((p) => p.phase), ['validating', 'cordoning', 'draining', 'terminating', 'provisioning', 'waiting-healthy', 'converging']);
    assert.ok(r.phases.every((p) => p.startedAt && typeof p.durationMs === 'number'), JSON.stringify(r.phases));
    assert.equal(r.nodeId, 'demo-727a0ac7');
    assert.ok(r.replacementNodeId && r.replacementNodeId !== r.nodeId, `a new node replaced it: ${r.replacementNodeId}`);
    replacement = r.replacementNodeId;
  },
  async fleetPool(handle) {
    // A running pool of the demo nodes (the replaced node gone, its replacement in), remediation resumed.
    const s = await waitQuery<PoolStatus>(handle, 'status', (x) => x.phase === 'running' && x.counts.healthy >= 3, 'the demo pool to run with its nodes healthy', 120_000);
    const ids = s.nodes.map((n) => n.id);
    assert.ok(!ids.includes('demo-727a0ac7'), `the replaced node left the pool: ${ids.join(', ')}`);
    assert.ok(replacement && ids.includes(replacement), `its replacement is a member: ${ids.join(', ')}`);
    assert.ok(s.events.some((e) => /remediation paused: maintenance window/.test(e.message)), 'the pauseRemediation update took effect');
    assert.ok(s.events.some((e) => /remediation resumed/.test(e.message)), 'the resumeRemediation update took effect');
    assert.equal((await handle.describe()).status.name, 'RUNNING');
  },
  async rollingUpdate(handle, dir) {
    const target = (JSON.parse(readFileSync(join(dir, 'examples/rollout.json'), 'utf8')) as { target: { model: { sha256: string } } }).target.model.sha256;
    const r = (await handle.result()) as RolloutResult;
    assert.equal(r.outcome, 'succeeded');
    assert.equal(r.status.target.sha256, target);
    assert.ok(r.status.nodes.length >= 3 && r.status.nodes.every((n) => n.state === 'done'), JSON.stringify(r.status.nodes));
    assert.equal(r.status.counts.done, r.status.nodes.length, 'every node serves demo-v2');
  },
  async backup(handle) {
    const r = (await handle.result()) as BackupResult;
    assert.equal(r.phase, 'Completed');
    assert.equal(r.backupId, 'demo/20261123T120000Z', 'the backup id is <name>/<time> from the workflow id');
    assert.ok(r.files > 0);
  },
  async restore(handle, dir) {
    const r = (await handle.result()) as RestoreResult;
    assert.equal(r.backupId, 'demo/20261123T120000Z');
    assert.equal(r.destination, join(dir, 'restored'));
    assert.ok(r.files > 0 && r.bytes > 0, JSON.stringify(r));
    assert.deepEqual(r.sources, ['models']);
  },
  async trainingJob(handle, dir) {
    const input = JSON.parse(readFileSync(join(dir, 'examples/training.json'), 'utf8')) as { rounds: number };
    const r = (await handle.result()) as TrainingJobResult;
    assert.equal(r.rounds, input.rounds);
    assert.equal(r.metrics.length, input.rounds);
    assert.equal(r.metrics.at(-1)!.workers, 1, 'setWorkers 1 took effect by the last round');
    assert.ok(Number.isFinite(r.loss) && r.finalCheckpoint, JSON.stringify({ loss: r.loss, finalCheckpoint: r.finalCheckpoint }));
  },
};
/** The replaceNode example's new node, which the fleetPool example's pool must hold. */
let replacement: string | undefined;

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

  it('runs each example block in order; every command succeeds and does what the README says', { timeout: 600_000 }, async () => {
    mkdirSync(dir, { recursive: true });
    stack = await startDevStack(dir);
    const env = { ...process.env, TEMPORAL_ADDRESS: stack.address, PATH: `${dirname(temporalBin())}:${process.env.PATH}` };
    const client = new Client({ connection: await Connection.connect({ address: stack.address }) });
    const done: string[] = [];
    try {
      for (const block of examples) {
        const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', block], { cwd: root, env, timeout: 240_000 }).catch((err) =>
          assert.fail(`README example failed:\n${block}\n${err.stderr ?? ''}${err.stdout ?? ''}\n--- dev stack ---\n${stack!.output().slice(-4000)}`),
        );
        assert.ok(stdout.length > 0, `README example printed something:\n${block}`);
        for (const [, type, id] of block.matchAll(/--type (\w+) .*?--workflow-id (\S+)/gs)) {
          await checks[type]?.(client.workflow.getHandle(id), dir);
          done.push(type);
        }
      }

      // After the README's rollout the pool serves demo-v2: a node the pool remediates comes back on demo-v2.
      const pool = client.workflow.getHandle('pool/demo');
      const v2 = createHash('sha256').update(readFileSync(join(dir, 'models', 'demo-v2.gguf'))).digest('hex');
      const onV2 = (s: PoolStatus) => s.serving?.desired.sha256 === v2 && s.nodes.length === 3 && s.nodes.every((n) => n.model?.sha256 === v2 && n.phase === 'active') && s.leases.length === 0;
      const status = () => pool.query<PoolStatus>('status');
      await waitFor(async () => onV2(await status()), 60_000, 'the pool to serve demo-v2 after the rollout');
      const provider = new LocalProvider(loadDevConfig({ DRYDOCK_DEV_DIR: dir }).pool.provider, devCredentials(dir).auth);
      const sick = (await status()).nodes[0].id;
      const url = (await provider.describe(sick))!.agentUrl!;
      await fetch(`${url}/sim/faults`, { method: 'POST', headers: { authorization: `Bearer ${devCredentials(dir).operatorToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'xid', gpu: 0, code: 79 }) });
      let last: PoolStatus | undefined;
      await waitFor(async () => {
        last = await status();
        // XID 79's ladder reboots first (docs/pools.md): either the rebooted node or its replacement must serve demo-v2.
        const remediated = last.nodes.some((n) => n.id === sick)
          ? last.events.some((e) => e.nodeId === sick && /back in service/.test(e.message))
          : last.replacements.succeeded >= 1;
        return remediated && onV2(last);
      }, 240_000, 'the pool to remediate the sick node (reboot or replace) and serve demo-v2 on every node').catch((err) => assert.fail(`${err}\n${JSON.stringify(last?.events.slice(-10))}`));
    } finally {
      await client.connection.close();
    }
    assert.deepEqual(done.filter((t) => t in checks).sort(), Object.keys(checks).sort(), 'each workflow type of the README was checked');
  });
});

import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { REPO_ROOT } from '../../activities/providers/local.ts';
import { waitFor } from '../helpers/fleet.ts';
import { freePort } from '../helpers/moto.ts';
import { temporalBin } from '../helpers/temporal.ts';

/** Processes that belong to this dev stack: the server and agents name the dir, the worker's env does. */
function stackProcesses(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (cmd.includes(dir) || env.includes(`DRYDOCK_POOLS_FILE=${dir}`)) pids.push(Number(entry));
    } catch {
      /* gone, or not ours to read */
    }
  }
  return pids;
}

describe('npm run dev, as a new user runs it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drydock-dev-'));
  let dev: ChildProcess | undefined;
  let out = '';
  after(() => {
    for (const p of stackProcesses(dir)) process.kill(p, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  async function up(ports: { temporal: number; ui: number }): Promise<void> {
    out = '';
    dev = spawn('bash', ['scripts/dev.sh'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DRYDOCK_DEV_DIR: dir, DRYDOCK_DEV_PORT: String(ports.temporal), DRYDOCK_DEV_UI_PORT: String(ports.ui), DRYDOCK_TEMPORAL_BIN: temporalBin() },
    });
    dev.stdout!.on('data', (d) => (out += d));
    dev.stderr!.on('data', (d) => (out += d));
    await waitFor(() => out.includes('Press Ctrl-C') || dev!.exitCode !== null, 120_000, `the dev stack to be ready:\n${out}`);
    assert.equal(dev.exitCode, null, out);
  }

  async function ctrlC(): Promise<void> {
    const exited = new Promise<number | null>((r) => dev!.once('exit', (code) => r(code)));
    dev!.kill('SIGINT');
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running after 60 s'), 60_000))]);
    assert.equal(code, 0, out);
    await waitFor(() => stackProcesses(dir).length === 0, 20_000, 'every dev-stack process to exit');
  }

  const nodesIn = (text: string) => [...text.matchAll(/^\s+(demo-[0-9a-f]{8})\s+running\s+http/gm)].map((m) => m[1]);

  it('comes up, the printed line replaces a node, Ctrl-C stops everything, and a rerun has the same state', { timeout: 420_000 }, async () => {
    const ports = { temporal: await freePort(), ui: await freePort() };
    await up(ports);
    const before = nodesIn(out);
    assert.equal(before.length, 3, out);
    const ui = await fetch(`http://localhost:${ports.ui}/`);
    assert.equal(ui.status, 200, 'the Web UI answers');

    const line = out.split('\n').find((l) => l.includes('workflow start --type replaceNode'));
    assert.ok(line, 'a ready-to-paste temporal workflow start line is printed');
    await promisify(execFile)('bash', ['-c', line.trim()], { timeout: 60_000 });
    const workflowId = /--workflow-id (\S+)/.exec(line)![1];

    const connection = await Connection.connect({ address: `127.0.0.1:${ports.temporal}` });
    const client = new Client({ connection });
    const result = (await client.workflow.getHandle(workflowId).result().catch((e) => assert.fail(`${e}\n${out}`))) as { replacementNodeId: string; nodeId: string };
    assert.ok(before.includes(result.nodeId));
    await connection.close();

    await ctrlC();

    await up(ports);
    const after = nodesIn(out);
    assert.equal(after.length, 3);
    assert.ok(after.includes(result.replacementNodeId), 'the replacement is still in the pool');
    assert.ok(!after.includes(result.nodeId), 'the replaced node stays gone');
    const again = await Connection.connect({ address: `127.0.0.1:${ports.temporal}` });
    const desc = await new Client({ connection: again }).workflow.getHandle(workflowId).describe();
    assert.equal(desc.status.name, 'COMPLETED', 'the workflow history survived the restart (SQLite file)');
    await again.close();
    await ctrlC();
  });
});

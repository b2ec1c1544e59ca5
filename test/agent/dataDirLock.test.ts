import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { agentPid, stopAgentProcess } from '../../activities/providers/agentProcess.ts';
import { agentAlive } from '../../gpu-agent/dataDirLock.ts';

/** A live process that is not an agent of `dataDir` (a PID the kernel handed out again). */
function bystander(args: string[] = []) {
  return spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)', '--', ...args], { stdio: 'ignore' });
}

describe('agent data dir locks and reused PIDs', () => {
  it('a live PID counts only when it is an agent of that data dir', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drydock-lock-'));
    const agent = bystander(['--data-dir', dir]);
    const other = bystander(['--data-dir', join(dir, 'elsewhere')]);
    try {
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(agentAlive(agent.pid!, dir), true);
      assert.equal(agentAlive(other.pid!, dir), false, 'another data dir');
      assert.equal(agentAlive(process.pid, dir), false, 'a live process that is no agent');
      assert.equal(agentAlive(0, dir), false);
      assert.equal(agentAlive(Number.NaN, dir), false);
    } finally {
      agent.kill('SIGKILL');
      other.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a stale lock naming a reused PID: no agent is seen, and stopping the node signals nobody', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drydock-lock-'));
    const reused = bystander();
    try {
      await new Promise((r) => setTimeout(r, 200));
      writeFileSync(join(dir, 'agent.lock'), String(reused.pid));
      writeFileSync(join(dir, 'agent.json'), JSON.stringify({ pid: reused.pid, port: 1, host: '127.0.0.1' }));
      assert.equal(agentPid(dir), undefined);
      await stopAgentProcess(dir);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(reused.exitCode, null, 'the process holding the reused PID still runs');
      assert.equal(reused.signalCode, null);
    } finally {
      reused.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { freePort } from './moto.ts';
import { temporalBin } from '../../scripts/lib/temporal.ts';

/** Processes that belong to a dev stack: the server and agents name its dir, the workers' env does. */
export function stackProcesses(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (cmd.includes(dir) || env.includes(`DRYDOCK_DEV_DIR=${dir}`)) pids.push(Number(entry));
    } catch {
      /* gone, or not ours to read */
    }
  }
  return pids;
}

export interface DevStack {
  dir: string;
  ports: { temporal: number; ui: number };
  address: string;
  output: () => string;
  /** Ctrl-C, then checks that every process of the stack is gone. */
  ctrlC(): Promise<void>;
}

/** Runs `npm run dev`'s script (scripts/dev.sh) on free ports with its state in `dir`, until it says it is ready. */
export async function startDevStack(dir: string, ports?: { temporal: number; ui: number }): Promise<DevStack> {
  const p = ports ?? { temporal: await freePort(), ui: await freePort() };
  let out = '';
  const dev: ChildProcess = spawn('bash', ['scripts/dev.sh'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DRYDOCK_DEV_DIR: dir, DRYDOCK_DEV_PORT: String(p.temporal), DRYDOCK_DEV_UI_PORT: String(p.ui), DRYDOCK_TEMPORAL_BIN: temporalBin() },
  });
  dev.stdout!.on('data', (d) => (out += d));
  dev.stderr!.on('data', (d) => (out += d));
  await waitFor(() => out.includes('Press Ctrl-C') || dev.exitCode !== null, 180_000, 'the dev stack to be ready');
  assert.equal(dev.exitCode, null, out);
  return {
    dir,
    ports: p,
    address: `127.0.0.1:${p.temporal}`,
    output: () => out,
    async ctrlC() {
      const exited = new Promise<number | null>((r) => dev.once('exit', (code) => r(code)));
      dev.kill('SIGINT');
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running after 60 s'), 60_000))]);
      assert.equal(code, 0, out);
      await waitFor(() => stackProcesses(dir).length === 0, 30_000, 'every dev-stack process to exit');
    },
  };
}

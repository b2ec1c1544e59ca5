/** Child processes for the fleet benchmarks: spawned under tsx, measured from /proc. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { REPO_ROOT } from '../lib/paths.ts';

/** Starts `node --import tsx ARGS` and resolves once its output matches `ready` (with the match). */
export function spawnUntilReady(args: string[], env: Record<string, string>, ready: RegExp): Promise<{ proc: ChildProcess; line: string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  return new Promise((resolve, reject) => {
    const on = (d: Buffer) => {
      out = (out + d).slice(-20_000);
      const m = ready.exec(out);
      if (m) resolve({ proc, line: m[0] });
    };
    proc.stdout!.on('data', on);
    proc.stderr!.on('data', (d: Buffer) => (out = (out + d).slice(-20_000)));
    proc.once('exit', (code, signal) => {
      // The benchmarks SIGKILL their children at the end; any other exit is a crash worth showing.
      if (signal !== 'SIGKILL') console.error(`${args[0]} exited (${code ?? signal}): ${out.slice(-3000)}`);
      reject(new Error(`${args[0]} exited ${code}`));
    });
  });
}

/** utime + stime of a process in seconds, and its RSS in MiB, from /proc. */
export function procStats(pid: number): { cpuS: number; rssMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuS: ticks / 100, rssMiB: rss ? Number(rss[1]) / 1024 : 0 };
}

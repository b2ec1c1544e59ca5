import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * Whether `pid` is a live gpu-agent of `dataDir`. A lock or address file outlives an agent that
 * was killed, and PIDs are reused (Linux hands them out again once pid_max wraps, 32768 by
 * default), so a live PID alone may be any process: where /proc shows command lines, the
 * process must be an agent started with this data dir (flag or environment). Nothing is ever
 * signalled on a stale PID.
 */
export function agentAlive(pid: number, dataDir: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  let args: string[];
  try {
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return process.platform !== 'linux'; // no /proc (macOS): the PID is all there is to go on
  }
  const at = args.indexOf('--data-dir');
  const given = at >= 0 ? args[at + 1] : (args.find((a) => a.startsWith('--data-dir='))?.slice('--data-dir='.length) ?? envDataDir(pid));
  return given !== undefined && resolve(given) === resolve(dataDir);
}

/** DRYDOCK_AGENT_DATA_DIR of the process (an agent given its data dir by environment). */
function envDataDir(pid: number): string | undefined {
  try {
    const kv = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith('DRYDOCK_AGENT_DATA_DIR='));
    return kv?.slice('DRYDOCK_AGENT_DATA_DIR='.length);
  } catch {
    return undefined;
  }
}

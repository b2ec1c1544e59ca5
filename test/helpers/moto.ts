import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';

export { freePort };

export interface Moto {
  endpoint: string;
  /** Clears all moto state (POST /moto-api/reset). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts moto_server (installed by scripts/install-moto.sh into a cached venv) on a free loopback port. */
export async function startMoto(): Promise<Moto> {
  const bin = process.env.DRYDOCK_MOTO_BIN ?? execFileSync('bash', [join(REPO_ROOT, 'scripts/install-moto.sh')], { encoding: 'utf8' }).trim().split('\n').pop()!;
  const port = await freePort();
  const child: ChildProcess = spawn(bin, ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      try {
        return (await fetch(`${endpoint}/moto-api/`)).ok;
      } catch {
        return false;
      }
    },
    60_000,
    'moto_server to answer',
  );
  return {
    endpoint,
    async reset() {
      await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
    },
    async stop() {
      if (child.exitCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await done;
    },
  };
}

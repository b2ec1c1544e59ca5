import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SHA256_RE = /^[0-9a-fA-F]{64}$/;

/** A model's short name: the last segment of its URI or path, without `.gguf` or a query. */
export function modelIdFrom(uri: string): string {
  const last = uri.replace(/[?#].*$/, '').split('/').filter(Boolean).pop() ?? uri;
  return last.replace(/\.gguf$/i, '');
}

export function sha256File(path: string): Promise<string> {
  return new Promise((res, rej) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('error', rej)
      .on('data', (c) => h.update(c))
      .on('end', () => res(h.digest('hex')));
  });
}

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PREFLIGHT_MAIN = join(dirname(fileURLToPath(import.meta.url)), 'preflightMain.ts');

/**
 * llama.cpp aborts the whole process on some malformed files (e.g. a duplicate vocabulary entry), so a
 * new model's metadata is read in a throwaway process first: a bad file costs that process, not the agent.
 */
export function preflightModel(path: string, timeoutMs = 60_000): Promise<{ trainContextSize: number }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--import', 'tsx', PREFLIGHT_MAIN, path], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', rej);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) {
        try {
          return res(JSON.parse(out) as { trainContextSize: number });
        } catch {
          /* fall through to the error below */
        }
      }
      const why = err.trim().split('\n').filter(Boolean).slice(-2).join(' | ') || `exit ${code ?? signal}`;
      rej(new Error(`llama.cpp cannot read the file (${signal ? `process killed by ${signal}` : `exit ${code}`}): ${why}`));
    });
  });
}

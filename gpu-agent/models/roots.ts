import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { ModelError } from './errors.ts';

const inside = (path: string, root: string) => {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

/**
 * The folders the agent may load model files from (`--model-dir`, and its own cache). A path
 * outside them is refused with 403 before anything opens it: the agent neither reads nor hashes it,
 * so no caller learns anything about files it can read. Symbolic links are followed (realpath reads
 * links, it opens no file) and the target must lie inside a root too.
 */
export class ModelRoots {
  readonly roots: string[];

  constructor(roots: string[]) {
    this.roots = [...new Set(roots.map((r) => resolve(r)))];
  }

  /** The real path of `path` when it lies inside a root; throws ModelError 403 (outside) or 404 (missing). */
  check(path: string): string {
    const abs = resolve(path);
    const refuse = (what: string) =>
      new ModelError(
        403,
        `uri: ${what} is outside the agent's model roots (${this.roots.length ? this.roots.join(', ') : 'none: start the agent with --model-dir'}); the agent does not open it`,
      );
    if (!this.roots.some((r) => inside(abs, r))) throw refuse(abs);
    let real: string;
    try {
      real = realpathSync(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ModelError(404, `uri: no file at ${abs}`);
      throw new ModelError(400, `uri: cannot resolve ${abs} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (!this.roots.some((r) => inside(real, safeReal(r)))) throw refuse(`${abs} (a link to ${real})`);
    return real;
  }
}

function safeReal(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

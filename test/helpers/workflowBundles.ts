import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleWorkflowsOf } from '../../scripts/lib/bundle.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';

/**
 * Another build's workflows: a copy of today's workflows/ folder with `edits` applied (path under
 * workflows/ → function of the file's text; each must change its file), bundled on its own. Workflows
 * import only types from elsewhere, so the folder alone is the workflow code.
 */
export async function bundleEditedCopy(edits: Record<string, (text: string) => string>): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'drydock-build-'));
  try {
    cpSync(join(REPO_ROOT, 'workflows'), join(root, 'workflows'), { recursive: true });
    cpSync(join(REPO_ROOT, 'package.json'), join(root, 'package.json'));
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
    for (const [rel, edit] of Object.entries(edits)) {
      const path = join(root, 'workflows', rel);
      const before = readFileSync(path, 'utf8');
      const after = edit(before);
      if (after === before) throw new Error(`edit of workflows/${rel} changed nothing: the code it expects has moved`);
      writeFileSync(path, after);
    }
    return await bundleWorkflowsOf(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const atCommit = new Map<string, Promise<string>>();

/** The workflow code of `commit`, from a temporary `git worktree` of it, bundled (once per process). */
export function bundleAtCommit(commit: string): Promise<string> {
  let p = atCommit.get(commit);
  if (!p) {
    p = (async () => {
      const root = join(mkdtempSync(join(tmpdir(), 'drydock-worktree-')), 'tree');
      execFileSync('git', ['worktree', 'add', '--detach', root, commit], { cwd: REPO_ROOT, stdio: 'ignore' });
      try {
        symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
        return await bundleWorkflowsOf(root);
      } finally {
        execFileSync('git', ['worktree', 'remove', '--force', root], { cwd: REPO_ROOT, stdio: 'ignore' });
      }
    })();
    atCommit.set(commit, p);
  }
  return p;
}

import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { historyFiles, missingHistories } from '../../scripts/lib/histories.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';

/**
 * The replay corpus is append-only (scripts/lib/histories.ts missingHistories): a history committed
 * in an earlier commit must never change or disappear; a move with identical content is allowed.
 * Reads git history, so it needs a full clone (CI clones main in full).
 */
const git = (cwd: string, args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

function gitState(): string | undefined {
  try {
    return git(REPO_ROOT, ['rev-parse', '--is-shallow-repository']) === 'true' ? 'a shallow clone cuts its history off (git fetch --unshallow)' : undefined;
  } catch {
    return 'not a git checkout';
  }
}
const why = gitState();

describe('committed replay histories are never changed or deleted', { skip: why && `needs git history: ${why}` }, () => {
  let clone: string;
  const commitAll = (message: string) => git(clone, ['-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qam', message]);
  before(() => {
    clone = join(mkdtempSync(join(tmpdir(), 'drydock-corpus-')), 'repo');
    git(tmpdir(), ['clone', '-q', '--no-checkout', REPO_ROOT, clone]);
    git(clone, ['checkout', '-q', git(REPO_ROOT, ['rev-parse', 'HEAD'])]);
  });
  after(() => rmSync(join(clone, '..'), { recursive: true, force: true }));

  it('this checkout still holds every history committed since the corpus began', () => {
    assert.ok(historyFiles().length > 0);
    assert.deepEqual(missingHistories(), [], 'restore these committed histories and record a NEW file instead (npm run record-histories)');
  });

  it('a move with identical content passes; an edited or deleted history fails, named', () => {
    const [first, second] = historyFiles();
    const corpus = 'test/fixtures/histories';
    git(clone, ['mv', `${corpus}/${first}`, `${corpus}/${first.replace('.json', '-moved.json')}`]);
    commitAll('move a history');
    assert.deepEqual(missingHistories(clone), []);
    appendFileSync(join(clone, corpus, second), ' ');
    commitAll('edit a history');
    git(clone, ['rm', '-q', `${corpus}/${first.replace('.json', '-moved.json')}`]);
    assert.deepEqual(missingHistories(clone).map((m) => m.split(' at ')[0]).sort(), [`${corpus}/${first.replace('.json', '-moved.json')}`, `${corpus}/${second}`].sort());
  });
});

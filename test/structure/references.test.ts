import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';

/** Every test file that a script, a doc or the README names (test/….test.ts) exists. */
describe('references to test files', () => {
  it('each test file named in scripts/, deploy/, docs/ and the README exists', () => {
    const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', 'scripts', 'deploy', 'docs', 'README.md', '.ci', '.github'], { cwd: REPO_ROOT, encoding: 'utf8' })
      .split('\n')
      .filter((f) => f && existsSync(join(REPO_ROOT, f)));
    const named: string[] = [];
    const missing: string[] = [];
    for (const f of files) {
      for (const [ref] of readFileSync(join(REPO_ROOT, f), 'utf8').matchAll(/\btest\/[\w./-]+\.test\.ts\b/g)) {
        named.push(ref);
        if (!existsSync(join(REPO_ROOT, ref))) missing.push(`${f} names ${ref}`);
      }
    }
    assert.ok(named.some((r) => r === 'test/ops/operator.test.ts'), 'scripts/install-chromium.sh names the Web UI test');
    assert.deepEqual(missing, []);
  });
});

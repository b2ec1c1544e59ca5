import assert from 'node:assert/strict';

/** CI sets CI=true (.ci/run does): there, a tool a test needs is part of the run, not optional. */
export const ON_CI = process.env.CI === 'true';

/**
 * The `skip` option of a test that needs something this machine may lack: `missing` says what is
 * missing (false when nothing is). Off CI the test is skipped saying why; on CI it runs, and
 * {@link requirePresent} fails it on its first line.
 */
export function skipUnlessCi(missing: string | false): string | false {
  return missing && !ON_CI ? missing : false;
}

/** Fails the test when `missing` names something missing (only reached on CI; elsewhere the test was skipped). */
export function requirePresent(missing: string | false): void {
  if (missing) assert.fail(`${missing} (CI=true: a missing requirement fails the run instead of skipping)`);
}

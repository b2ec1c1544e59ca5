import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { planRestore } from '../../activities/backup/restoreFiles.ts';
import { planRetention } from '../../activities/backup/retention.ts';
import type { BackupSummary } from '../../activities/backup/catalog.ts';
import type { Manifest } from '../../activities/backup/layout.ts';
import { parseBackupInput } from '../../workflows/inputs/backup.ts';
import { parseRestoreInput } from '../../workflows/inputs/restore.ts';

function rejects(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure);
    assert.equal(err.type, 'InvalidArgument');
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, message);
    return true;
  });
}

describe('backup and restore inputs', () => {
  const ok = { name: 'nightly', sources: [{ type: 'files', name: 'models', path: '/var/models/' }], destination: '/var/backups' };

  it('fills defaults and normalises paths and store URLs', () => {
    assert.deepEqual(parseBackupInput(ok), {
      name: 'nightly',
      sources: [{ type: 'files', name: 'models', path: '/var/models' }],
      destination: 'file:///var/backups',
      retention: {},
      hooks: { pre: [], post: [] },
      verify: true,
    });
    const h = parseBackupInput({ ...ok, hooks: { pre: [{ name: 'q', http: { url: 'http://127.0.0.1:9400/cordon', tokenEnv: 'DRYDOCK_AGENT_TOKEN' } }] } }).hooks.pre[0];
    assert.deepEqual(h, { name: 'q', timeoutSeconds: 30, onError: 'fail', http: { url: 'http://127.0.0.1:9400/cordon', method: 'POST', tokenEnv: 'DRYDOCK_AGENT_TOKEN' } });
  });

  it('names the field of every bad input', () => {
    rejects(() => parseBackupInput({ ...ok, destination: 'gs://b/x' }), /^destination: unknown scheme 'gs:\/\/'/);
    rejects(() => parseBackupInput({ ...ok, destination: 'backups' }), /^destination: .*not a store URL/);
    rejects(() => parseBackupInput({ ...ok, name: 'Night Ly' }), /^name: /);
    rejects(() => parseBackupInput({ ...ok, sources: [{ type: 'tape', name: 'x' }] }), /^sources\[0\]\.type: expected 'files' or 'snapshot'/);
    rejects(() => parseBackupInput({ ...ok, sources: [{ type: 'files', name: 'x', path: 'rel' }] }), /^sources\[0\]\.path: 'rel' must be an absolute path/);
    rejects(() => parseBackupInput({ ...ok, sources: [ok.sources[0], ok.sources[0]] }), /^sources\[1\]\.name: 'models' is used twice/);
    rejects(() => parseBackupInput({ ...ok, sources: [{ type: 'snapshot', name: 'd' }] }), /^sources\[0\]\.pool: is required/);
    rejects(() => parseBackupInput({ ...ok, retention: { keepLast: 0 } }), /^retention\.keepLast: /);
    rejects(() => parseBackupInput({ ...ok, retention: { keepFirst: 1 } }), /^retention\.keepFirst: unknown field/);
    rejects(() => parseBackupInput({ ...ok, hooks: { pre: [{ name: 'x', exec: ['a'], http: { url: 'http://x' } }] } }), /^hooks\.pre\[0\]\.exec: give exactly one/);
    rejects(() => parseBackupInput({ ...ok, hooks: { post: [{ name: 'x', exec: ['a'], onError: 'ignore' }] } }), /^hooks\.post\[0\]\.onError: /);
    rejects(() => parseBackupInput({ ...ok, hooks: { pre: [{ name: 'x', http: { url: 'http://x', tokenEnv: 's3cr3t-token' } }] } }), /^hooks\.pre\[0\]\.http\.tokenEnv: expected the NAME/);
    rejects(() => parseRestoreInput({ backupId: 'nightly', store: '/s', destination: '/d' }), /^backupId: /);
    rejects(() => parseRestoreInput({ backupId: 'nightly/20260101T000000Z', store: '/s', destination: '/d/../etc' }), /^destination: .*'\.\.'/);
    rejects(() => parseRestoreInput({ backupId: 'nightly/20260101T000000Z', store: '/s' }), /^destination: is required/);
    rejects(() => parseRestoreInput({ backupId: 'nightly/20260101T000000Z', store: '/s', destination: '/d', snapshots: 'volume' }), /^snapshots: expected one of 'directory', 'disk'/);
    rejects(() => parseRestoreInput({ backupId: 'nightly/20260101T000000Z', store: '/s', destination: '/d', snapshots: true }), /^snapshots: /);
  });

  it('restores snapshot sources into the destination directory unless asked for new disks', () => {
    const r = { backupId: 'nightly/20260101T000000Z', store: '/s', destination: '/d' };
    assert.equal(parseRestoreInput(r).snapshots, 'directory');
    assert.equal(parseRestoreInput({ ...r, snapshots: 'disk' }).snapshots, 'disk');
  });
});

describe('retention plan', () => {
  const day = 86_400_000;
  const now = new Date('2026-06-30T00:00:00Z');
  const b = (daysAgo: number, phase: BackupSummary['phase'], verified?: boolean): BackupSummary => ({
    backupId: `n/${daysAgo}`,
    name: 'n',
    createdAt: new Date(now.getTime() - daysAgo * day).toISOString(),
    phase,
    verified,
    files: 1,
    bytes: 1,
    snapshots: 0,
  });

  it('keeps the newest good backup even when every backup is past maxAgeDays or beyond keepLast', () => {
    const backups = [b(40, 'Completed', true), b(30, 'Completed', false), b(20, 'PartiallyFailed', true), b(10, 'Completed', true), b(5, 'Completed', false)];
    const byAge = planRetention(backups, { maxAgeDays: 1 }, now);
    assert.equal(byAge.lastGood, 'n/10');
    assert.deepEqual(byAge.keep, ['n/10']);
    assert.deepEqual(byAge.remove.map((r) => r.backupId), ['n/5', 'n/20', 'n/30', 'n/40']);
    const byCount = planRetention(backups, { keepLast: 1 }, now);
    assert.deepEqual(byCount.keep, ['n/5', 'n/10']);
  });

  it('leaves incomplete (possibly running) backups alone and removes nothing without a policy', () => {
    const backups = [b(50, 'Incomplete'), b(3, 'Completed', true), b(2, 'Completed', true)];
    assert.deepEqual(planRetention(backups, { keepLast: 1 }, now).remove.map((r) => r.backupId), ['n/3']);
    assert.deepEqual(planRetention(backups, {}, now).remove, []);
  });
});

describe('restore plan', () => {
  const manifest = (path: string) =>
    ({ backupId: 'n/1', sources: [{ name: 's', files: [{ path, size: 1, sha256: 'a'.repeat(64), mode: 0o644, mtimeMs: 0 }] }] }) as unknown as Manifest;

  it('refuses manifest paths that leave the destination', () => {
    for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a//b', './a', 'a\\..\\b']) {
      assert.throws(() => planRestore(manifest(bad), '/restore'), (err: unknown) => err instanceof ApplicationFailure && err.type === 'UnsafeManifest', bad);
    }
    assert.equal(planRestore(manifest('a/b.txt'), '/restore')[0].target, '/restore/s/a/b.txt');
    assert.equal(planRestore(manifest('a/b.txt'), '/restore', 's')[0].target, '/restore/a/b.txt');
  });
});

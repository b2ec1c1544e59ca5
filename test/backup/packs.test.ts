import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createBackupActivities } from '../../activities/backup/index.ts';
import { objectKey, verificationKey, type Verification } from '../../activities/backup/layout.ts';
import { backupStamp } from '../../workflows/common/ids.ts';
import { packedBlob, packIndexes, treeDigest } from './helpers.ts';

const MIB = 1024 * 1024;
const acts = createBackupActivities({ pools: { get: () => assert.fail('no pools here') } });
const env = new MockActivityEnvironment();
const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args) as Promise<R>;

let clock = Date.UTC(2026, 0, 1);
/** copy + manifest + verification, as the backup workflow runs them (without Temporal). */
async function backup(store: string, src: string, name = 'p') {
  const at = new Date((clock += 60_000));
  const backupId = `${name}/${backupStamp(at)}`;
  const copy = await run(acts.copySource, { store, backupId, source: { name: 'm', path: src } });
  await run(acts.writeManifest, { store, backupId, name, workflowId: `backup/${backupId}`, runId: 'r', startedAt: at.toISOString(), phase: 'Completed' as const, sources: [{ name: 'm', type: 'files' as const, origin: src }], hooks: [] });
  const verification = await run(acts.verifyBackup, { store, backupId });
  return { backupId, copy, verification, at };
}

describe('packs: small files share pack objects, big files stay one object each', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'drydock-packs-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function tree(root: string): void {
    mkdirSync(join(root, 'small'), { recursive: true });
    for (let i = 0; i < 300; i++) writeFileSync(join(root, 'small', `s${i}.bin`), randomBytes(20_000 + i));
    writeFileSync(join(root, 'small/copy-of-s7.bin'), readFileSync(join(root, 'small/s7.bin')));
    writeFileSync(join(root, 'empty'), '');
    writeFileSync(join(root, 'big.bin'), randomBytes(3 * MIB + 5));
  }

  it('stores each distinct small file once in a pack, big files loose; a second backup copies nothing; restore is byte-identical', async () => {
    const src = join(dir, 'a-src');
    tree(src);
    const storeDir = join(dir, 'a-store');
    const store = `file://${storeDir}`;
    const first = await backup(store, src);
    assert.equal(first.copy.files, 303);
    assert.equal(first.copy.copiedFiles, 302, 'the duplicate is stored once');
    const blobs = packIndexes(storeDir).flatMap((x) => x.blobs.map((b) => b.sha256));
    assert.equal(blobs.length, 301, 'every distinct small file (the empty one too) is a blob in a pack');
    assert.equal(new Set(blobs).size, 301);
    assert.equal(readdirSync(join(storeDir, 'objects'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length, 1, 'the big file is its own object');
    assert.equal(first.verification.ok, true);

    const second = await backup(store, src);
    assert.deepEqual([second.copy.copiedBytes, second.copy.unchangedFiles], [0, 303]);
    // Touched but same content: read and hashed again, still not stored again.
    const later = new Date(Date.now() + 5000);
    for (let i = 0; i < 300; i += 10) utimesSync(join(src, 'small', `s${i}.bin`), later, later);
    utimesSync(join(src, 'big.bin'), later, later);
    const third = await backup(store, src);
    assert.deepEqual([third.copy.copiedBytes, third.copy.unchangedFiles], [0, 303 - 31]);
    assert.equal(packIndexes(storeDir).flatMap((x) => x.blobs).length, 301);

    const out = join(dir, 'a-out');
    await run(acts.restoreFiles, { store, backupId: third.backupId, destination: out, source: 'm', overwrite: false });
    assert.deepEqual(treeDigest(out), treeDigest(src));
  });

  it('verification reports a corrupted blob in a pack, a corrupted big object, and files whose pack is gone', async () => {
    const src = join(dir, 'b-src');
    tree(src);
    const storeDir = join(dir, 'b-store');
    const store = `file://${storeDir}`;
    const { backupId } = await backup(store, src);
    const sha = (rel: string) => treeDigest(src)[rel].split(' ')[0];

    const blob = packedBlob(storeDir, sha('small/s42.bin'));
    const bytes = readFileSync(blob.path);
    bytes[blob.offset + blob.size - 1] ^= 1; // the last byte of this blob, next to the first of the following one
    writeFileSync(blob.path, bytes);
    const bigPath = join(storeDir, objectKey(sha('big.bin')));
    const big = readFileSync(bigPath);
    big[MIB] ^= 1;
    writeFileSync(bigPath, big);
    const v = await run(acts.verifyBackup, { store, backupId });
    assert.equal(v.ok, false);
    assert.deepEqual(v.problems.map((p) => [p.path, p.problem]).sort(), [
      ['big.bin', 'checksum mismatch'],
      ['small/s42.bin', 'checksum mismatch'],
    ]);

    // Repaired big object; then a pack lost from the store: every file in it is reported missing (its index no longer counts).
    writeFileSync(bigPath, readFileSync(join(src, 'big.bin')));
    unlinkSync(blob.path);
    const lost = await run(acts.verifyBackup, { store, backupId });
    const record = JSON.parse(readFileSync(join(storeDir, verificationKey(backupId)), 'utf8')) as Verification;
    assert.equal(lost.ok, false);
    assert.equal(record.problems.length, 302, 'all 302 small files (one pack holds them all) are reported');
    assert.ok(record.problems.every((p) => p.problem === 'missing' && p.path !== 'big.bin'));
    // The next backup finds those blobs gone and stores them again, so it verifies.
    const healed = await backup(store, src);
    assert.equal(healed.verification.ok, true);
    assert.equal(healed.copy.copiedFiles, 301, 'the lost files were stored again, the big one was not');
  });

  it('retention drops unreferenced blobs: a pack nobody uses goes, a mostly dead one is rewritten, the kept backup still restores', async () => {
    const storeDir = join(dir, 'c-store');
    const store = `file://${storeDir}`;
    const src = join(dir, 'c-src');
    mkdirSync(src);
    const shared = randomBytes(1000);
    writeFileSync(join(src, 'shared.bin'), shared);
    for (let i = 0; i < 50; i++) writeFileSync(join(src, `old-${i}.bin`), randomBytes(30_000));
    const old = await backup(store, src);
    rmSync(src, { recursive: true });
    mkdirSync(src);
    writeFileSync(join(src, 'shared.bin'), shared);
    for (let i = 0; i < 10; i++) writeFileSync(join(src, `new-${i}.bin`), randomBytes(30_000));
    const kept = await backup(store, src);
    const oldPacks = packIndexes(storeDir).map((x) => x.pack);

    const r = await run(acts.pruneBackups, { store, name: 'p', retention: { keepLast: 1 }, now: new Date(kept.at.getTime() + 1000).toISOString() });
    assert.deepEqual(r.removed.map((x) => x.backupId), [old.backupId]);
    assert.equal(r.sweptObjects, 50, 'the 50 files only the old backup had');
    assert.equal(r.sweptBytes, 50 * 30_000);
    const left = packIndexes(storeDir);
    assert.deepEqual(left.flatMap((x) => x.blobs).length, 11, 'only the kept backup\'s blobs remain');
    for (const pack of oldPacks.filter((p) => !left.some((x) => x.pack === p))) {
      assert.equal(existsSync(join(storeDir, 'packs', pack.slice(0, 2), pack)), false, `rewritten pack ${pack} is gone`);
    }
    const out = join(dir, 'c-out');
    await run(acts.restoreFiles, { store, backupId: kept.backupId, destination: out, source: 'm', overwrite: false });
    assert.deepEqual(treeDigest(out), treeDigest(src));
    assert.equal((await run(acts.verifyBackup, { store, backupId: kept.backupId })).ok, true);
  });
});

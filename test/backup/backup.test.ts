import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { ScheduleNotFoundError, ScheduleOverlapPolicy, WorkflowFailedError } from '@temporalio/client';
import { execFileSync } from 'node:child_process';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { listBackups } from '../../activities/backup/catalog.ts';
import { recordingCommit, saveHistory } from '../../scripts/lib/histories.ts';
import { manifestKey, type Manifest } from '../../activities/backup/layout.ts';
import { FileStore, openStore, s3ClientFromEnv } from '../../activities/stores/index.ts';
import type { BackupResult, BackupStatus } from '../../workflows/backup.ts';
import type { BackupInput } from '../../workflows/inputs/backup.ts';
import type { RestoreResult } from '../../workflows/restore.ts';
import type { VerifyBackupResult } from '../../workflows/verifyBackup.ts';
import { spawnWorker, type WorkerProcess } from '../../scripts/lib/workers.ts';
import { startFleet, type TestFleet } from '../../scripts/lib/fleet.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { startMoto, type Moto } from '../helpers/moto.ts';
import { startDevServer, temporalBin } from '../../scripts/lib/temporal.ts';
import {
  createBackupSchedule,
  createVerifySchedule,
  deleteBackupSchedule,
  describeBackupSchedule,
  listBackupSchedules,
  pauseBackupSchedule,
  triggerBackupSchedule,
  unpauseBackupSchedule,
} from '../../scripts/schedules/backup.ts';
import { CommanderError } from 'commander';
import { registerBackupCommands } from '../../scripts/cli/backup.ts';
import { buildProgram } from '../../scripts/cli/main.ts';
import { CliError, EXIT } from '../../scripts/cli/runtime.ts';
import { activityAttempts } from '../helpers/history.ts';
import { makeTree, packedBlob, packIndexes, startBackup, startRestore, treeDigest } from './helpers.ts';

const TQ = 'backup-e2e';

/** Runs `drydock --json --address A --task-queue TQ ...args` in-process; returns the exit code it would have and stdout. */
async function cli(address: string, ...args: string[]): Promise<{ code: number; out: string }> {
  const program = buildProgram();
  if (!program.commands.some((c) => c.name() === 'backup')) registerBackupCommands(program);
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  const silent = process.stderr.write.bind(process.stderr);
  // Only the CLI's own text: the test runner talks to its parent over stdout in Buffers.
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => (typeof chunk === 'string' ? ((out += chunk), true) : write(chunk, ...rest))) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => (typeof chunk === 'string' ? true : silent(chunk, ...rest))) as typeof process.stderr.write;
  try {
    await program.parseAsync(['node', 'drydock', '--json', '--address', address, '--task-queue', TQ, ...args]);
    return { code: EXIT.ok, out };
  } catch (err) {
    if (err instanceof CliError) return { code: err.exitCode, out: out + err.message };
    if (err instanceof CommanderError) return { code: EXIT.badInput, out: out + err.message };
    throw err;
  } finally {
    process.stdout.write = write;
    process.stderr.write = silent;
  }
}

/**
 * With DRYDOCK_RECORD_HISTORIES=1, adds the run to the append-only replay corpus as a new file
 * (scripts/lib/histories.ts; never overwrites). The other types are recorded by `npm run record-histories`.
 */
function recordHistory(address: string, type: string, workflowId: string): void {
  if (!process.env.DRYDOCK_RECORD_HISTORIES) return;
  const scenario = { backup: ['files-backup', 'file:// backup of one files source, verified by restore'], restore: ['files-restore', 'restore of the file:// backup into an empty directory'], verifyBackup: ['schedule-verify-newest', 'a verify schedule restore-tests the newest backup of a name'] }[type]!;
  saveHistory(address, type, scenario[0], scenario[1], workflowId, recordingCommit());
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => assert.fail('expected the workflow to fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${String(err)}`);
  assert.ok(err.cause instanceof ApplicationFailure, `expected an ApplicationFailure cause, got ${String(err.cause)}`);
  return err.cause;
}

describe('backup and restore workflows on a real dev server (file:// and s3:// on moto)', () => {
  let env: TestWorkflowEnvironment;
  let moto: Moto;
  let fleet: TestFleet;
  let worker: WorkerProcess;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'drydock-backup-'));
    [env, moto, fleet] = await Promise.all([
      startDevServer(),
      startMoto(),
      startFleet({ pool: 'demo', nodes: 1 }),
    ]);
    // The worker process inherits these: S3 endpoint and (fake) credentials come from env only.
    Object.assign(process.env, { AWS_ENDPOINT_URL_S3: moto.endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' });
    // The backup hooks' control token (an operator-style token every agent's tokens file lists).
    process.env.DRYDOCK_HOOK_AGENT_TOKEN = fleet.token;
    await s3ClientFromEnv().send(new CreateBucketCommand({ Bucket: 'drydock-backups' }));
    worker = await spawnWorker(fleet, env.address, TQ);
  });
  after(async () => {
    await worker?.kill('SIGKILL');
    await fleet?.cleanup();
    await moto?.stop();
    await env?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const scheme of ['file', 's3'] as const) {
    it(`${scheme}: backs up, restores byte-identical, and a second backup of the unchanged tree copies nothing`, async () => {
      const src = join(dir, `${scheme}-src`);
      makeTree(src);
      const destination = scheme === 'file' ? `file://${dir}/${scheme}-store` : 's3://drydock-backups/team/a';
      const input: BackupInput = { name: `rt-${scheme}`, sources: [{ type: 'files', name: 'models', path: src }], destination };
      const h1 = await startBackup(env.client, TQ, input);
      const r1: BackupResult = await h1.result();
      assert.equal(r1.phase, 'Completed');
      assert.equal(r1.files, 8);
      assert.equal(r1.copiedBytes, r1.bytes, 'the first backup copies every byte');
      assert.equal(r1.verification?.ok, true);
      assert.deepEqual((await h1.describe()).searchAttributes.DrydockBackupPhase, ['Completed']);

      const store = openStore(destination);
      const manifest = JSON.parse(Buffer.from((await store.get(manifestKey(r1.backupId)))!).toString()) as Manifest;
      assert.equal(manifest.format, 'drydock-backup/v1');
      assert.equal(manifest.tool.name, 'drydock');
      assert.match(manifest.sources[0].version, /^[0-9a-f]{64}$/);
      const digest = treeDigest(src);
      for (const f of manifest.sources[0].files) assert.equal(digest[f.path].split(' ')[0], f.sha256, `manifest sha256 of ${f.path}`);

      const r2: BackupResult = await (await startBackup(env.client, TQ, input)).result();
      assert.equal(r2.copiedBytes, 0, 'unchanged files are not copied again');
      assert.notEqual(r2.backupId, r1.backupId);

      const out = join(dir, `${scheme}-restored`);
      const rh = await startRestore(env.client, TQ, { backupId: r1.backupId, store: destination, destination: out, source: 'models' });
      const rr: RestoreResult = await rh.result();
      assert.equal(rr.files, 8);
      assert.deepEqual(treeDigest(out), digest, 'restored tree is byte-identical, modes included');
      assert.deepEqual((await rh.describe()).searchAttributes.DrydockBackupPhase, ['Completed']);
      if (scheme === 'file') {
        recordHistory(env.address, 'backup', h1.workflowId);
        recordHistory(env.address, 'restore', rh.workflowId);
      }

      const listed = await listBackups(store, input.name);
      assert.deepEqual(listed.map((b) => [b.backupId, b.phase, b.verified]), [
        [r2.backupId, 'Completed', true],
        [r1.backupId, 'Completed', true],
      ]);
    });
  }

  it('restore refuses a non-empty destination unless overwrite, and manifest paths escaping the destination', async () => {
    const src = join(dir, 'guard-src');
    makeTree(src);
    const destination = `file://${dir}/guard-store`;
    const r: BackupResult = await (await startBackup(env.client, TQ, { name: 'guard', sources: [{ type: 'files', name: 'cfg', path: src }], destination })).result();
    const out = join(dir, 'guard-out');
    mkdirSync(out);
    writeFileSync(join(out, 'keep.txt'), 'mine');
    const refused = await failureOf((await startRestore(env.client, TQ, { backupId: r.backupId, store: destination, destination: out })).result());
    assert.equal(refused.type, 'DestinationNotEmpty');
    assert.match(refused.message, /overwrite/);
    const ok: RestoreResult = await (await startRestore(env.client, TQ, { backupId: r.backupId, store: destination, destination: out, overwrite: true })).result();
    assert.equal(ok.files, 8);
    assert.equal(readFileSync(join(out, 'keep.txt'), 'utf8'), 'mine');
    assert.deepEqual(treeDigest(join(out, 'cfg')), treeDigest(src));

    // A tampered manifest that climbs out of the destination.
    const store = new FileStore(join(dir, 'guard-store'));
    const m = JSON.parse(Buffer.from((await store.get(manifestKey(r.backupId)))!).toString()) as Manifest;
    m.sources[0].files[0].path = '../../escaped.txt';
    await store.put(manifestKey(r.backupId), Buffer.from(JSON.stringify(m)));
    const out2 = join(dir, 'guard-out2');
    const unsafe = await failureOf((await startRestore(env.client, TQ, { backupId: r.backupId, store: destination, destination: out2 })).result());
    assert.equal(unsafe.type, 'UnsafeManifest');
    assert.match(unsafe.message, /escapes the destination/);
    assert.equal(existsSync(join(dir, 'escaped.txt')), false);
    assert.equal(existsSync(out2), false, 'nothing was written');
  });

  it('verification finds a corrupted object; pruning then does not run, and restore refuses the bad file', async () => {
    const src = join(dir, 'corrupt-src');
    makeTree(src);
    const destination = `file://${dir}/corrupt-store`;
    const input: BackupInput = { name: 'corrupt', sources: [{ type: 'files', name: 'm', path: src }], destination, retention: { keepLast: 1 } };
    const good: BackupResult = await (await startBackup(env.client, TQ, input)).result();
    const store = new FileStore(join(dir, 'corrupt-store'));
    const manifest = JSON.parse(Buffer.from((await store.get(manifestKey(good.backupId)))!).toString()) as Manifest;
    const victim = manifest.sources[0].files.find((f) => f.path === 'models/llama/part-2.bin')!;
    // Small files live as blobs inside a pack: flip one byte of this file's blob, and only this file must be reported.
    const blob = packedBlob(join(dir, 'corrupt-store'), victim.sha256);
    const bytes = readFileSync(blob.path);
    bytes[blob.offset + 100] ^= 0xff;
    writeFileSync(blob.path, bytes);

    const h = await startBackup(env.client, TQ, input);
    const err = await failureOf(h.result());
    assert.equal(err.type, 'VerificationFailed');
    assert.match(err.message, /m\/models\/llama\/part-2\.bin \(checksum mismatch\)/);
    assert.match(err.message, /found 1 bad object/, 'the other files of the same pack still verify');
    assert.deepEqual((await h.describe()).searchAttributes.DrydockBackupPhase, ['Failed']);
    const listed = await listBackups(store, 'corrupt');
    assert.equal(listed.length, 2, 'keepLast 1 did not prune after a failed verification');
    assert.deepEqual(listed.map((b) => b.verified), [false, true]);

    // The same check on its own (what a verification schedule runs) reports the bad file too.
    const verr = await failureOf(
      env.client.workflow.execute('verifyBackup', { taskQueue: TQ, workflowId: 'verify/corrupt/now', args: [{ store: destination, name: 'corrupt', backupId: good.backupId }] }),
    );
    assert.equal(verr.type, 'VerificationFailed');
    assert.match(verr.message, /part-2\.bin \(checksum mismatch\)/);

    const rerr = await failureOf((await startRestore(env.client, TQ, { backupId: good.backupId, store: destination, destination: join(dir, 'corrupt-out') })).result());
    assert.equal(rerr.type, 'ChecksumMismatch');
    assert.equal(existsSync(join(dir, 'corrupt-out/m/models/llama/part-2.bin')), false, 'the corrupt file was not written');
    assert.equal(existsSync(join(dir, 'corrupt-out/m/models/llama/part-1.bin')), true);
  });

  it('retention keepLast removes old backups and their unreferenced objects; the kept ones still restore', async () => {
    const src = join(dir, 'ret-src');
    const destination = `file://${dir}/ret-store`;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      rmSync(src, { recursive: true, force: true });
      makeTree(src, { seed: String(i), files: 2 });
      const r: BackupResult = await (await startBackup(env.client, TQ, { name: 'ret', sources: [{ type: 'files', name: 'm', path: src }], destination, retention: { keepLast: 2 } })).result();
      ids.push(r.backupId);
      if (i === 2) {
        assert.deepEqual(r.prune?.removed.map((x) => x.backupId), [ids[0]]);
        assert.ok(r.prune!.sweptObjects >= 3, `objects only the first backup used were swept (${r.prune!.sweptObjects})`);
      }
    }
    const store = new FileStore(join(dir, 'ret-store'));
    assert.deepEqual((await listBackups(store, 'ret')).map((b) => b.backupId), [ids[2], ids[1]]);
    const out = join(dir, 'ret-out');
    await (await startRestore(env.client, TQ, { backupId: ids[1], store: destination, destination: out })).result();
    assert.equal(readFileSync(join(out, 'm/config/pool.yaml'), 'utf8'), 'name: demo\nseed: 1\n');
  });

  it('hooks run before and after; a failing continue-hook gives PartiallyFailed, a failing fail-hook fails the backup but post hooks still run', async () => {
    const src = join(dir, 'hook-src');
    makeTree(src, { files: 1 });
    const log = join(dir, 'hooks.log');
    const sh = (line: string) => ['/bin/sh', '-c', `echo ${line} >> ${log}`];
    const destination = `file://${dir}/hook-store`;
    const base = { sources: [{ type: 'files' as const, name: 'm', path: src }], destination };
    const r: BackupResult = await (
      await startBackup(env.client, TQ, {
        ...base,
        name: 'hooks-a',
        hooks: { pre: [{ name: 'quiesce', exec: sh('pre') }], post: [{ name: 'broken', exec: ['/bin/false'], onError: 'continue' }, { name: 'resume', exec: sh('post') }] },
      })
    ).result();
    assert.equal(r.phase, 'PartiallyFailed');
    assert.equal(readFileSync(log, 'utf8'), 'pre\npost\n');

    const h = await startBackup(env.client, TQ, {
      ...base,
      name: 'hooks-b',
      hooks: { pre: [{ name: 'slow', exec: ['/bin/sleep', '30'], timeoutSeconds: 1 }], post: [{ name: 'resume', exec: sh('post-b') }] },
    });
    const err = await failureOf(h.result());
    assert.equal(err.type, 'HookFailed');
    assert.match(err.message, /pre-hook 'slow' failed: .*timed out after 1s/);
    assert.match(readFileSync(log, 'utf8'), /post-b/);
    assert.deepEqual((await listBackups(new FileStore(join(dir, 'hook-store')), 'hooks-b')).map((b) => b.phase), ['Incomplete'], 'no manifest was written');
  });

  /** Whether the slow hook's `sleep 61.5` still runs (found in /proc by its unusual argument). */
  const sleepers = () =>
    readdirSync('/proc').some((p) => {
      try {
        return /^\d+$/.test(p) && readFileSync(`/proc/${p}/cmdline`, 'utf8') === '/bin/sleep\x0061.5\x00';
      } catch {
        return false;
      }
    });

  it('a cancelled backup still runs its post hooks and ends Failed, without a manifest', async () => {
    const src = join(dir, 'cancel-src');
    makeTree(src, { files: 1 });
    const log = join(dir, 'cancel.log');
    const h = await startBackup(env.client, TQ, {
      name: 'cancelled',
      sources: [{ type: 'files', name: 'm', path: src }],
      destination: `file://${dir}/cancel-store`,
      hooks: { pre: [{ name: 'slow-quiesce', exec: ['/bin/sleep', '61.5'], timeoutSeconds: 120 }], post: [{ name: 'resume', exec: ['/bin/sh', '-c', `echo resumed > ${log}`] }] },
    });
    await waitFor(async () => (await h.query<BackupStatus>('status').catch(() => undefined))?.step === 'pre-hooks', 30_000, 'the pre hook to run');
    // The hook's process really runs before the cancel, so its absence after is the cancel's doing.
    await waitFor(sleepers, 30_000, 'the slow hook process to start');
    await h.cancel();
    await assert.rejects(h.result(), (err: unknown) => err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure);
    assert.equal(readFileSync(log, 'utf8'), 'resumed\n');
    assert.deepEqual((await h.describe()).searchAttributes.DrydockBackupPhase, ['Failed']);
    // The running hook was stopped too (it heartbeats, so the worker learns of the cancellation).
    await waitFor(() => !sleepers(), 15_000, 'the cancelled hook process to be killed');
    assert.deepEqual((await listBackups(new FileStore(join(dir, 'cancel-store')), 'cancelled')).map((b) => b.phase), ['Incomplete']);
  });

  it('http hooks quiesce a node through its gpu-agent (token from the worker env) and resume it after', async () => {
    const src = join(dir, 'agent-hook-src');
    makeTree(src, { files: 1 });
    const agentUrl = (await fleet.provider.describe(fleet.nodeIds[0]))!.agentUrl!;
    const destination = `file://${dir}/agent-hook-store`;
    const hook = (name: string, path: string, tokenEnv?: string) => ({ name, http: { url: `${agentUrl}${path}`, ...(tokenEnv ? { tokenEnv } : {}) }, timeoutSeconds: 10 });
    const r: BackupResult = await (
      await startBackup(env.client, TQ, {
        name: 'agent-hooks',
        sources: [{ type: 'files', name: 'm', path: src }],
        destination,
        hooks: { pre: [hook('cordon', '/cordon', 'DRYDOCK_HOOK_AGENT_TOKEN')], post: [hook('uncordon', '/uncordon', 'DRYDOCK_HOOK_AGENT_TOKEN')] },
      })
    ).result();
    assert.equal(r.phase, 'Completed');
    const manifest = JSON.parse(readFileSync(join(dir, 'agent-hook-store', manifestKey(r.backupId)), 'utf8')) as Manifest;
    assert.deepEqual(manifest.hooks.map((h) => [h.when, h.name, h.ok]), [['pre', 'cordon', true], ['post', 'uncordon', true]]);
    const state = (await (await fetch(`${agentUrl}/drain`, { headers: { authorization: `Bearer ${fleet.token}` } })).json()) as { state: string };
    assert.equal(state.state, 'active', 'the node serves again after the backup');
    // Without the token the agent refuses, and the backup says so.
    const err = await failureOf((await startBackup(env.client, TQ, { name: 'agent-hooks', sources: [{ type: 'files', name: 'm', path: src }], destination, hooks: { pre: [hook('cordon', '/cordon')] } })).result());
    assert.equal(err.type, 'HookFailed');
    assert.match(err.message, /answered 401/);
  });

  it('snapshots the data disks of a local pool; retention deletes the snapshots of pruned backups', async () => {
    const destination = `file://${dir}/snap-store`;
    const input: BackupInput = { name: 'snaps', sources: [{ type: 'snapshot', name: 'disks', pool: 'demo' }], destination, retention: { keepLast: 1 } };
    const r1: BackupResult = await (await startBackup(env.client, TQ, input)).result();
    assert.equal(r1.snapshots, 1);
    const snap1 = r1.sources[0].snapshots![0];
    assert.equal(snap1.nodeId, fleet.nodeIds[0]);
    assert.equal(snap1.state, 'ready');
    assert.ok(existsSync(fleet.provider.snapshotDataDir(snap1.snapshotId)), 'the snapshot holds a copy of the node data dir');
    const r2: BackupResult = await (await startBackup(env.client, TQ, input)).result();
    assert.deepEqual(r2.prune?.removed.map((x) => x.backupId), [r1.backupId]);
    const left = (await fleet.provider.listSnapshots()).map((s) => s.id);
    assert.deepEqual(left, [r2.sources[0].snapshots![0].snapshotId], 'the pruned backup\'s snapshot was deleted');

    // Restoring the snapshot source gives back the node's data directory as it was.
    const out = join(dir, 'snap-out');
    const rr: RestoreResult = await (await startRestore(env.client, TQ, { backupId: r2.backupId, store: destination, destination: out })).result();
    const node = fleet.nodeIds[0];
    assert.deepEqual(rr.snapshots.map((s) => [s.source, s.nodeId, s.restoredTo]), [['disks', node, join(out, 'disks', node)]]);
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'disks', node, 'node.json'), 'utf8')).id, node);
    assert.deepEqual(rr.disks, []);

    // Asked for new disks instead: one local data directory per snapshot, holding the node's data.
    const rd: RestoreResult = await (await startRestore(env.client, TQ, { backupId: r2.backupId, store: destination, destination: join(dir, 'snap-disk-out'), snapshots: 'disk' })).result();
    assert.equal(rd.disks.length, 1);
    assert.equal(rd.snapshots[0].diskId, rd.disks[0]);
    assert.deepEqual(JSON.parse(readFileSync(join(rd.snapshots[0].restoredTo!, 'node.json'), 'utf8')).id, node);
  });

  it('a worker SIGKILLed mid-copy: the retried copy resumes, no file is copied twice, one consistent manifest', async () => {
    const src = join(dir, 'crash-src');
    mkdirSync(src);
    // 128 MiB of small files: they go into packs of 8 MiB, so the kill comes with some packs stored and most still to go.
    const N = 4000;
    const SIZE = 32 * 1024;
    for (let i = 0; i < N; i++) writeFileSync(join(src, `f${String(i).padStart(5, '0')}.bin`), randomBytes(SIZE));
    const storeDir = join(dir, 'crash-store');
    const packFiles = () => {
      const packsDir = join(storeDir, 'packs');
      return existsSync(packsDir) ? readdirSync(packsDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && !e.name.includes('.partial-')).map((e) => join(e.parentPath, e.name)) : [];
    };
    const h = await startBackup(env.client, TQ, { name: 'crash', sources: [{ type: 'files', name: 'm', path: src }], destination: `file://${storeDir}` });
    const staged = () => (existsSync(join(storeDir, 'backups/crash')) ? readdirSync(join(storeDir, 'backups/crash'), { recursive: true }).filter((n) => String(n).includes('/staging/m/chunk-')).length : 0);
    // Mid-copy: some entries saved to staging (they are saved only once their pack is stored), most files still to go.
    await waitFor(() => staged() > 0 && packIndexes(storeDir).length > 0, 60_000, 'the copy to be under way');
    await worker.kill('SIGKILL');
    // Every pack stored (with its index) before the crash, by inode: a re-copy would write it again (new inode).
    const indexedBefore = new Set(packIndexes(storeDir).map((x) => x.pack));
    const before = new Map(packFiles().filter((p) => indexedBefore.has(basename(p))).map((p) => [p, statSync(p).ino]));
    const blobsBefore = packIndexes(storeDir).reduce((n, x) => n + x.blobs.length, 0);
    assert.ok(before.size > 0 && blobsBefore < N, `killed mid-copy (${blobsBefore} of ${N} files stored, in ${before.size} packs)`);
    worker = await spawnWorker(fleet, env.address, TQ);
    const r: BackupResult = await h.result();
    assert.equal(r.phase, 'Completed');
    assert.equal(r.files, N);
    assert.equal(r.verification?.ok, true, 'the restore test passed');
    assert.ok(r.sources[0].copy!.resumedFiles > 0, 'the retry reused the entries staged before the crash');
    for (const [path, ino] of before) assert.equal(statSync(path).ino, ino, `${path} was not copied again`);
    // Each file's content is stored exactly once: no blob in two packs, and every file has its blob.
    const stored = packIndexes(storeDir).flatMap((x) => x.blobs.map((b) => b.sha256));
    assert.equal(stored.length, N, 'one blob per distinct file, nothing extra');
    assert.equal(new Set(stored).size, N, 'no blob stored twice');
    const indexed = new Set(packIndexes(storeDir).map((x) => x.pack));
    // A kill between writing a pack and its index leaves that pack without index (its files go into a later pack; retention sweeps it).
    assert.ok(packFiles().filter((p) => !indexed.has(basename(p))).length <= 1, 'at most the pack being written at the kill is left without index');
    assert.equal(readdirSync(storeDir, { recursive: true }).filter((n) => String(n).includes('.partial-')).length, 0, 'no partial left behind');
    const manifest = JSON.parse(readFileSync(join(storeDir, manifestKey(r.backupId)), 'utf8')) as Manifest;
    assert.equal(new Set(manifest.sources[0].files.map((f) => f.path)).size, N, 'each file exactly once in the manifest');
    assert.deepEqual(new Set(manifest.sources[0].files.map((f) => f.sha256)), new Set(stored), 'the manifest refers to exactly the stored blobs');
    assert.ok((await activityAttempts(h)).copySource >= 2, 'the copy activity (copySource) ran a second attempt');
  });

  it('a schedule created and triggered through the server runs a backup; pause, unpause and delete work', async () => {
    const src = join(dir, 'sched-src');
    makeTree(src, { files: 1 });
    const destination = `file://${dir}/sched-store`;
    const id = await createBackupSchedule(env.client, { input: { name: 'nightly', sources: [{ type: 'files', name: 'm', path: src }], destination }, every: '24h', taskQueue: TQ });
    assert.equal(id, 'backup/nightly');
    // Schedule lists come from the server's visibility store, which catches up a moment after a change.
    await waitFor(() => /backup\/nightly/.test(execFileSync(temporalBin(), ['schedule', 'list', '--address', env.address], { encoding: 'utf8' })), 30_000, '`temporal schedule list` to show it');
    const desc = await describeBackupSchedule(env.client, 'nightly');
    assert.equal(desc.policies.overlap, ScheduleOverlapPolicy.SKIP);

    await triggerBackupSchedule(env.client, 'nightly');
    let workflowId = '';
    await waitFor(async () => {
      const action = (await describeBackupSchedule(env.client, 'nightly')).info.recentActions[0];
      workflowId = action?.action.type === 'startWorkflow' ? action.action.workflow.workflowId : '';
      return !!workflowId;
    }, 30_000, 'the schedule to start a backup');
    assert.match(workflowId, /^backup\/nightly-\d{4}-\d{2}-\d{2}T/);
    const r: BackupResult = await env.client.workflow.getHandle(workflowId).result();
    assert.equal(r.phase, 'Completed');
    assert.match(r.backupId, /^nightly\/\d{8}T\d{6}Z$/);
    assert.deepEqual((await listBackups(new FileStore(join(dir, 'sched-store')), 'nightly')).map((b) => b.backupId), [r.backupId]);

    // A second schedule restore-tests the newest backup of the name.
    assert.equal(await createVerifySchedule(env.client, { input: { store: destination, name: 'nightly' }, every: '24h', taskQueue: TQ }), 'verify/nightly');
    await triggerBackupSchedule(env.client, 'nightly', 'verify');
    let verifyId = '';
    await waitFor(async () => {
      const action = (await describeBackupSchedule(env.client, 'nightly', 'verify')).info.recentActions[0];
      verifyId = action?.action.type === 'startWorkflow' ? action.action.workflow.workflowId : '';
      return !!verifyId;
    }, 30_000, 'the verification schedule to start');
    const v: VerifyBackupResult = await env.client.workflow.getHandle(verifyId).result();
    assert.deepEqual([v.backupId, v.ok, v.files], [r.backupId, true, 4]);
    recordHistory(env.address, 'verifyBackup', verifyId);
    await deleteBackupSchedule(env.client, 'nightly', 'verify');

    await pauseBackupSchedule(env.client, 'nightly');
    assert.equal((await describeBackupSchedule(env.client, 'nightly')).state.paused, true);
    await unpauseBackupSchedule(env.client, 'nightly');
    assert.equal((await describeBackupSchedule(env.client, 'nightly')).state.paused, false);
    let ids: string[] = [];
    await waitFor(async () => ((ids = (await listBackupSchedules(env.client)).map((s) => s.scheduleId)), ids.length === 1), 30_000, 'the schedule list to drop the deleted verification schedule');
    assert.deepEqual(ids, ['backup/nightly']);
    await deleteBackupSchedule(env.client, 'nightly');
    await assert.rejects(describeBackupSchedule(env.client, 'nightly'), ScheduleNotFoundError);
  });

  it('drydock backup run|list|restore|schedule: results as JSON, exit 0 / 1 / 2 / 3', async () => {
    const src = join(dir, 'cli-src');
    makeTree(src, { files: 2 });
    const dest = `file://${dir}/cli-store`;
    const run = await cli(env.address, 'backup', 'run', '--name', 'cli', '--source', `m=${src}`, '--dest', dest, '--keep-last', '3', '--wait');
    assert.equal(run.code, 0, run.out);
    const backupId = (JSON.parse(run.out) as { result: BackupResult }).result.backupId;
    const list = await cli(env.address, 'backup', 'list', '--store', dest);
    assert.equal(list.code, 0);
    assert.deepEqual((JSON.parse(list.out) as { backups: { backupId: string; phase: string; verified: boolean }[] }).backups.map((b) => [b.backupId, b.phase, b.verified]), [[backupId, 'Completed', true]]);
    const out = join(dir, 'cli-out');
    const restored = await cli(env.address, 'backup', 'restore', '--store', dest, '--backup', backupId, '--to', out, '--source', 'm', '--wait');
    assert.equal(restored.code, 0, restored.out);
    assert.deepEqual(treeDigest(out), treeDigest(src));
    assert.equal((await cli(env.address, 'backup', 'verify', '--store', dest, '--name', 'cli', '--wait')).code, 0);
    const again = await cli(env.address, 'backup', 'restore', '--store', dest, '--backup', backupId, '--to', out, '--source', 'm', '--wait');
    assert.equal(again.code, 1, 'a failed workflow (destination not empty) exits 1');

    assert.equal((await cli(env.address, 'backup', 'run', '--name', 'cli', '--source', 'm=relative/dir', '--dest', dest)).code, 2);
    assert.equal((await cli(env.address, 'backup', 'run', '--name', 'cli', '--source', `m=${src}`, '--dest', 'gs://b/x')).code, 2);
    assert.equal((await cli('127.0.0.1:1', 'backup', 'run', '--name', 'cli', '--source', `m=${src}`, '--dest', dest)).code, 3);

    const created = await cli(env.address, 'backup', 'schedule', 'create', '--name', 'clis', '--every', '6h', '--source', `m=${src}`, '--dest', dest);
    assert.equal(created.code, 0, created.out);
    const listsClis = async () => (JSON.parse((await cli(env.address, 'backup', 'schedule', 'list')).out) as { schedules: { scheduleId: string }[] }).schedules.some((x) => x.scheduleId === 'backup/clis');
    await waitFor(listsClis, 30_000, '`drydock backup schedule list` to show backup/clis');
    assert.equal((await cli(env.address, 'backup', 'schedule', 'pause', 'clis')).code, 0);
    assert.equal((await cli(env.address, 'backup', 'schedule', 'unpause', 'clis')).code, 0);
    assert.equal((await cli(env.address, 'backup', 'schedule', 'backfill', 'clis', '--from', '2026-01-01T00:00:00Z', '--to', '2026-01-01T00:00:01Z')).code, 0);
    assert.equal((await cli(env.address, 'backup', 'schedule', 'delete', 'clis')).code, 0);
    assert.equal((await cli(env.address, 'backup', 'schedule', 'pause', 'clis')).code, 2, 'an unknown schedule is bad input');
    assert.equal((await cli(env.address, 'backup', 'schedule', 'create', '--name', 'x', '--every', 'often', '--source', `m=${src}`, '--dest', dest)).code, 2);
  });

  it('rejects bad inputs with InvalidArgument naming the field', async () => {
    const ok = { name: 'bad', sources: [{ type: 'files', name: 'm', path: '/tmp' }], destination: `file://${dir}/bad` };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...ok, destination: 'gs://bucket/x' }, /^destination: unknown scheme 'gs:\/\/'/],
      [{ ...ok, sources: [{ type: 'files', name: 'm', path: '/data/../etc' }] }, /^sources\[0\]\.path: .*'\.\.'/],
      [{ ...ok, sources: [{ type: 'files', name: 'm' }] }, /^sources\[0\]\.path: is required/],
      [{ ...ok, sources: [] }, /^sources: expected a non-empty list/],
      [{ sources: ok.sources, destination: ok.destination }, /^name: is required/],
    ];
    for (const [input, message] of cases) {
      const err = await failureOf((await startBackup(env.client, TQ, input as unknown as BackupInput)).result());
      assert.equal(err.type, 'InvalidArgument');
      assert.match(err.message, message);
    }
    const rerr = await failureOf(
      (await startRestore(env.client, TQ, { backupId: 'bad/20260101T000000Z', store: 'ftp://x', destination: join(dir, 'x') })).result(),
    );
    assert.match(rerr.message, /^store: unknown scheme/);
  });
});

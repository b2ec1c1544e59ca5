import { readFileSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { HookConfig, RetentionInput } from '../../workflows/inputs/backup.ts';
import type { SnapshotRestoreMode } from '../../workflows/inputs/restore.ts';
import { FileStore } from '../stores/file.ts';
import { openStore } from '../stores/index.ts';
import { listBackups, type BackupSummary } from './catalog.ts';
import { copySource, readStaging } from './copy.ts';
import { runHook } from './hooks.ts';
import {
  backupPrefix,
  MANIFEST_FORMAT,
  manifestKey,
  readJson,
  startedKey,
  verificationKey,
  writeJson,
  type HookRecord,
  type Manifest,
  type ManifestSource,
  type SnapshotRecord,
  type Verification,
  type VerifyProblem,
} from './layout.ts';
import { BlobReader, sweepUnreferenced } from './packs.ts';
import { isEmptyDir, loadManifest, planRestore, restoreOne } from './restoreFiles.ts';
import { planRetention } from './retention.ts';
import { yielder } from './tree.ts';
import { backupLabel, providerOf, snapshotSource, TAG_BACKUP, type ProviderLookup } from './snapshots.ts';
import { createHash } from 'node:crypto';

const TOOL_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
/** An incomplete backup younger than this may still be running: object sweeps wait for it. */
const IN_PROGRESS_GRACE_MS = 24 * 3600_000;

export interface BackupActivityDeps {
  pools: ProviderLookup;
}

export interface WriteManifestInput {
  store: string;
  backupId: string;
  name: string;
  workflowId: string;
  runId: string;
  startedAt: string;
  phase: Manifest['phase'];
  sources: { name: string; type: 'files' | 'snapshot'; origin: string; snapshots?: SnapshotRecord[]; error?: string }[];
  hooks: HookRecord[];
}

export interface VerifyResult {
  ok: boolean;
  files: number;
  bytes: number;
  problems: VerifyProblem[];
}

export interface PruneInput {
  store: string;
  name: string;
  retention: RetentionInput;
  /** The workflow's clock, so ages are judged the same on every retry. */
  now: string;
}

export interface PruneResult {
  removed: { backupId: string; reason: string }[];
  lastGood?: string;
  sweptObjects: number;
  sweptBytes: number;
  /** Why the object sweep did not run, when it did not. */
  sweepSkipped?: string;
}

/** What became of one snapshot on restore: a new disk, a copy (local provider), or how to make a disk from it. */
export interface SnapshotRestore {
  source: string;
  nodeId: string;
  snapshotId: string;
  /** The disk made from the snapshot (`snapshots: 'disk'`). */
  diskId?: string;
  restoredTo?: string;
  hint?: string;
}

export interface RestoreRequest {
  store: string;
  backupId: string;
  destination: string;
  source?: string;
  overwrite: boolean;
  /** Default `directory`. */
  snapshots?: SnapshotRestoreMode;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function createBackupActivities({ pools }: BackupActivityDeps) {
  return {
    copySource,
    runHook: (hook: HookConfig) => runHook(hook),
    snapshotSource: (input: Parameters<typeof snapshotSource>[1]) => snapshotSource(pools, input),

    /** Marks the backup as started; until its manifest exists it shows as Incomplete. */
    async beginBackup(input: { store: string; backupId: string; workflowId: string; startedAt: string }): Promise<void> {
      const store = openStore(input.store);
      if (await store.head(manifestKey(input.backupId))) {
        throw ApplicationFailure.nonRetryable(`backup ${input.backupId} already has a manifest in ${store.uri}`, 'BackupExists');
      }
      await writeJson(store, startedKey(input.backupId), input);
    },

    /** Assembles the manifest from the staged entries and writes it: the last write of a backup. */
    async writeManifest(input: WriteManifestInput): Promise<Manifest['totals']> {
      const store = openStore(input.store);
      const sources: ManifestSource[] = [];
      for (const s of input.sources) {
        if (s.type === 'files' && !s.error) {
          const files = [...(await readStaging(store, input.backupId, s.name)).entries.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
          const version = sha256(files.map((f) => `${f.path}\0${f.size}\0${f.sha256}\n`).join(''));
          sources.push({ name: s.name, type: s.type, origin: s.origin, version, files, snapshots: [], bytes: files.reduce((n, f) => n + f.size, 0) });
        } else {
          const snapshots = s.snapshots ?? [];
          const version = sha256(snapshots.map((x) => x.snapshotId).join('\n'));
          sources.push({ name: s.name, type: s.type, origin: s.origin, version, files: [], snapshots, bytes: 0, ...(s.error ? { error: s.error } : {}) });
        }
      }
      const manifest: Manifest = {
        format: MANIFEST_FORMAT,
        backupId: input.backupId,
        name: input.name,
        workflowId: input.workflowId,
        runId: input.runId,
        startedAt: input.startedAt,
        completedAt: new Date().toISOString(),
        phase: input.phase,
        tool: { name: 'drydock', version: TOOL_VERSION },
        sources,
        hooks: input.hooks,
        totals: {
          files: sources.reduce((n, s) => n + s.files.length, 0),
          bytes: sources.reduce((n, s) => n + s.bytes, 0),
          snapshots: sources.reduce((n, s) => n + s.snapshots.length, 0),
        },
      };
      await writeJson(store, manifestKey(input.backupId), manifest);
      return manifest.totals;
    },

    /** The newest complete backup of a name (for verification on a schedule). */
    async latestBackup(input: { store: string; name: string }): Promise<string> {
      const store = openStore(input.store);
      const newest = (await listBackups(store, input.name)).find((b) => b.phase !== 'Incomplete');
      if (!newest) throw ApplicationFailure.nonRetryable(`no complete backup named '${input.name}' in ${store.uri}`, 'BackupNotFound');
      return newest.backupId;
    },

    /** Restores every file into a scratch directory, checking size and sha256, and records the outcome. */
    async verifyBackup(input: { store: string; backupId: string }): Promise<VerifyResult> {
      const ctx = Context.current();
      const store = openStore(input.store);
      const manifest = await loadManifest(store, input.backupId);
      const scratch = await mkdtemp(join(process.env.DRYDOCK_SCRATCH_DIR ?? tmpdir(), 'drydock-verify-'));
      try {
        const items = planRestore(manifest, scratch);
        const problems: VerifyProblem[] = [];
        const dirs = new Set<string>();
        let bytes = 0;
        const breathe = yielder();
        const blobs = new BlobReader(store);
        for (const [i, item] of items.entries()) {
          await breathe();
          ctx.cancellationSignal.throwIfAborted();
          const p = await restoreOne(store, blobs, item, scratch, dirs);
          if (p) problems.push(p);
          bytes += item.entry.size;
          ctx.heartbeat({ filesDone: i + 1, filesTotal: items.length, bytesDone: bytes, problems: problems.length });
        }
        const result: VerifyResult = { ok: problems.length === 0, files: items.length, bytes, problems };
        const record: Verification = { backupId: input.backupId, verifiedAt: new Date().toISOString(), ...result };
        await writeJson(store, verificationKey(input.backupId), record);
        return { ...result, problems: problems.slice(0, 50) };
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    },

    /**
     * Deletes backups of this name that the retention policy lets go (never the newest good one),
     * their snapshots, and then objects no remaining backup refers to.
     */
    async pruneBackups(input: PruneInput): Promise<PruneResult> {
      const store = openStore(input.store);
      const all = await listBackups(store);
      const plan = planRetention(all.filter((b) => b.name === input.name), input.retention, new Date(input.now));
      for (const r of plan.remove) {
        const manifest = await readJson<Manifest>(store, manifestKey(r.backupId));
        for (const snap of manifest?.sources.flatMap((s) => s.snapshots) ?? []) {
          await providerOf(pools, snap.pool).deleteSnapshot(snap.snapshotId);
        }
        // Manifest first, so a crash half-way leaves an incomplete backup, never a manifest without its data.
        await store.remove(manifestKey(r.backupId));
        for (const key of await store.list(backupPrefix(r.backupId))) await store.remove(key);
      }
      const result: PruneResult = { removed: plan.remove, lastGood: plan.lastGood, sweptObjects: 0, sweptBytes: 0 };
      const remaining = all.filter((b) => !plan.remove.some((r) => r.backupId === b.backupId));
      const running = remaining.filter((b) => b.phase === 'Incomplete' && Date.now() - new Date(b.createdAt).getTime() < IN_PROGRESS_GRACE_MS);
      if (running.length) {
        result.sweepSkipped = `backups still being written: ${running.map((b) => b.backupId).join(', ')}`;
        return result;
      }
      const swept = await sweepUnreferenced(store, await referencedBlobs(store, remaining));
      result.sweptObjects = swept.objects;
      result.sweptBytes = swept.bytes;
      if (store instanceof FileStore) for (const p of ['objects/', 'packs/', 'index/']) await store.sweepPartials(p);
      return result;
    },

    /** Checks a restore can go ahead; returns what it will write. Runs once, before any write. */
    async prepareRestore(input: RestoreRequest): Promise<{ files: number; bytes: number; sources: string[]; snapshots: number }> {
      const store = openStore(input.store);
      const manifest = await loadManifest(store, input.backupId);
      const items = planRestore(manifest, input.destination, input.source);
      if (!input.overwrite && !(await isEmptyDir(input.destination))) {
        throw ApplicationFailure.nonRetryable(
          `destination: ${input.destination} is not empty; restore into an empty directory or pass overwrite: true`,
          'DestinationNotEmpty',
        );
      }
      const snapshotSources = manifest.sources.filter((s) => s.type === 'snapshot' && (!input.source || s.name === input.source));
      return {
        files: items.length,
        bytes: items.reduce((n, i) => n + i.entry.size, 0),
        sources: [...new Set([...items.map((i) => i.source), ...snapshotSources.map((s) => s.name)])],
        snapshots: snapshotSources.reduce((n, s) => n + s.snapshots.length, 0),
      };
    },

    /**
     * Snapshot sources. With `snapshots: 'disk'` a new disk is made from each snapshot, keyed by this
     * workflow run, source and node, so a retried activity finds the disks it made. Otherwise a local
     * snapshot (a copy of the node's data directory) is copied to destination/<source>/<node>, and for
     * cloud snapshots the result says how to make a disk from them.
     */
    async restoreSnapshots(input: RestoreRequest): Promise<SnapshotRestore[]> {
      const manifest = await loadManifest(openStore(input.store), input.backupId);
      const info = Context.current().info;
      // Standalone activities have no workflow: their own id keeps retries on the same disks.
      const runKey = info.workflowExecution ? `${info.workflowExecution.workflowId}/${info.workflowExecution.runId}` : `activity/${info.activityId}`;
      const out: SnapshotRestore[] = [];
      for (const s of manifest.sources.filter((x) => x.type === 'snapshot' && (!input.source || x.name === input.source))) {
        for (const snap of s.snapshots) {
          const base = { source: s.name, nodeId: snap.nodeId, snapshotId: snap.snapshotId };
          if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(snap.nodeId)) {
            throw ApplicationFailure.nonRetryable(`manifest of ${input.backupId}: node id '${snap.nodeId}' is not a plain name`, 'UnsafeManifest');
          }
          const provider = providerOf(pools, snap.pool);
          if (input.snapshots === 'disk') {
            if (!provider.createDiskFromSnapshot) {
              throw ApplicationFailure.nonRetryable(`pool '${snap.pool}' (${provider.name}) cannot make disks from snapshots; restore with snapshots: 'directory'`, 'InvalidArgument');
            }
            const disk = await provider.createDiskFromSnapshot({
              snapshotId: snap.snapshotId,
              idempotencyKey: `${runKey}/${s.name}/${snap.nodeId}`,
              tags: { [TAG_BACKUP]: backupLabel(input.backupId) },
            });
            out.push({ ...base, diskId: disk.id, ...(disk.path ? { restoredTo: disk.path } : {}) });
            Context.current().heartbeat({ disks: out.length });
            continue;
          }
          if ('snapshotDataDir' in provider && typeof provider.snapshotDataDir === 'function') {
            const target = join(input.destination, ...(input.source ? [] : [s.name]), snap.nodeId);
            await cp((provider.snapshotDataDir as (id: string) => string)(snap.snapshotId), target, { recursive: true, force: input.overwrite, errorOnExist: false });
            out.push({ ...base, restoredTo: target });
          } else {
            const how = snap.provider === 'aws-ec2' ? `aws ec2 create-volume --snapshot-id ${snap.snapshotId}` : `gcloud compute disks create <disk> --source-snapshot ${snap.snapshotId}`;
            out.push({ ...base, hint: `make a disk from ${snap.provider} snapshot ${snap.snapshotId} (e.g. ${how}) and attach it to a node` });
          }
        }
      }
      return out;
    },

    /** Writes every file, each verified against its sha256; a retried attempt continues where the last heartbeat was. */
    async restoreFiles(input: RestoreRequest): Promise<{ files: number; bytes: number }> {
      const ctx = Context.current();
      const store = openStore(input.store);
      const items = planRestore(await loadManifest(store, input.backupId), input.destination, input.source);
      const prev = ctx.info.heartbeatDetails as { filesDone: number; bytesDone: number } | undefined;
      let filesDone = prev?.filesDone ?? 0;
      let bytesDone = prev?.bytesDone ?? 0;
      const problems: VerifyProblem[] = [];
      const dirs = new Set<string>();
      const breathe = yielder();
      const blobs = new BlobReader(store);
      for (const item of items.slice(filesDone)) {
        await breathe();
        ctx.cancellationSignal.throwIfAborted();
        const p = await restoreOne(store, blobs, item, input.destination, dirs);
        if (p) problems.push(p);
        filesDone++;
        bytesDone += item.entry.size;
        ctx.heartbeat({ filesDone, filesTotal: items.length, bytesDone, bytesTotal: items.reduce((n, i) => n + i.entry.size, 0) });
      }
      if (problems.length) {
        throw ApplicationFailure.nonRetryable(
          `${problems.length} file(s) of ${input.backupId} failed their checksum and were not restored: ` +
            problems.slice(0, 10).map((p) => `${p.source}/${p.path} (${p.problem})`).join(', '),
          'ChecksumMismatch',
          problems.slice(0, 100),
        );
      }
      return { files: items.length, bytes: bytesDone };
    },
  };
}

/** The sha256 of every blob referenced by complete backups' manifests and by staged entries of incomplete ones. */
async function referencedBlobs(store: ReturnType<typeof openStore>, backups: BackupSummary[]): Promise<Set<string>> {
  const shas = new Set<string>();
  for (const b of backups) {
    if (b.phase === 'Incomplete') {
      for (const key of await store.list(`${backupPrefix(b.backupId)}staging/`)) {
        for (const e of (await readJson<{ sha256: string }[]>(store, key)) ?? []) shas.add(e.sha256);
      }
      continue;
    }
    const m = await readJson<Manifest>(store, manifestKey(b.backupId));
    for (const s of m?.sources ?? []) for (const f of s.files) shas.add(f.sha256);
  }
  return shas;
}

export type BackupActivities = ReturnType<typeof createBackupActivities>;

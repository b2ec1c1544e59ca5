import { ActivityFailure, ApplicationFailure, CancellationScope, defineQuery, isCancellation, proxyActivities, setCurrentDetails, setHandler, setWorkflowOptions, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { BackupActivities, PruneResult, VerifyResult } from '../activities/backup/index.ts';
import type { HookRecord, SnapshotRecord } from '../activities/backup/layout.ts';
import type { CopySourceResult } from '../activities/backup/copy.ts';
import { invalidArgument } from './common/errors.ts';
import { BACKUP_STAMP, backupStamp } from './common/ids.ts';
import { DRYDOCK_BACKUP_PHASE, parseBackupInput, type BackupConfig, type BackupInput, type BackupPhase, type HookConfig } from './inputs/backup.ts';

/** Set by Temporal on workflows a schedule starts: the action's nominal time. */
const SCHEDULED_START = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

export interface SourceStatus {
  name: string;
  type: 'files' | 'snapshot';
  state: 'pending' | 'copying' | 'done' | 'failed';
  copy?: CopySourceResult;
  snapshots?: SnapshotRecord[];
  error?: string;
}

export interface BackupStatus {
  phase: BackupPhase;
  step: 'validating' | 'pre-hooks' | 'copying' | 'post-hooks' | 'manifest' | 'verifying' | 'pruning' | 'done';
  backupId?: string;
  destination?: string;
  sources: SourceStatus[];
  hooks: HookRecord[];
  verification?: VerifyResult;
  prune?: PruneResult;
  error?: string;
}

export interface BackupResult {
  backupId: string;
  destination: string;
  phase: BackupPhase;
  files: number;
  bytes: number;
  copiedBytes: number;
  snapshots: number;
  sources: SourceStatus[];
  verification?: VerifyResult;
  prune?: PruneResult;
}

export const backupStatusQuery = defineQuery<BackupStatus>('status');

/** Activity options shared by backup, restore and verifyBackup: quick store calls, and heartbeating copies. */
export const short = { startToCloseTimeout: '5 minutes', retry: { maximumInterval: '10 seconds', maximumAttempts: 10 } } as const;
export const long = {
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '15 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10 },
} as const;

// backup finishes: pinned, so a run finishes on the code that started it.
setWorkflowOptions({ versioningBehavior: 'PINNED' }, backup);

/**
 * pre-hooks → copy every source (content-addressed) → post-hooks → manifest (written last) →
 * verify by restoring into scratch → prune per retention. The phase is a search attribute.
 */
export async function backup(rawInput: BackupInput): Promise<BackupResult> {
  const status: BackupStatus = { phase: 'InProgress', step: 'validating', sources: [], hooks: [] };
  setHandler(backupStatusQuery, () => status);
  const show = () => {
    setCurrentDetails(
      [
        `**backup** ${status.backupId ?? ''} → ${status.destination ?? ''} — **${status.phase}** (${status.step})`,
        ...status.sources.map((s) => `- ${s.name} (${s.type}): ${s.state}${s.copy ? `, ${s.copy.files} files, ${s.copy.copiedBytes} bytes copied` : ''}${s.error ? `: ${s.error}` : ''}`),
        status.error ? `error: ${status.error}` : '',
      ].filter(Boolean).join('\n'),
    );
  };
  const setPhase = (phase: BackupPhase) => {
    status.phase = phase;
    upsertSearchAttributes([{ key: DRYDOCK_BACKUP_PHASE, value: phase }]);
    show();
  };
  const step = (s: BackupStatus['step']) => {
    status.step = s;
    show();
  };
  const fail = (err: unknown): never => {
    const cause = err instanceof ActivityFailure ? err.cause : err;
    status.error = (cause as Error).message;
    setPhase('Failed');
    throw cause instanceof ApplicationFailure ? cause : err;
  };

  setPhase('InProgress');
  let input: BackupConfig;
  let backupId: string;
  try {
    input = parseBackupInput(rawInput);
    backupId = `${input.name}/${stampFor(input.name)}`;
  } catch (err) {
    return fail(err);
  }
  status.backupId = backupId;
  status.destination = input.destination;
  status.sources = input.sources.map((s) => ({ name: s.name, type: s.type, state: 'pending' }));
  const info = workflowInfo();
  const store = input.destination;
  const acts = proxyActivities<BackupActivities>(short);
  const copyActs = proxyActivities<BackupActivities>(long);

  try {
    const startedAt = new Date().toISOString();
    await acts.beginBackup.executeWithOptions({ summary: `mark ${backupId} started` }, [{ store, backupId, workflowId: info.workflowId, startedAt }]);

    step('pre-hooks');
    let hookFailure: string | undefined;
    try {
      hookFailure = await runHooks('pre', input.hooks.pre);
      if (!hookFailure) {
        step('copying');
        await Promise.all(input.sources.map((src, i) => copyOne(src, status.sources[i])));
      }
    } finally {
      // Post hooks run whenever pre hooks ran, even when the backup is cancelled: a quiesced service must be resumed.
      step('post-hooks');
      const postFailure = await CancellationScope.nonCancellable(() => runHooks('post', input.hooks.post));
      hookFailure ??= postFailure;
    }
    if (hookFailure) throw ApplicationFailure.nonRetryable(hookFailure, 'HookFailed');
    const failed = status.sources.filter((s) => s.state === 'failed');
    if (failed.length === status.sources.length) {
      throw ApplicationFailure.nonRetryable(`every source failed: ${failed.map((s) => `${s.name}: ${s.error}`).join('; ')}`, 'BackupFailed');
    }
    const partial = failed.length > 0 || status.hooks.some((h) => !h.ok);

    step('manifest');
    const totals = await acts.writeManifest.executeWithOptions({ summary: `write the manifest of ${backupId} (last)` }, [
      {
        store,
        backupId,
        name: input.name,
        workflowId: info.workflowId,
        runId: info.runId,
        startedAt,
        phase: partial ? 'PartiallyFailed' : 'Completed',
        sources: input.sources.map((src, i) => ({
          name: src.name,
          type: src.type,
          origin: src.type === 'files' ? src.path : src.pool,
          snapshots: status.sources[i].snapshots,
          error: status.sources[i].error,
        })),
        hooks: status.hooks,
      },
    ]);

    if (input.verify) {
      step('verifying');
      status.verification = await copyActs.verifyBackup.executeWithOptions({ summary: `restore ${backupId} into scratch and compare checksums` }, [{ store, backupId }]);
      if (!status.verification.ok) {
        const p = status.verification.problems;
        throw ApplicationFailure.nonRetryable(
          `verification of ${backupId} found ${p.length} bad object(s) in ${store}: ` + p.slice(0, 10).map((x) => `${x.source}/${x.path} (${x.problem})`).join(', '),
          'VerificationFailed',
        );
      }
      if (input.retention.keepLast !== undefined || input.retention.maxAgeDays !== undefined) {
        step('pruning');
        status.prune = await acts.pruneBackups.executeWithOptions({ summary: `apply retention to ${input.name} backups` }, [
          { store, name: input.name, retention: input.retention, now: new Date().toISOString() },
        ]);
      }
    }

    step('done');
    setPhase(partial ? 'PartiallyFailed' : 'Completed');
    const copies = status.sources.map((s) => s.copy).filter((c): c is CopySourceResult => !!c);
    return {
      backupId,
      destination: store,
      phase: status.phase,
      files: totals.files,
      bytes: totals.bytes,
      copiedBytes: copies.reduce((n, c) => n + c.copiedBytes, 0),
      snapshots: totals.snapshots,
      sources: status.sources,
      verification: status.verification,
      prune: status.prune,
    };
  } catch (err) {
    return fail(err);
  }

  /** Runs hooks in order; returns the message of a `fail`-policy failure (later hooks are then skipped). */
  async function runHooks(when: 'pre' | 'post', hooks: HookConfig[]): Promise<string | undefined> {
    for (const hook of hooks) {
      const hookActs = proxyActivities<BackupActivities>({
        startToCloseTimeout: `${hook.timeoutSeconds + 10} seconds`,
        heartbeatTimeout: '10 seconds',
        retry: { maximumAttempts: 2 },
      });
      try {
        await hookActs.runHook.executeWithOptions({ summary: `${when}-hook ${hook.name}` }, [hook]);
        status.hooks.push({ name: hook.name, when, ok: true, onError: hook.onError });
      } catch (err) {
        if (isCancellation(err)) throw err;
        const message = ((err instanceof ActivityFailure ? err.cause : err) as Error).message;
        status.hooks.push({ name: hook.name, when, ok: false, error: message, onError: hook.onError });
        if (hook.onError === 'fail') return `${when}-hook '${hook.name}' failed: ${message}`;
      }
      show();
    }
    return undefined;
  }

  async function copyOne(src: BackupConfig['sources'][number], st: SourceStatus): Promise<void> {
    st.state = 'copying';
    show();
    try {
      if (src.type === 'files') {
        st.copy = await copyActs.copySource.executeWithOptions({ summary: `copy ${src.name} (${src.path})` }, [{ store, backupId, source: { name: src.name, path: src.path } }]);
      } else {
        st.snapshots = await copyActs.snapshotSource.executeWithOptions({ summary: `snapshot the disks of pool ${src.pool}` }, [
          { backupId, idempotencyKey: `${info.workflowId}/${src.name}`, source: { name: src.name, pool: src.pool, nodes: src.nodes } },
        ]);
      }
      st.state = 'done';
    } catch (err) {
      if (isCancellation(err)) throw err; // a cancelled backup is not a partial one
      st.state = 'failed';
      st.error = ((err instanceof ActivityFailure ? err.cause : err) as Error).message;
    }
    show();
  }
}

/**
 * The backup's time: from the workflow id `backup/<name>/<time>` when started by hand, else the
 * schedule's action time (Temporal names scheduled runs `backup/<name>-<RFC3339 time>`).
 */
function stampFor(name: string): string {
  const info = workflowInfo();
  const prefix = `backup/${name}/`;
  if (info.workflowId.startsWith(prefix) && BACKUP_STAMP.test(info.workflowId.slice(prefix.length))) return info.workflowId.slice(prefix.length);
  const scheduled = info.typedSearchAttributes.get(SCHEDULED_START);
  if (scheduled && info.workflowId.startsWith(`backup/${name}-`)) return backupStamp(scheduled);
  throw invalidArgument('workflowId', `'${info.workflowId}' must be '${prefix}<YYYYMMDDTHHMMSSZ>' (e.g. ${prefix}${backupStamp(new Date())}); the backup is named after it`);
}

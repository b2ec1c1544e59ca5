import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { UnknownPoolError } from '../pools.ts';
import type { Provider } from '../providers/types.ts';

/** What backups need of the worker's pools: the provider holding a pool's nodes (PoolRegistry has it). */
export interface ProviderLookup {
  get(pool: string): { provider: Provider };
}
import type { SnapshotRecord } from './layout.ts';

/** Tag (label) every backup snapshot carries; GCE label values allow only [a-z0-9_-]. */
export const TAG_BACKUP = 'drydock-backup';
export const backupLabel = (backupId: string) => backupId.replace('/', '_').toLowerCase();

const POLL_MS = 1000;

export interface SnapshotSourceInput {
  backupId: string;
  /** Makes snapshots idempotent under retries: each node's key is `<key>/<nodeId>`. */
  idempotencyKey: string;
  source: { name: string; pool: string; nodes?: string[] };
}

export function providerOf(pools: ProviderLookup, pool: string): Provider {
  try {
    return pools.get(pool).provider;
  } catch (err) {
    if (err instanceof UnknownPoolError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidArgument');
    throw err;
  }
}

/** Snapshots the data disk of every chosen live node of the pool and waits until all are ready. */
export async function snapshotSource(pools: ProviderLookup, input: SnapshotSourceInput): Promise<SnapshotRecord[]> {
  const ctx = Context.current();
  const { pool, nodes, name } = input.source;
  const provider = providerOf(pools, pool);
  const live = await provider.list(pool);
  const chosen = nodes ? live.filter((n) => nodes.includes(n.id)) : live;
  const missing = (nodes ?? []).filter((id) => !live.some((n) => n.id === id));
  if (missing.length) throw ApplicationFailure.nonRetryable(`source '${name}': no live node ${missing.join(', ')} in pool '${pool}'`, 'SourceNotFound');
  if (chosen.length === 0) throw ApplicationFailure.nonRetryable(`source '${name}': pool '${pool}' has no live nodes to snapshot`, 'SourceNotFound');
  const tags = { [TAG_BACKUP]: backupLabel(input.backupId) };
  const records: SnapshotRecord[] = [];
  for (const node of chosen) {
    const snap = await provider.snapshot({
      source: { nodeId: node.id },
      idempotencyKey: `${input.idempotencyKey}/${node.id}`,
      tags,
      description: `drydock backup ${input.backupId} of ${node.id}`,
    });
    records.push({ pool, provider: provider.name, nodeId: node.id, snapshotId: snap.id, volumeId: snap.volumeId, state: snap.state });
    ctx.heartbeat({ snapshots: records.length, of: chosen.length });
  }
  for (;;) {
    const now = await provider.listSnapshots({ tags });
    for (const r of records) r.state = now.find((s) => s.id === r.snapshotId)?.state ?? r.state;
    const failed = records.filter((r) => r.state === 'failed');
    if (failed.length) throw ApplicationFailure.nonRetryable(`snapshots ${failed.map((r) => r.snapshotId).join(', ')} failed at ${provider.name}`, 'SnapshotFailed');
    if (records.every((r) => r.state === 'ready')) return records;
    ctx.heartbeat({ waiting: records.filter((r) => r.state !== 'ready').map((r) => r.snapshotId) });
    await ctx.sleep(POLL_MS);
  }
}

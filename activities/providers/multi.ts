import { notRebootable } from './errors.ts';
import { beat } from './heartbeat.ts';
import { keyNumber, nodeIdFor } from './naming.ts';
import {
  CapacityError,
  ProviderConfigError,
  type Disk,
  type DiskFromSnapshotRequest,
  type InstanceHealth,
  type NodeInstance,
  type NodeSpec,
  type Provider,
  type Snapshot,
  type SnapshotRequest,
} from './types.ts';

/** How a multi-provider pool picks where a new node goes. */
export type Strategy = 'priority' | 'round-robin' | 'cheapest';
export const STRATEGIES: readonly Strategy[] = ['priority', 'round-robin', 'cheapest'];

export interface MultiEntry {
  /** The entry's name in the pools file; prefixes its snapshot and volume ids. */
  name: string;
  provider: Provider;
  /** Price per node-hour (strategy `cheapest`). */
  price?: number;
}

/**
 * A pool spread over several providers or zones. provision first looks for the node this key
 * already made in any entry (a retry after a crash finds it), then tries entries in strategy
 * order, moving on when one has no capacity. Every choice depends only on the key and the
 * configuration, never on worker memory, so a retried call goes to the same entry first and that
 * entry's own idempotency (ClientToken, requestId) applies.
 */
export class MultiProvider implements Provider {
  readonly name = 'multi';

  constructor(private readonly entries: MultiEntry[], private readonly strategy: Strategy) {
    if (entries.length === 0) throw new Error('a multi-provider pool needs at least one entry');
  }

  /** Entries in the order provision tries them for this key. */
  order(idempotencyKey: string): MultiEntry[] {
    switch (this.strategy) {
      case 'priority':
        return [...this.entries];
      case 'round-robin': {
        // Spread by key: keys (one per replacement) land evenly across entries, and a retry lands where the first try did.
        const start = keyNumber(idempotencyKey) % this.entries.length;
        return [...this.entries.slice(start), ...this.entries.slice(0, start)];
      }
      case 'cheapest':
        return this.entries
          .map((e, i) => ({ e, i }))
          .sort((a, b) => (a.e.price ?? Infinity) - (b.e.price ?? Infinity) || a.i - b.i)
          .map(({ e }) => e);
    }
  }

  /** The entry holding a node (a live one before a terminated one). */
  private async owner(nodeId: string): Promise<{ entry: MultiEntry; node: NodeInstance } | undefined> {
    let found: { entry: MultiEntry; node: NodeInstance } | undefined;
    for (const entry of this.entries) {
      const node = await entry.provider.describe(nodeId);
      if (node && node.state !== 'terminated') return { entry, node };
      found ??= node ? { entry, node } : undefined;
    }
    return found;
  }

  async provision(spec: NodeSpec, idempotencyKey: string): Promise<NodeInstance> {
    const existing = await this.owner(nodeIdFor(spec.pool, idempotencyKey));
    if (existing && existing.node.state !== 'terminated') return existing.entry.provider.provision(spec, idempotencyKey);
    const full: string[] = [];
    for (const entry of this.order(idempotencyKey)) {
      try {
        return await entry.provider.provision(spec, idempotencyKey);
      } catch (err) {
        if (!(err instanceof CapacityError)) throw err;
        full.push(`${entry.name}: ${err.message}`);
        beat({ noCapacity: entry.name });
      }
    }
    // Retryable: capacity comes back; the activity's retry policy backs off.
    throw new CapacityError(this.name, `no capacity in any entry of pool ${spec.pool} (${this.strategy}): ${full.join('; ')}`);
  }

  async terminate(id: string): Promise<void> {
    const o = await this.owner(id);
    if (o) await o.entry.provider.terminate(id);
  }

  async describe(id: string): Promise<NodeInstance | undefined> {
    return (await this.owner(id))?.node;
  }

  async list(pool: string): Promise<NodeInstance[]> {
    const all = (await Promise.all(this.entries.map((e) => e.provider.list(pool)))).flat();
    // Two entries in one EC2 region both see the region's instances: keep each node once.
    const byId = new Map(all.map((n) => [n.id, n]));
    return [...byId.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Goes to the entry holding the node (its live instance first). */
  async reboot(id: string, idempotencyKey?: string): Promise<void> {
    const o = await this.owner(id);
    if (!o) throw notRebootable(this.name, id, 'no such node in any entry of this pool');
    await o.entry.provider.reboot(id, idempotencyKey);
  }

  async instanceHealth(id: string): Promise<InstanceHealth | undefined> {
    const o = await this.owner(id);
    return o?.entry.provider.instanceHealth?.(id);
  }

  private entry(name: string, what: string): MultiEntry {
    const e = this.entries.find((x) => x.name === name);
    if (!e) throw new Error(`${what}: no entry '${name}' in this pool (entries: ${this.entries.map((x) => x.name).join(', ')})`);
    return e;
  }

  /** Splits `<entry>:<id>`, the form multi-provider pools give snapshot and volume ids. */
  private split(id: string, what: string): { entry: MultiEntry; id: string } {
    const i = id.indexOf(':');
    if (i < 0) throw new Error(`${what} '${id}': in a multi-provider pool, ids look like <entry>:<id>`);
    return { entry: this.entry(id.slice(0, i), what), id: id.slice(i + 1) };
  }

  private tag(entry: MultiEntry, s: Snapshot): Snapshot {
    return { ...s, id: `${entry.name}:${s.id}`, volumeId: `${entry.name}:${s.volumeId}` };
  }

  async snapshot(req: SnapshotRequest): Promise<Snapshot> {
    if ('volumeId' in req.source) {
      const { entry, id } = this.split(req.source.volumeId, 'volumeId');
      return this.tag(entry, await entry.provider.snapshot({ ...req, source: { volumeId: id } }));
    }
    const o = await this.owner(req.source.nodeId);
    if (!o) throw new Error(`snapshot: no node '${req.source.nodeId}' in any entry of this pool`);
    return this.tag(o.entry, await o.entry.provider.snapshot(req));
  }

  async listSnapshots(filter?: { tags?: Record<string, string> }): Promise<Snapshot[]> {
    const per = await Promise.all(this.entries.map(async (e) => (await e.provider.listSnapshots(filter)).map((s) => this.tag(e, s))));
    return per.flat().sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async deleteSnapshot(id: string): Promise<void> {
    const { entry, id: inner } = this.split(id, 'snapshot id');
    await entry.provider.deleteSnapshot(inner);
  }

  /** Routes by the snapshot id's `<entry>:` prefix; the disk id comes back with the same prefix. */
  async createDiskFromSnapshot(req: DiskFromSnapshotRequest): Promise<Disk> {
    const { entry, id } = this.split(req.snapshotId, 'snapshot id');
    if (!entry.provider.createDiskFromSnapshot) throw new ProviderConfigError(`entry '${entry.name}' (${entry.provider.name}) cannot make disks from snapshots`);
    const disk = await entry.provider.createDiskFromSnapshot({ ...req, snapshotId: id });
    return { ...disk, id: `${entry.name}:${disk.id}`, snapshotId: req.snapshotId };
  }
}

/** Where a node is in its life at the provider. */
export type InstanceState = 'provisioning' | 'running' | 'terminating' | 'terminated';

/** Tags every drydock instance carries, so a worker can reconcile by listing. */
export const TAG_POOL = 'drydock-pool';
export const TAG_NODE = 'drydock-node';
export const TAG_MANAGED = 'drydock-managed';
/** Carried by snapshots made with an idempotency key, so a retried snapshot finds the first one. */
export const TAG_SNAPSHOT_KEY = 'drydock-snapshot-key';

/** Carried by disks made from a snapshot, so a retried create finds the first disk. */
export const TAG_DISK_KEY = 'drydock-disk-key';

/** Carried by instances of a serving pool: their agent is started with `--require-model`. */
export const TAG_SERVING = 'drydock-serving';

export interface NodeSpec {
  pool: string;
  instanceType: string;
  /**
   * The node joins a pool that serves a model: its agent must not report ready before it serves
   * one (it starts with `--require-model`; cloud user-data / startup scripts get `{{requireModel}}`).
   */
  serving?: boolean;
}

/**
 * The provider's own word that an instance is gone or failed: it will not serve again without a
 * reboot or a replacement. EC2: a status check impaired, or the instance stopping, stopped or
 * shutting down; GCE: status TERMINATED, SUSPENDED, SUSPENDING, STOPPING or REPAIRING; local: the
 * node's agent process is not alive; fleet simulator: an injected `dead` fault.
 */
export interface DeadAtProvider {
  /** What the provider says, e.g. `EC2 instance status check impaired`, `GCE status TERMINATED: Instance was preempted.` */
  reason: string;
}

/**
 * Three facts a pool tells apart: `dead` set → dead at the provider (out of service, whatever its
 * agent might answer); no `dead`, `state` 'provisioning' → still starting (or rebooting, for the local
 * provider); no `dead`, `state` 'running' with an `agentUrl` whose agent does not answer →
 * unreachable, which only a probe can find out. `state` stays the instance's life-cycle state: a dead
 * EC2 instance with a status check impaired is still 'running'.
 */
export interface NodeInstance {
  id: string;
  pool: string;
  provider: string;
  instanceType: string;
  state: InstanceState;
  /** Set when the provider says the instance is gone or failed (see DeadAtProvider); absent otherwise. */
  dead?: DeadAtProvider;
  /** Base URL of the node's gpu-agent, once it answers. */
  agentUrl?: string;
  /** Zone (or region) the instance runs in, where the provider has zones. */
  zone?: string;
  /** The provider's own id (EC2 `i-…`) where it differs from the drydock node id. */
  providerId?: string;
  /** Private address of the instance, where the provider has one. */
  privateIp?: string;
  tags: Record<string, string>;
  createdAt: string;
}

/**
 * What to snapshot: a node (its boot / data disk, found by the provider) or a volume by its
 * provider id (EBS `vol-…`, GCE disk name or `zones/<zone>/disks/<name>`, local node id).
 */
export type SnapshotSource = { nodeId: string } | { volumeId: string };

export interface SnapshotRequest {
  source: SnapshotSource;
  /**
   * Makes the call idempotent: a second call with the same key returns the first snapshot
   * instead of taking another. Derive it from the workflow id and step.
   */
  idempotencyKey: string;
  /** Extra tags / labels (e.g. the backup name) used later to list and expire snapshots. */
  tags?: Record<string, string>;
  description?: string;
}

export type SnapshotState = 'pending' | 'ready' | 'failed';

export interface Snapshot {
  id: string;
  provider: string;
  /** The volume / disk id the snapshot was taken of. */
  volumeId: string;
  state: SnapshotState;
  sizeGb?: number;
  createdAt: string;
  tags: Record<string, string>;
}

export interface DiskFromSnapshotRequest {
  /** The snapshot to make the disk from, as snapshot / listSnapshots return its id. */
  snapshotId: string;
  /** Zone for the disk (EC2 AvailabilityZone); default: the pool entry's own zone. GCE disks go to the entry's zone. */
  zone?: string;
  /** Makes the call idempotent: a second call with the same key returns the first disk. */
  idempotencyKey: string;
  /** Extra tags / labels the disk carries (next to drydock's own). */
  tags: Record<string, string>;
}

export interface Disk {
  /** EBS `vol-…`, GCE `zones/<zone>/disks/<name>`, local: the data directory's id. */
  id: string;
  provider: string;
  snapshotId: string;
  /** `ready` once it can be attached. */
  state: 'creating' | 'ready';
  zone?: string;
  sizeGb?: number;
  /** Where the local provider's disk lies on this machine. */
  path?: string;
  tags: Record<string, string>;
}

/**
 * A cloud (or local) provider. `provision` must be idempotent on its key: calling it again
 * with the same key returns the same instance and never creates a second one.
 */
export interface Provider {
  readonly name: string;
  provision(spec: NodeSpec, idempotencyKey: string): Promise<NodeInstance>;
  /** Terminates the instance; terminating one already gone (or terminated) is success. */
  terminate(id: string): Promise<void>;
  /** The instance, terminated ones included while the provider still knows them; undefined if unknown. */
  describe(id: string): Promise<NodeInstance | undefined>;
  /** Live (not terminated) drydock-managed instances of the pool, found by their tags / labels. */
  list(pool: string): Promise<NodeInstance[]>;
  /**
   * Snapshots a node's disk or a volume (EBS CreateSnapshot, GCE disks.createSnapshot, local: a copy
   * of the node's data directory). Returns at once, possibly `pending`; poll listSnapshots for `ready`.
   */
  snapshot(req: SnapshotRequest): Promise<Snapshot>;
  /** Snapshots this account owns (EBS OwnerIds self), narrowed to those carrying all the given tags. */
  listSnapshots(filter?: { tags?: Record<string, string> }): Promise<Snapshot[]>;
  /** Deletes a snapshot; deleting one that is already gone is success. */
  deleteSnapshot(id: string): Promise<void>;
  /**
   * Makes a new disk (EBS volume, GCE persistent disk, local data directory) from a snapshot and
   * waits, bounded, until it is ready to attach. Idempotent on the key: a retry returns the same disk.
   * The disk carries drydock's managed tag, the key's hash and the given tags. Every real provider
   * has it; providers with no disks (the fleet simulator) leave it out.
   */
  createDiskFromSnapshot?(req: DiskFromSnapshotRequest): Promise<Disk>;
  /**
   * The provider's own view of the instance's health (EC2 DescribeInstanceStatus system and instance
   * checks), a signal next to the agent's. Providers without such checks leave it out.
   */
  instanceHealth?(id: string): Promise<InstanceHealth | undefined>;
  /**
   * Reboots the instance and returns once the provider has done it (EC2 RebootInstances accepted,
   * GCE instances.reset DONE, local: the agent process restarted); the node keeps its id, and its
   * agent answers again once it has booted. A reboot clears what a restart clears: on simulated
   * GPUs, every fault not injected as persistent.
   *
   * Retries: with an idempotency key, a call after a reboot for the same key finished does not
   * reboot again (GCE: the reset's requestId; EC2: a tag with the key's hash; local and fleet-sim:
   * the key in the node's record); a retry after a crash mid-call may reboot a second time, which
   * only delays the node's return. Without a key, every call reboots.
   *
   * An instance that cannot take a reboot (unknown, terminated, stopped, TERMINATED at GCE) fails
   * non-retryably with type NodeNotRebootable: replace it instead. One still starting fails retryably.
   */
  reboot(id: string, idempotencyKey?: string): Promise<void>;
}

export interface InstanceHealth {
  ok: boolean;
  /** Why not ok, e.g. `system check impaired`. */
  reasons: string[];
}

/** Thrown by the local provider for requests that retrying will not fix (cloud providers throw non-retryable ApplicationFailures, see errors.ts). */
export class ProviderConfigError extends Error {}

/**
 * Thrown when the provider (zone) has no capacity for the instance type right now. A multi-provider
 * pool tries the next zone or provider; with nothing left it is retried with backoff.
 */
export class CapacityError extends Error {
  constructor(readonly provider: string, message: string) {
    super(message);
  }
}

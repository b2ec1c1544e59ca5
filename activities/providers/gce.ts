import compute, { type protos } from '@google-cloud/compute';
import { OAuth2Client } from 'google-auth-library';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { fillBootTemplate, withAgent, type AgentLocator } from './bootHook.ts';
import { notRebootable, providerFailure, type ErrorClass } from './errors.ts';
import { beat } from './heartbeat.ts';
import { gceRequestId, keyHash, nodeIdFor } from './naming.ts';
import {
  TAG_DISK_KEY,
  TAG_MANAGED,
  TAG_SERVING,
  TAG_NODE,
  TAG_POOL,
  TAG_SNAPSHOT_KEY,
  type DeadAtProvider,
  type Disk,
  type DiskFromSnapshotRequest,
  type InstanceState,
  type NodeInstance,
  type NodeSpec,
  type Provider,
  type Snapshot,
  type SnapshotRequest,
} from './types.ts';

type IInstance = protos.google.cloud.compute.v1.IInstance;
type IOperation = protos.google.cloud.compute.v1.IOperation;
type ISnapshot = protos.google.cloud.compute.v1.ISnapshot;
type IDisk = protos.google.cloud.compute.v1.IDisk;

/** Label with a hash of the idempotency key, so an instance can be matched to the request that made it. */
export const LABEL_REQUEST = 'drydock-request';

/** A `gce` entry of the pools file (see docs/providers.md). One entry is one zone. */
export interface GceOptions {
  project: string;
  zone: string;
  sourceImage: string;
  /** Machine type; overrides the pool's instanceType. */
  instanceType?: string;
  network?: string;
  subnetwork?: string;
  diskSizeGb?: number;
  diskType?: string;
  /** SPOT provisioning model (preemptible). */
  spot?: boolean;
  serviceAccount?: string;
  accelerator?: { type: string; count: number };
  /** Startup script that boots the agent (metadata `startup-script`); `{{pool}}`, `{{nodeId}}`, `{{controlToken}}` filled in (see docs/security.md). */
  startupScript?: string;
  /** API endpoint override: host, port and protocol (the GCE fake in tests). */
  apiEndpoint?: string;
  port?: number;
  protocol?: 'http' | 'https';
  /** How long to poll an operation (insert, delete, snapshot) before giving up for a retry (default 600). */
  operationTimeoutSeconds?: number;
}

export const GCE_DEFAULTS = { operationTimeoutSeconds: 600, pollMs: 100, diskSizeGb: 100 } as const;

/** Env var holding a ready OAuth access token (e.g. `gcloud auth print-access-token`); else Application Default Credentials. */
export const GCE_TOKEN_ENV = 'DRYDOCK_GCE_ACCESS_TOKEN';

/** An OAuth2 client that sends a fixed access token. */
export function fixedTokenAuth(token: string): OAuth2Client {
  const c = new OAuth2Client();
  c.setCredentials({ access_token: token, expiry_date: Date.now() + 10 * 365 * 86_400_000 });
  return c;
}

const CAPACITY_OP_CODES = new Set(['ZONE_RESOURCE_POOL_EXHAUSTED', 'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS', 'QUOTA_EXCEEDED', 'RESOURCE_POOL_EXHAUSTED']);
const GRPC_TO_HTTP: Record<number, number> = { 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 13: 500, 14: 503, 16: 401 };

export interface GceErrorInfo {
  http: number;
  reason?: string;
  message: string;
}

/**
 * Normalises a client error. gax versions differ: some give the gRPC code (5 NOT_FOUND), others the
 * HTTP status (404) with the raw Google error JSON as the message.
 */
export function gceErrorInfo(err: unknown): GceErrorInfo {
  const e = err as { code?: number | string; message?: string; reason?: string; response?: { data?: unknown }; errors?: { reason?: string }[] };
  let body: { error?: { code?: number; message?: string; errors?: { reason?: string }[] } } | undefined;
  if (e.response?.data && typeof e.response.data === 'object') body = e.response.data as typeof body;
  else if (typeof e.message === 'string' && e.message.trimStart().startsWith('{')) {
    try {
      body = JSON.parse(e.message) as typeof body;
    } catch {
      /* not JSON after all */
    }
  }
  const code = typeof e.code === 'number' ? e.code : Number(e.code);
  const http = body?.error?.code ?? (code >= 100 ? code : GRPC_TO_HTTP[code] ?? 500);
  return { http, reason: body?.error?.errors?.[0]?.reason ?? e.errors?.[0]?.reason ?? e.reason, message: body?.error?.message ?? e.message ?? String(err) };
}

export function classifyGceError(info: GceErrorInfo): ErrorClass | 'conflict' {
  // google-auth-library fails before any request when it has no usable credentials.
  if (/Could not load the default credentials|Could not refresh access token|invalid_grant|No authentication was provided/i.test(info.message)) return 'auth';
  if (info.reason === 'rateLimitExceeded' || info.reason === 'userRateLimitExceeded' || info.http === 429) return 'throttle';
  if (info.http === 404) return 'not-found';
  if (info.http === 409) return 'conflict';
  if (info.http === 401 || info.http === 403) return 'auth';
  if (info.http === 400) return 'invalid';
  return 'other';
}

/** Which pools-file field a GCE validation message points at. */
function fieldOf(message: string): string | undefined {
  if (/machineType/.test(message)) return 'instanceType';
  if (/disks|sourceImage/.test(message)) return 'sourceImage';
  if (/networkInterfaces|network/.test(message)) return 'network';
  if (/resource\.(name|labels)/.test(message)) return 'the pool name';
  return undefined;
}

function instanceState(status: string | null | undefined): InstanceState {
  switch (status) {
    case 'PENDING':
    case 'PROVISIONING':
    case 'STAGING':
      return 'provisioning';
    case 'RUNNING':
      return 'running';
    default:
      // TERMINATED (stopped: preempted, or stopped for host maintenance), SUSPENDED, STOPPING, REPAIRING:
      // out of service, and dead (deadFromGce). The instance and its disks exist until drydock deletes it.
      return 'terminating';
  }
}

const DEAD_STATUSES = new Set(['TERMINATED', 'SUSPENDING', 'SUSPENDED', 'STOPPING', 'REPAIRING']);

/** Whether GCE holds the instance stopped or failed, with GCE's own message where it gives one. */
export function deadFromGce(i: IInstance): DeadAtProvider | undefined {
  if (!DEAD_STATUSES.has(i.status ?? '')) return undefined;
  return { reason: `GCE status ${i.status}${i.statusMessage ? `: ${i.statusMessage}` : ''}` };
}

const last = (url: string | null | undefined) => (url ?? '').split('/').pop() ?? '';

/**
 * GCE instances in one zone through the real @google-cloud/compute client (REST). instances.insert
 * carries a requestId derived from the idempotency key (GCE returns the first operation for a repeated
 * one), and the instance name is derived from it too, so a retry never makes a second instance.
 */
export class GceProvider implements Provider {
  readonly name = 'gce';
  private readonly instances: compute.InstancesClient;
  private readonly zoneOps: compute.ZoneOperationsClient;
  private readonly globalOps: compute.GlobalOperationsClient;
  private readonly disks: compute.DisksClient;
  private readonly snapshots: compute.SnapshotsClient;

  constructor(
    private readonly opts: GceOptions,
    private readonly locator: AgentLocator,
    private readonly entry: string,
    authClient?: OAuth2Client,
  ) {
    const token = process.env[GCE_TOKEN_ENV];
    const auth = authClient ?? (token ? fixedTokenAuth(token) : undefined);
    // gax bundles its own google-auth-library release, whose OAuth2Client type differs from ours in
    // name only; the instance works with it (it only calls getRequestHeaders), hence the cast.
    const clientOpts = {
      ...(opts.apiEndpoint ? { apiEndpoint: opts.apiEndpoint } : {}),
      ...(opts.port ? { port: opts.port } : {}),
      ...(opts.protocol ? { protocol: opts.protocol } : {}),
      ...(auth ? { authClient: auth } : {}),
    } as unknown as ConstructorParameters<typeof compute.InstancesClient>[0];
    this.instances = new compute.InstancesClient(clientOpts);
    this.zoneOps = new compute.ZoneOperationsClient(clientOpts);
    this.globalOps = new compute.GlobalOperationsClient(clientOpts);
    this.disks = new compute.DisksClient(clientOpts);
    this.snapshots = new compute.SnapshotsClient(clientOpts);
  }

  async close(): Promise<void> {
    await Promise.all([this.instances, this.zoneOps, this.globalOps, this.disks, this.snapshots].map((c) => c.close()));
  }

  private failure(operation: string, info: GceErrorInfo): Error {
    const cls = classifyGceError(info);
    const scope = { provider: this.name, entry: this.entry, operation };
    const detail = `${info.http}${info.reason ? ` ${info.reason}` : ''}: ${info.message}`;
    if (cls === 'auth') {
      return providerFailure('auth', scope, detail, `Check the worker's Google credentials (GOOGLE_APPLICATION_CREDENTIALS, the VM's service account, or ${GCE_TOKEN_ENV}) and that they may call compute.${operation} in project ${this.opts.project}.`);
    }
    if (cls === 'invalid') {
      const field = fieldOf(info.message);
      return providerFailure('invalid', scope, detail, field ? `Fix ${field === 'the pool name' ? field : `'${field}'`} of ${this.entry} in the pools file.` : undefined);
    }
    return providerFailure(cls === 'conflict' || cls === 'not-found' ? 'other' : cls, scope, detail);
  }

  /** Runs one call; not-found answers undefined when `missingOk`, other errors become drydock failures. */
  private async call<T>(operation: string, fn: () => Promise<T>, missingOk: true): Promise<T | undefined>;
  private async call<T>(operation: string, fn: () => Promise<T>): Promise<T>;
  private async call<T>(operation: string, fn: () => Promise<T>, missingOk = false): Promise<T | undefined> {
    try {
      return await fn();
    } catch (err) {
      const info = gceErrorInfo(err);
      if (missingOk && info.http === 404) return undefined;
      throw this.failure(operation, info);
    }
  }

  /** Polls the operation (zone or global) until DONE, heartbeating; bounded. */
  private async waitOp(op: IOperation, what: string): Promise<IOperation> {
    const until = Date.now() + (this.opts.operationTimeoutSeconds ?? GCE_DEFAULTS.operationTimeoutSeconds) * 1000;
    const ref = op.name ?? String(op.id);
    let cur = op;
    while (cur.status !== 'DONE') {
      if (Date.now() > until) throw new Error(`${this.name} (${this.entry}): ${what}: operation ${ref} still ${cur.status} after ${this.opts.operationTimeoutSeconds ?? GCE_DEFAULTS.operationTimeoutSeconds}s`);
      beat({ operation: ref, status: cur.status });
      const [next] = op.zone
        ? await this.call('zoneOperations.wait', () => this.zoneOps.wait({ project: this.opts.project, zone: this.opts.zone, operation: ref }))
        : await this.call('globalOperations.wait', () => this.globalOps.wait({ project: this.opts.project, operation: ref }));
      cur = next;
      // The real wait blocks server-side for up to 2 minutes; a short pause keeps a fast server from being hammered.
      if (cur.status !== 'DONE') await sleep(GCE_DEFAULTS.pollMs);
    }
    return cur;
  }

  /** Throws the operation's error, if it has one: capacity ones send the pool to its next zone / provider. */
  private checkOp(op: IOperation, operation: string): void {
    const first = op.error?.errors?.[0];
    if (!first) return;
    const detail = `${first.code}: ${first.message}`;
    const scope = { provider: this.name, entry: this.entry, operation };
    if (CAPACITY_OP_CODES.has(first.code ?? '')) throw providerFailure('capacity', scope, detail);
    throw this.failure(operation, { http: op.httpErrorStatusCode ?? 400, message: detail });
  }

  private toNode(i: IInstance): NodeInstance {
    const labels = (i.labels ?? {}) as Record<string, string>;
    const dead = deadFromGce(i);
    return {
      id: i.name!,
      providerId: i.id ? String(i.id) : undefined,
      pool: labels[TAG_POOL] ?? '',
      provider: this.name,
      instanceType: last(i.machineType),
      state: instanceState(i.status),
      ...(dead ? { dead } : {}),
      zone: last(i.zone) || this.opts.zone,
      privateIp: i.networkInterfaces?.[0]?.networkIP ?? undefined,
      tags: labels,
      createdAt: i.creationTimestamp ?? new Date(0).toISOString(),
    };
  }

  private async getInstance(name: string): Promise<IInstance | undefined> {
    const r = await this.call('instances.get', () => this.instances.get({ project: this.opts.project, zone: this.opts.zone, instance: name }), true);
    return r?.[0];
  }

  async provision(spec: NodeSpec, idempotencyKey: string): Promise<NodeInstance> {
    const o = this.opts;
    const name = nodeIdFor(spec.pool, idempotencyKey);
    const labels = { [TAG_POOL]: spec.pool, [TAG_NODE]: name, [TAG_MANAGED]: 'true', [LABEL_REQUEST]: keyHash(idempotencyKey), ...(spec.serving ? { [TAG_SERVING]: 'true' } : {}) };
    const script = fillBootTemplate(o.startupScript?.replaceAll('{{requireModel}}', spec.serving ? '--require-model' : ''), spec.pool, name, this.locator.auth, `${this.entry}: startupScript`);
    const instanceResource: IInstance = {
      name,
      machineType: `zones/${o.zone}/machineTypes/${o.instanceType ?? spec.instanceType}`,
      labels,
      disks: [
        {
          boot: true,
          autoDelete: true,
          initializeParams: { sourceImage: o.sourceImage, diskSizeGb: o.diskSizeGb ?? GCE_DEFAULTS.diskSizeGb, ...(o.diskType ? { diskType: `zones/${o.zone}/diskTypes/${o.diskType}` } : {}), labels },
        },
      ],
      networkInterfaces: [{ ...(o.network ? { network: o.network } : {}), ...(o.subnetwork ? { subnetwork: o.subnetwork } : {}) }],
      ...(script ? { metadata: { items: [{ key: 'startup-script', value: script }] } } : {}),
      ...(o.spot ? { scheduling: { provisioningModel: 'SPOT', instanceTerminationAction: 'DELETE' } } : {}),
      ...(o.serviceAccount ? { serviceAccounts: [{ email: o.serviceAccount, scopes: ['https://www.googleapis.com/auth/cloud-platform'] }] } : {}),
      ...(o.accelerator
        ? { guestAccelerators: [{ acceleratorType: `zones/${o.zone}/acceleratorTypes/${o.accelerator.type}`, acceleratorCount: o.accelerator.count }], scheduling: { onHostMaintenance: 'TERMINATE', ...(o.spot ? { provisioningModel: 'SPOT', instanceTerminationAction: 'DELETE' } : {}) } }
        : {}),
    };
    const insert = async (requestId: string): Promise<IOperation | undefined> => {
      try {
        const [lro] = await this.instances.insert({ project: o.project, zone: o.zone, requestId, instanceResource });
        return lro.latestResponse as IOperation;
      } catch (err) {
        const info = gceErrorInfo(err);
        if (classifyGceError(info) !== 'conflict') throw this.failure('instances.insert', info);
        // The name is taken: by our own earlier request (another requestId), or by something else.
        const existing = await this.getInstance(name);
        if (existing?.labels?.[LABEL_REQUEST] !== keyHash(idempotencyKey)) {
          throw providerFailure('invalid', { provider: this.name, entry: this.entry, operation: 'instances.insert' }, `instance name ${name} is taken by an instance drydock did not make for this request`, 'Delete or rename that instance.');
        }
        return undefined;
      }
    };
    let op = await insert(gceRequestId(idempotencyKey, `${o.project}/${o.zone}/insert`));
    if (op?.status === 'DONE' && CAPACITY_OP_CODES.has(op.error?.errors?.[0]?.code ?? '')) {
      // GCE replayed an earlier attempt that found no capacity; capacity may be back, so ask anew. A
      // fresh requestId cannot make a second instance: the name is fixed by the key and GCE refuses a
      // duplicate name (409), which insert() above resolves to our own instance.
      op = await insert(randomUUID());
    }
    if (op) this.checkOp(await this.waitOp(op, `insert ${name}`), 'instances.insert');
    const instance = await this.getInstance(name);
    if (!instance) throw new Error(`${this.name} (${this.entry}): instance ${name} is missing after its insert finished`);
    return withAgent(this.locator, this.toNode(instance));
  }

  async terminate(id: string): Promise<void> {
    const r = await this.call(
      'instances.delete',
      () => this.instances.delete({ project: this.opts.project, zone: this.opts.zone, instance: id, requestId: gceRequestId(id, `${this.opts.project}/${this.opts.zone}/delete`) }),
      true,
    );
    if (r) this.checkOp(await this.waitOp(r[0].latestResponse as IOperation, `delete ${id}`), 'instances.delete');
    await this.locator.gone(id);
  }

  /**
   * instances.reset: a hard reset, the VM stays RUNNING. With a key the requestId is derived from it,
   * so a retry gets the first operation back and GCE does not reset a second time.
   */
  async reboot(id: string, idempotencyKey?: string): Promise<void> {
    const o = this.opts;
    const where = `${this.name} (${this.entry})`;
    const check = (i: IInstance | undefined): IInstance => {
      if (!i) throw notRebootable(where, id, 'no such instance');
      if (instanceState(i.status) === 'provisioning') throw new Error(`${where}: node ${id} is still starting (${i.status}); reset it once it runs`);
      if (i.status !== 'RUNNING') throw notRebootable(where, id, `the instance is ${i.status}${i.statusMessage ? ` (${i.statusMessage})` : ''}`);
      return i;
    };
    const instance = check(await this.getInstance(id));
    let op: IOperation;
    try {
      const [lro] = await this.instances.reset({
        project: o.project,
        zone: o.zone,
        instance: id,
        ...(idempotencyKey === undefined ? {} : { requestId: gceRequestId(idempotencyKey, `${o.project}/${o.zone}/reset/${id}`) }),
      });
      op = lro.latestResponse as IOperation;
    } catch (err) {
      const info = gceErrorInfo(err);
      // Deleted or stopped since the look-up (not ready): see what it is now. Still RUNNING: busy with another operation, retry.
      if (info.http === 404 || info.reason === 'resourceNotReady') check(await this.getInstance(id));
      if (info.reason === 'resourceNotReady') throw new Error(`${where} instances.reset: ${info.message} (busy with another operation; retry)`);
      throw this.failure('instances.reset', info);
    }
    this.checkOp(await this.waitOp(op, `reset ${id}`), 'instances.reset');
    await this.locator.rebooted(this.toNode(instance));
  }

  async describe(id: string): Promise<NodeInstance | undefined> {
    const i = await this.getInstance(id);
    return i ? withAgent(this.locator, this.toNode(i)) : undefined;
  }

  async list(pool: string): Promise<NodeInstance[]> {
    const out: IInstance[] = [];
    let pageToken: string | undefined;
    do {
      const [items, , raw] = await this.call('instances.list', () =>
        this.instances.list(
          { project: this.opts.project, zone: this.opts.zone, filter: `labels.${TAG_POOL} = "${pool}" AND labels.${TAG_MANAGED} = "true"`, maxResults: 500, pageToken },
          { autoPaginate: false },
        ),
      );
      out.push(...items);
      pageToken = raw?.nextPageToken ?? undefined;
    } while (pageToken);
    const nodes = await Promise.all(out.map((i) => withAgent(this.locator, this.toNode(i))));
    return nodes.filter((n) => n.state !== 'terminated').sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** `disk`, or `zones/<zone>/disks/<disk>` (only this entry's zone). */
  private diskRef(volumeId: string): string {
    const m = volumeId.match(/^(?:.*\/)?zones\/([^/]+)\/disks\/([^/]+)$/);
    if (!m) return volumeId;
    if (m[1] !== this.opts.zone) throw providerFailure('invalid', { provider: this.name, entry: this.entry, operation: 'disks.createSnapshot' }, `disk ${volumeId} is not in zone ${this.opts.zone}`, 'Snapshot it through the pool entry of its zone.');
    return m[2];
  }

  private toSnapshot(s: ISnapshot): Snapshot {
    const state = s.status === 'READY' ? 'ready' : s.status === 'FAILED' ? 'failed' : 'pending';
    return {
      id: s.name!,
      provider: this.name,
      volumeId: last(s.sourceDisk),
      state,
      sizeGb: s.diskSizeGb ? Number(s.diskSizeGb) : undefined,
      createdAt: s.creationTimestamp ?? new Date(0).toISOString(),
      tags: (s.labels ?? {}) as Record<string, string>,
    };
  }

  private async getSnapshot(name: string): Promise<ISnapshot | undefined> {
    return (await this.call('snapshots.get', () => this.snapshots.get({ project: this.opts.project, snapshot: name }), true))?.[0];
  }

  /** disks.createSnapshot of the node's boot disk (or the given disk); waits for the operation. */
  async snapshot(req: SnapshotRequest): Promise<Snapshot> {
    let disk: string;
    if ('nodeId' in req.source) {
      const node = await this.getInstance(req.source.nodeId);
      const boot = node?.disks?.find((d) => d.boot) ?? node?.disks?.[0];
      if (!boot?.source) throw providerFailure('invalid', { provider: this.name, entry: this.entry, operation: 'disks.createSnapshot' }, `node '${req.source.nodeId}' has no disk in ${this.opts.zone}`, 'Snapshot a node that exists, or pass its volumeId.');
      disk = last(boot.source);
    } else disk = this.diskRef(req.source.volumeId);
    const name = `drydock-snap-${keyHash(req.idempotencyKey).slice(0, 20)}`;
    const labels = { ...req.tags, [TAG_MANAGED]: 'true', [TAG_SNAPSHOT_KEY]: keyHash(req.idempotencyKey) };
    let op: IOperation | undefined;
    try {
      const [lro] = await this.disks.createSnapshot({
        project: this.opts.project,
        zone: this.opts.zone,
        disk,
        requestId: gceRequestId(req.idempotencyKey, `${this.opts.project}/${this.opts.zone}/snapshot`),
        snapshotResource: { name, labels, description: req.description ?? `drydock snapshot of ${disk}` },
      });
      op = lro.latestResponse as IOperation;
    } catch (err) {
      const info = gceErrorInfo(err);
      if (classifyGceError(info) !== 'conflict') throw this.failure('disks.createSnapshot', info);
      // The name is taken: by an earlier call with this key (another requestId, e.g. from another zone), or by something else.
      const existing = await this.getSnapshot(name);
      if (existing?.labels?.[TAG_SNAPSHOT_KEY] !== keyHash(req.idempotencyKey)) {
        throw providerFailure('invalid', { provider: this.name, entry: this.entry, operation: 'disks.createSnapshot' }, `snapshot name ${name} is taken by a snapshot drydock did not make for this request`, 'Delete or rename that snapshot.');
      }
    }
    if (op) this.checkOp(await this.waitOp(op, `snapshot ${disk}`), 'disks.createSnapshot');
    const snap = await this.getSnapshot(name);
    if (!snap) throw new Error(`${this.name} (${this.entry}): snapshot ${name} is missing after its operation finished`);
    return this.toSnapshot(snap);
  }

  async listSnapshots(filter?: { tags?: Record<string, string> }): Promise<Snapshot[]> {
    const expr = Object.entries(filter?.tags ?? {})
      .map(([k, v]) => `labels.${k} = "${v}"`)
      .join(' AND ');
    const out: ISnapshot[] = [];
    let pageToken: string | undefined;
    do {
      const [items, , raw] = await this.call('snapshots.list', () =>
        this.snapshots.list({ project: this.opts.project, ...(expr ? { filter: expr } : {}), maxResults: 500, pageToken }, { autoPaginate: false }),
      );
      out.push(...items);
      pageToken = raw?.nextPageToken ?? undefined;
    } while (pageToken);
    return out
      .filter((s) => s.status !== 'DELETING')
      .map((s) => this.toSnapshot(s))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async deleteSnapshot(id: string): Promise<void> {
    const r = await this.call(
      'snapshots.delete',
      () => this.snapshots.delete({ project: this.opts.project, snapshot: id, requestId: gceRequestId(id, `${this.opts.project}/snapshot-delete`) }),
      true,
    );
    if (r) this.checkOp(await this.waitOp(r[0].latestResponse as IOperation, `delete snapshot ${id}`), 'snapshots.delete');
  }

  private toDisk(d: IDisk): Disk {
    return {
      id: `zones/${last(d.zone) || this.opts.zone}/disks/${d.name}`,
      provider: this.name,
      snapshotId: last(d.sourceSnapshot),
      state: d.status === 'READY' ? 'ready' : 'creating',
      zone: last(d.zone) || this.opts.zone,
      sizeGb: d.sizeGb ? Number(d.sizeGb) : undefined,
      tags: (d.labels ?? {}) as Record<string, string>,
    };
  }

  /**
   * disks.insert with sourceSnapshot in this entry's zone. The disk name and the requestId are derived
   * from the key, so a retry gets the first operation back (or 409 on the name, resolved to our disk).
   */
  async createDiskFromSnapshot(req: DiskFromSnapshotRequest): Promise<Disk> {
    const o = this.opts;
    const scope = { provider: this.name, entry: this.entry, operation: 'disks.insert' };
    if (req.zone && req.zone !== o.zone) throw providerFailure('invalid', scope, `zone ${req.zone} is not this entry's zone ${o.zone}`, 'Make the disk through the pool entry of that zone.');
    const hash = keyHash(req.idempotencyKey);
    const name = `drydock-disk-${hash.slice(0, 20)}`;
    const labels = { ...req.tags, [TAG_MANAGED]: 'true', [TAG_DISK_KEY]: hash };
    const get = async () => (await this.call('disks.get', () => this.disks.get({ project: o.project, zone: o.zone, disk: name }), true))?.[0];
    let op: IOperation | undefined;
    try {
      const [lro] = await this.disks.insert({
        project: o.project,
        zone: o.zone,
        requestId: gceRequestId(req.idempotencyKey, `${o.project}/${o.zone}/disk-insert`),
        diskResource: { name, labels, sourceSnapshot: `projects/${o.project}/global/snapshots/${req.snapshotId}`, description: `drydock disk from snapshot ${req.snapshotId}` },
      });
      op = lro.latestResponse as IOperation;
    } catch (err) {
      const info = gceErrorInfo(err);
      if (classifyGceError(info) !== 'conflict') throw this.failure('disks.insert', info);
      const existing = await get();
      if (existing?.labels?.[TAG_DISK_KEY] !== hash) throw providerFailure('invalid', scope, `disk name ${name} is taken by a disk drydock did not make for this request`, 'Delete or rename that disk.');
    }
    if (op) this.checkOp(await this.waitOp(op, `disk from ${req.snapshotId}`), 'disks.insert');
    const disk = await get();
    if (!disk) throw new Error(`${this.name} (${this.entry}): disk ${name} is missing after its insert finished`);
    return this.toDisk(disk);
  }
}

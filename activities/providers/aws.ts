import {
  CreateSnapshotCommand,
  CreateTagsCommand,
  CreateVolumeCommand,
  DeleteSnapshotCommand,
  DescribeInstanceStatusCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  EC2Client,
  paginateDescribeInstanceStatus,
  paginateDescribeInstances,
  paginateDescribeSnapshots,
  paginateDescribeVolumes,
  RebootInstancesCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  waitForInstanceRunning,
  waitUntilVolumeAvailable,
  type _InstanceType,
  type Filter,
  type Instance,
  type InstanceStatus,
  type Snapshot as Ec2Snapshot,
  type Tag,
  type Volume,
} from '@aws-sdk/client-ec2';
import { fillBootTemplate, withAgent, type AgentLocator } from './bootHook.ts';
import { notRebootable, providerFailure, type ErrorClass } from './errors.ts';
import { beating } from './heartbeat.ts';
import { ec2ClientToken, keyHash, nodeIdFor } from './naming.ts';
import {
  CapacityError,
  TAG_DISK_KEY,
  TAG_MANAGED,
  TAG_SERVING,
  TAG_NODE,
  TAG_POOL,
  TAG_SNAPSHOT_KEY,
  type DeadAtProvider,
  type Disk,
  type DiskFromSnapshotRequest,
  type InstanceHealth,
  type InstanceState,
  type NodeInstance,
  type NodeSpec,
  type Provider,
  type Snapshot,
  type SnapshotRequest,
} from './types.ts';

/** Carries a hash of the idempotency key, so a retried provision finds the instance by tag. */
export const TAG_REQUEST = 'drydock-request';
/** Carries a hash of the idempotency key of the instance's last reboot, so a retried reboot does not reboot again. */
export const TAG_REBOOT = 'drydock-reboot';

/** An `aws-ec2` entry of the pools file (see docs/providers.md). Credentials come from the standard chain. */
export interface AwsEc2Options {
  region: string;
  imageId: string;
  /** Overrides the pool's instanceType (a multi-provider pool may name different types per cloud). */
  instanceType?: string;
  /** Availability zone (Placement); or let subnetId fix it. */
  zone?: string;
  subnetId?: string;
  securityGroupIds?: string[];
  keyName?: string;
  iamInstanceProfile?: string;
  /**
   * User-data that boots the agent; `{{pool}}`, `{{nodeId}}` and `{{controlToken}}` (the node's own
   * control token, see docs/security.md) are filled in. Put no other secrets here.
   */
  userData?: string;
  /** Ask for a spot instance (one-time, terminate on interruption), optionally with a max price. */
  spot?: boolean | { maxPrice?: string };
  /** API endpoint override (moto in tests, a VPC endpoint in production). */
  endpoint?: string;
  /** How long provision waits for `running` with the SDK waiter (default 600). */
  runningTimeoutSeconds?: number;
  /** How long createDiskFromSnapshot waits for the volume to be `available` (default 600). */
  volumeTimeoutSeconds?: number;
}

export const AWS_DEFAULTS = { runningTimeoutSeconds: 600, volumeTimeoutSeconds: 600, waiterMinDelay: 1, waiterMaxDelay: 10, statusIdsPerCall: 100 } as const;

const CAPACITY_CODES = new Set([
  'InsufficientInstanceCapacity',
  'InsufficientHostCapacity',
  'InsufficientReservedInstanceCapacity',
  'InsufficientCapacityOnHost',
  'InsufficientCapacity',
  'SpotMaxPriceTooLow',
  'MaxSpotInstanceCountExceeded',
  'InstanceLimitExceeded',
  'VcpuLimitExceeded',
  'Unsupported',
  'Server.InsufficientInstanceCapacity',
  'Server.SpotInstanceTermination',
]);
const THROTTLE_CODES = new Set(['RequestLimitExceeded', 'Throttling', 'ThrottlingException', 'RequestThrottled', 'ServiceUnavailable', 'Unavailable', 'InternalError']);
const AUTH_CODES = new Set([
  'AuthFailure',
  'UnauthorizedOperation',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'OptInRequired',
  'Blocked',
  'ExpiredToken',
  'CredentialsProviderError',
  'UnrecognizedClientException',
]);
/** Which pools-file field a validation error points at. */
const FIELD_OF_CODE: [RegExp, string][] = [
  [/^InvalidAMIID/, 'imageId'],
  [/^InvalidSubnet/, 'subnetId'],
  [/^InvalidGroup/, 'securityGroupIds'],
  [/^InvalidKeyPair/, 'keyName'],
  [/^InvalidAvailabilityZone|^InvalidZone/, 'zone'],
  [/^InvalidInstanceType/, 'instanceType'],
];

function errorCode(err: unknown): string {
  const e = err as { name?: string; Code?: string; code?: string };
  return e.Code ?? e.name ?? e.code ?? 'Unknown';
}

/** Sorts an EC2 error into what drydock does about it. */
export function classifyAwsError(err: unknown): ErrorClass {
  const code = errorCode(err);
  if (CAPACITY_CODES.has(code)) return 'capacity';
  if (THROTTLE_CODES.has(code)) return 'throttle';
  if (AUTH_CODES.has(code)) return 'auth';
  // A missing target (instance, snapshot) is gone; a missing AMI / subnet / group is a config mistake.
  if (/^Invalid(InstanceID|Snapshot|SnapshotID|Volume|VolumeID)\.(NotFound|Malformed)$/.test(code)) return 'not-found';
  if (code.startsWith('Invalid') || code === 'MissingParameter' || code === 'IdempotentParameterMismatch' || code === 'ValidationError') return 'invalid';
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (status === 401 || status === 403) return 'auth';
  return 'other';
}

function state(name: string | undefined): InstanceState {
  switch (name) {
    case 'pending':
      return 'provisioning';
    case 'running':
      return 'running';
    case 'terminated':
      return 'terminated';
    default:
      // shutting-down, stopping, stopped: drydock never stops instances, so these are on their way out.
      return 'terminating';
  }
}

function tagMap(tags: Tag[] | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).filter((t) => t.Key).map((t) => [t.Key!, t.Value ?? '']));
}

function toTags(m: Record<string, string>): Tag[] {
  return Object.entries(m).map(([Key, Value]) => ({ Key, Value }));
}

/** What the instance status checks say: `impaired` (or `insufficient-data` for long) is a health signal. */
export function healthFromStatus(s: InstanceStatus | undefined): InstanceHealth | undefined {
  if (!s) return undefined;
  const reasons: string[] = [];
  if (s.SystemStatus?.Status === 'impaired') reasons.push('system status check impaired');
  if (s.InstanceStatus?.Status === 'impaired') reasons.push('instance status check impaired');
  for (const e of s.Events ?? []) if (e.Code) reasons.push(`scheduled event ${e.Code}${e.NotBefore ? ` from ${e.NotBefore.toISOString()}` : ''}`);
  return { ok: reasons.length === 0, reasons };
}

/**
 * Whether EC2 holds the instance failed: stopping, stopped or shutting down (drydock never stops
 * instances, so someone or something else did), or running with a status check impaired.
 */
export function deadFromEc2(i: Instance, s: InstanceStatus | undefined): DeadAtProvider | undefined {
  const st = i.State?.Name;
  if (st === 'stopping' || st === 'stopped' || st === 'shutting-down') {
    const why = i.StateReason?.Message || i.StateTransitionReason;
    return { reason: `EC2 instance is ${st}${why ? `: ${why}` : ''}` };
  }
  if (st !== 'running' || !s) return undefined;
  const impaired = [s.SystemStatus?.Status === 'impaired' ? 'system' : '', s.InstanceStatus?.Status === 'impaired' ? 'instance' : ''].filter(Boolean);
  return impaired.length ? { reason: `EC2 ${impaired.join(' and ')} status check impaired` } : undefined;
}

/**
 * EC2 instances for one pool entry. Every instance carries the drydock tags; provision finds an
 * instance made for the same key by tag first and sends a ClientToken derived from the key, so a
 * retried call (after a worker crash, too) returns the same instance.
 */
export class AwsEc2Provider implements Provider {
  readonly name = 'aws-ec2';
  private readonly ec2: EC2Client;

  constructor(
    private readonly opts: AwsEc2Options,
    private readonly locator: AgentLocator,
    /** The pools-file entry, named in error messages. */
    private readonly entry: string,
    client?: EC2Client,
  ) {
    this.ec2 = client ?? new EC2Client({ region: opts.region, endpoint: opts.endpoint, maxAttempts: 5 });
  }

  /** Runs one EC2 call, turning its errors into capacity / retryable / non-retryable failures. */
  private async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.failure(operation, err);
    }
  }

  private failure(operation: string, err: unknown): Error {
    const code = errorCode(err);
    const cls = classifyAwsError(err);
    const detail = `${code}: ${(err as Error).message}`;
    const scope = { provider: this.name, entry: this.entry, operation };
    if (cls === 'auth') {
      return providerFailure(cls, scope, detail, `Check the worker's AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the instance role) and that they allow ec2:${operation} in ${this.opts.region}.`);
    }
    if (cls === 'invalid') {
      const field = FIELD_OF_CODE.find(([re]) => re.test(code))?.[1];
      return providerFailure(cls, scope, detail, field ? `Fix '${field}' of ${this.entry} in the pools file.` : undefined);
    }
    return providerFailure(cls, scope, detail);
  }

  /** Every page of a paginated call (the SDK's paginator), its errors sorted as call() sorts them. */
  private async pages<P>(operation: string, pages: AsyncIterable<P>): Promise<P[]> {
    const out: P[] = [];
    try {
      for await (const page of pages) out.push(page);
    } catch (err) {
      throw this.failure(operation, err);
    }
    return out;
  }

  private async findInstances(filters: Filter[]): Promise<Instance[]> {
    const pages = await this.pages('DescribeInstances', paginateDescribeInstances({ client: this.ec2 }, { Filters: [{ Name: `tag:${TAG_MANAGED}`, Values: ['true'] }, ...filters] }));
    const out = pages.flatMap((p) => (p.Reservations ?? []).flatMap((r) => r.Instances ?? []));
    // Live instances first, then the newest: a name may also match an instance long terminated.
    return out.sort((a, b) => Number(b.State?.Name !== 'terminated') - Number(a.State?.Name !== 'terminated') || (b.LaunchTime?.getTime() ?? 0) - (a.LaunchTime?.getTime() ?? 0));
  }

  /**
   * Status checks of the running instances among `instances`, by instance id (DescribeInstanceStatus
   * takes at most 100 ids a call). An id EC2 no longer knows costs the signal for this look-up only.
   */
  private async statusesOf(instances: Instance[]): Promise<Map<string, InstanceStatus>> {
    const ids = instances.filter((i) => i.State?.Name === 'running' && i.InstanceId).map((i) => i.InstanceId!);
    const chunks: string[][] = [];
    for (let at = 0; at < ids.length; at += AWS_DEFAULTS.statusIdsPerCall) chunks.push(ids.slice(at, at + AWS_DEFAULTS.statusIdsPerCall));
    const out = new Map<string, InstanceStatus>();
    await Promise.all(
      chunks.map(async (InstanceIds) => {
        try {
          for await (const page of paginateDescribeInstanceStatus({ client: this.ec2 }, { InstanceIds })) {
            for (const st of page.InstanceStatuses ?? []) if (st.InstanceId) out.set(st.InstanceId, st);
          }
        } catch (err) {
          if (classifyAwsError(err) !== 'not-found') throw this.failure('DescribeInstanceStatus', err);
        }
      }),
    );
    return out;
  }

  private toNode(i: Instance, status?: InstanceStatus): NodeInstance {
    const tags = tagMap(i.Tags);
    const dead = deadFromEc2(i, status);
    return {
      id: tags[TAG_NODE] ?? i.InstanceId!,
      providerId: i.InstanceId,
      pool: tags[TAG_POOL] ?? '',
      provider: this.name,
      instanceType: i.InstanceType ?? '',
      state: state(i.State?.Name),
      ...(dead ? { dead } : {}),
      zone: i.Placement?.AvailabilityZone,
      privateIp: i.PrivateIpAddress,
      tags,
      createdAt: (i.LaunchTime ?? new Date(0)).toISOString(),
    };
  }

  private async instanceOf(nodeId: string): Promise<Instance | undefined> {
    return (await this.findInstances([{ Name: `tag:${TAG_NODE}`, Values: [nodeId] }]))[0];
  }

  async provision(spec: NodeSpec, idempotencyKey: string): Promise<NodeInstance> {
    const nodeId = nodeIdFor(spec.pool, idempotencyKey);
    const mine = await this.findInstances([{ Name: `tag:${TAG_REQUEST}`, Values: [keyHash(idempotencyKey)] }]);
    // EC2 can accept a launch and end it at once for lack of capacity (spot, mostly). Such an instance
    // does not count: try again with the next token (a repeated token would return the dead instance).
    const lost = mine.filter((i) => i.State?.Name === 'terminated' && CAPACITY_CODES.has(i.StateReason?.Code ?? ''));
    let instance = mine.find((i) => !lost.includes(i));
    if (!instance) instance = await this.runInstance(spec, idempotencyKey, nodeId, lost.length);
    if (instance.State?.Name === 'pending') instance = await this.waitRunning(instance.InstanceId!);
    const reason = instance.State?.Name === 'terminated' ? instance.StateReason?.Code : undefined;
    if (reason && CAPACITY_CODES.has(reason)) {
      // EC2 accepted the request but could not place (or keep) the instance: another zone may.
      throw new CapacityError(this.entry, `${this.name} (${this.entry}): instance ${instance.InstanceId} ended at once: ${reason} ${instance.StateReason?.Message ?? ''}`);
    }
    return withAgent(this.locator, this.toNode(instance));
  }

  private async runInstance(spec: NodeSpec, idempotencyKey: string, nodeId: string, generation: number): Promise<Instance> {
    const o = this.opts;
    const tags = toTags({
      Name: nodeId,
      [TAG_POOL]: spec.pool,
      [TAG_NODE]: nodeId,
      [TAG_MANAGED]: 'true',
      [TAG_REQUEST]: keyHash(idempotencyKey),
      ...(spec.serving ? { [TAG_SERVING]: 'true' } : {}),
    });
    const spot = o.spot ? (typeof o.spot === 'object' ? o.spot : {}) : undefined;
    const userData = fillBootTemplate(o.userData?.replaceAll('{{requireModel}}', spec.serving ? '--require-model' : ''), spec.pool, nodeId, this.locator.auth, `${this.entry}: userData`);
    const res = await this.call('RunInstances', () =>
      this.ec2.send(
        new RunInstancesCommand({
          // Real EC2 returns the first instance for a repeated token; the tag lookup above covers moto, which ignores it.
          ClientToken: ec2ClientToken(idempotencyKey, `${this.entry}/${o.region}/${o.zone ?? o.subnetId ?? ''}#${generation}`),
          ImageId: o.imageId,
          InstanceType: (o.instanceType ?? spec.instanceType) as _InstanceType,
          MinCount: 1,
          MaxCount: 1,
          SubnetId: o.subnetId,
          SecurityGroupIds: o.securityGroupIds,
          KeyName: o.keyName,
          IamInstanceProfile: o.iamInstanceProfile ? { Name: o.iamInstanceProfile } : undefined,
          UserData: userData ? Buffer.from(userData).toString('base64') : undefined,
          Placement: o.zone ? { AvailabilityZone: o.zone } : undefined,
          InstanceMarketOptions: spot
            ? { MarketType: 'spot', SpotOptions: { MaxPrice: spot.maxPrice, SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' } }
            : undefined,
          TagSpecifications: [
            { ResourceType: 'instance', Tags: tags },
            { ResourceType: 'volume', Tags: tags },
          ],
        }),
      ),
    );
    const instance = res.Instances?.[0];
    if (!instance?.InstanceId) throw new Error(`${this.name} (${this.entry}) RunInstances returned no instance`);
    return instance;
  }

  /** SDK waiter settings: bounded by maxWaitTime seconds. */
  private waiter(maxWaitTime: number) {
    return { client: this.ec2, maxWaitTime, minDelay: AWS_DEFAULTS.waiterMinDelay, maxDelay: AWS_DEFAULTS.waiterMaxDelay };
  }

  /** Waits for `running` with the SDK waiter, bounded, heartbeating meanwhile. */
  private async waitRunning(instanceId: string): Promise<Instance> {
    const result = await beating(
      waitForInstanceRunning(this.waiter(this.opts.runningTimeoutSeconds ?? AWS_DEFAULTS.runningTimeoutSeconds), { InstanceIds: [instanceId] }),
      { waiting: `${instanceId} to run` },
    );
    // Whatever the waiter concluded (running, terminated, timed out), report the instance as it is now.
    const res = await this.call('DescribeInstances', () => this.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })));
    const instance = res.Reservations?.[0]?.Instances?.[0];
    if (!instance) throw new Error(`${this.name} (${this.entry}): ${instanceId} vanished while starting (waiter: ${result.state})`);
    return instance;
  }

  async terminate(id: string): Promise<void> {
    const instance = await this.instanceOf(id);
    if (instance && instance.State?.Name !== 'terminated') {
      try {
        await this.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instance.InstanceId!] }));
      } catch (err) {
        if (classifyAwsError(err) !== 'not-found') throw this.failure('TerminateInstances', err);
      }
    }
    await this.locator.gone(id);
  }

  async describe(id: string): Promise<NodeInstance | undefined> {
    const instance = await this.instanceOf(id);
    if (!instance) return undefined;
    const statuses = await this.statusesOf([instance]);
    return withAgent(this.locator, this.toNode(instance, statuses.get(instance.InstanceId!)));
  }

  async list(pool: string): Promise<NodeInstance[]> {
    const instances = await this.findInstances([
      { Name: `tag:${TAG_POOL}`, Values: [pool] },
      { Name: 'instance-state-name', Values: ['pending', 'running', 'shutting-down', 'stopping', 'stopped'] },
    ]);
    const statuses = await this.statusesOf(instances);
    const nodes = await Promise.all(instances.map((i) => withAgent(this.locator, this.toNode(i, statuses.get(i.InstanceId!)))));
    return nodes.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /**
   * RebootInstances (EC2 has no idempotency token for it): a key's hash is tagged on the instance
   * after the reboot, so a retry once it is done does not reboot again.
   */
  async reboot(id: string, idempotencyKey?: string): Promise<void> {
    const where = `${this.name} (${this.entry})`;
    const instance = await this.instanceOf(id);
    const st = instance?.State?.Name;
    if (!instance || st === 'terminated' || st === 'shutting-down') throw notRebootable(where, id, instance ? `the instance is ${st}` : 'no such instance');
    // Still starting: retryable, it runs soon. Stopped or stopping: drydock does not start instances again.
    if (st === 'pending') throw new Error(`${where}: node ${id} is still starting (pending); reboot it once it runs`);
    if (st !== 'running') throw notRebootable(where, id, `the instance is ${st}`);
    const key = idempotencyKey === undefined ? undefined : keyHash(idempotencyKey);
    if (key && tagMap(instance.Tags)[TAG_REBOOT] === key) return;
    await this.call('RebootInstances', () => this.ec2.send(new RebootInstancesCommand({ InstanceIds: [instance.InstanceId!] })));
    await this.locator.rebooted(this.toNode(instance));
    if (key) await this.call('CreateTags', () => this.ec2.send(new CreateTagsCommand({ Resources: [instance.InstanceId!], Tags: [{ Key: TAG_REBOOT, Value: key }] })));
  }

  async instanceHealth(id: string): Promise<InstanceHealth | undefined> {
    const instance = await this.instanceOf(id);
    if (!instance) return undefined;
    const res = await this.call('DescribeInstanceStatus', () =>
      this.ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [instance.InstanceId!], IncludeAllInstances: true })),
    );
    return healthFromStatus(res.InstanceStatuses?.[0]);
  }

  /** The EBS volume behind a node: its root device, else its first volume. */
  private async volumeOf(nodeId: string): Promise<string> {
    const instance = await this.instanceOf(nodeId);
    const mappings = instance?.BlockDeviceMappings ?? [];
    const root = mappings.find((m) => m.DeviceName === instance?.RootDeviceName) ?? mappings[0];
    if (!root?.Ebs?.VolumeId) throw providerFailure('invalid', { provider: this.name, entry: this.entry, operation: 'CreateSnapshot' }, `node '${nodeId}' has no EBS volume`, 'Snapshot a node that exists, or pass its volumeId.');
    return root.Ebs.VolumeId;
  }

  private toSnapshot(s: Ec2Snapshot): Snapshot {
    const st = s.State === 'completed' ? 'ready' : s.State === 'error' ? 'failed' : 'pending';
    return {
      id: s.SnapshotId!,
      provider: this.name,
      volumeId: s.VolumeId ?? '',
      state: st,
      sizeGb: s.VolumeSize,
      createdAt: (s.StartTime ?? new Date(0)).toISOString(),
      tags: tagMap(s.Tags),
    };
  }

  private async findSnapshots(tags: Record<string, string>): Promise<Snapshot[]> {
    const pages = await this.pages(
      'DescribeSnapshots',
      paginateDescribeSnapshots({ client: this.ec2 }, { OwnerIds: ['self'], Filters: Object.entries(tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] })) }),
    );
    return pages
      .flatMap((p) => p.Snapshots ?? [])
      .map((s) => this.toSnapshot(s))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async snapshot(req: SnapshotRequest): Promise<Snapshot> {
    // CreateSnapshot has no ClientToken: the key's hash as a tag makes a retry find the first snapshot.
    const keyTag = { [TAG_SNAPSHOT_KEY]: keyHash(req.idempotencyKey) };
    const [existing] = await this.findSnapshots(keyTag);
    if (existing) return existing;
    const volumeId = 'volumeId' in req.source ? req.source.volumeId : await this.volumeOf(req.source.nodeId);
    const res = await this.call('CreateSnapshot', () =>
      this.ec2.send(
        new CreateSnapshotCommand({
          VolumeId: volumeId,
          Description: req.description ?? `drydock snapshot of ${volumeId}`,
          TagSpecifications: [{ ResourceType: 'snapshot', Tags: toTags({ ...req.tags, [TAG_MANAGED]: 'true', ...keyTag }) }],
        }),
      ),
    );
    return this.toSnapshot(res);
  }

  listSnapshots(filter?: { tags?: Record<string, string> }): Promise<Snapshot[]> {
    return this.findSnapshots(filter?.tags ?? {});
  }

  async deleteSnapshot(id: string): Promise<void> {
    try {
      await this.ec2.send(new DeleteSnapshotCommand({ SnapshotId: id }));
    } catch (err) {
      if (classifyAwsError(err) !== 'not-found') throw this.failure('DeleteSnapshot', err);
    }
  }

  private toDisk(v: Volume): Disk {
    return {
      id: v.VolumeId!,
      provider: this.name,
      snapshotId: v.SnapshotId ?? '',
      state: v.State === 'available' || v.State === 'in-use' ? 'ready' : 'creating',
      zone: v.AvailabilityZone,
      sizeGb: v.Size,
      tags: tagMap(v.Tags),
    };
  }

  private async findVolumes(filters: Filter[]): Promise<Volume[]> {
    const pages = await this.pages('DescribeVolumes', paginateDescribeVolumes({ client: this.ec2 }, { Filters: filters }));
    // A deleted volume for the same key does not count; prefer a live one.
    return pages.flatMap((p) => p.Volumes ?? []).filter((v) => v.State !== 'deleting' && v.State !== 'deleted' && v.State !== 'error');
  }

  /**
   * CreateVolume from the snapshot in the request's zone (or this entry's). The volume carries the
   * key's hash as a tag, found first on a retry; the ClientToken covers a retry racing the tag.
   */
  async createDiskFromSnapshot(req: DiskFromSnapshotRequest): Promise<Disk> {
    const zone = req.zone ?? this.opts.zone;
    const scope = { provider: this.name, entry: this.entry, operation: 'CreateVolume' };
    if (!zone) throw providerFailure('invalid', scope, `no availability zone for a volume from ${req.snapshotId}`, `Set 'zone' of ${this.entry} in the pools file, or pass a zone.`);
    const keyTag = { [TAG_DISK_KEY]: keyHash(req.idempotencyKey) };
    let [volume] = await this.findVolumes([{ Name: `tag:${TAG_DISK_KEY}`, Values: [keyTag[TAG_DISK_KEY]] }]);
    if (!volume) {
      volume = await this.call('CreateVolume', () =>
        this.ec2.send(
          new CreateVolumeCommand({
            ClientToken: ec2ClientToken(req.idempotencyKey, `${this.entry}/${this.opts.region}/${zone}/volume`),
            SnapshotId: req.snapshotId,
            AvailabilityZone: zone,
            TagSpecifications: [{ ResourceType: 'volume', Tags: toTags({ ...req.tags, [TAG_MANAGED]: 'true', ...keyTag }) }],
          }),
        ),
      );
    }
    if (volume.State !== 'available' && volume.State !== 'in-use') {
      const result = await beating(
        waitUntilVolumeAvailable(this.waiter(this.opts.volumeTimeoutSeconds ?? AWS_DEFAULTS.volumeTimeoutSeconds), { VolumeIds: [volume.VolumeId!] }).catch((err: unknown) => ({ state: 'FAILURE', reason: err })),
        { waiting: `${volume.VolumeId} to be available` },
      );
      const res = await this.call('DescribeVolumes', () => this.ec2.send(new DescribeVolumesCommand({ VolumeIds: [volume!.VolumeId!] })));
      volume = res.Volumes?.[0] ?? volume;
      if (volume.State !== 'available' && volume.State !== 'in-use') {
        throw providerFailure(volume.State === 'error' ? 'invalid' : 'other', scope, `volume ${volume.VolumeId} from ${req.snapshotId} is ${volume.State} (waiter: ${result.state})`);
      }
    }
    return this.toDisk(volume);
  }
}

import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { checkSchema, DISK_SCHEMA, INSTANCE_SCHEMA, SNAPSHOT_SCHEMA } from './schema.ts';
import { matchesFilter, parseFilter, type Filter } from './filter.ts';

/**
 * A strict, in-memory fake of the Compute Engine v1 REST API: the instances (insert, get, list,
 * delete, reset), zone / global operations, disks.createSnapshot, disks.insert (from a snapshot) and snapshots calls drydock makes, at the paths the real
 * @google-cloud/compute client uses in REST mode. No GCE emulator exists, hence this fake; it is
 * strict so that code passing against it sends what GCE accepts:
 *   - bearer token required (401 otherwise); project and zones must exist (404);
 *   - unknown body fields and query parameters, malformed names, labels, machine types and
 *     requestIds are rejected with 400 `invalid`, as GCE does;
 *   - `requestId` de-duplicates: a repeated request returns the original operation;
 *   - operations go PENDING → RUNNING → DONE over several polls (get or wait), addressable by id or name;
 *   - Google-style errors: 404 notFound, 409 alreadyExists, 429 rateLimitExceeded (injectable);
 *   - a zone can be exhausted: inserts there end with ZONE_RESOURCE_POOL_EXHAUSTED on the operation;
 *   - instances.reset takes an empty body and only a RUNNING instance (else 400 resourceNotReady, as
 *     GCE answers for a resource in the wrong state); the instance stays RUNNING throughout;
 *   - a test can move an instance to TERMINATED, SUSPENDED or REPAIRING, as GCE does on preemption,
 *     host maintenance or a host error.
 */
export interface GceFakeOptions {
  token: string;
  project?: string;
  zones?: string[];
  /** Polls (get / wait) an operation takes to reach DONE; the first poll makes it RUNNING. */
  pollsToDone?: number;
}

type OpStatus = 'PENDING' | 'RUNNING' | 'DONE';

interface Operation {
  id: string;
  name: string;
  zone?: string;
  operationType: string;
  targetLink: string;
  targetId: string;
  status: OpStatus;
  polls: number;
  insertTime: string;
  startTime?: string;
  endTime?: string;
  error?: { code: string; message: string };
  onRunning?: () => void;
  /** Returns an operation error, if the work failed. */
  onDone?: () => { code: string; message: string } | undefined;
}

export type FakeInstanceStatus = 'PROVISIONING' | 'STAGING' | 'RUNNING' | 'STOPPING' | 'TERMINATED' | 'SUSPENDED' | 'REPAIRING';

export interface FakeInstance {
  id: string;
  name: string;
  zone: string;
  machineType: string;
  status: FakeInstanceStatus;
  statusMessage?: string;
  /** How many instances.reset operations finished on it. */
  resets: number;
  labels: Record<string, string>;
  creationTimestamp: string;
  networkIP: string;
  body: Record<string, unknown>;
}

export interface FakeDisk {
  id: string;
  name: string;
  zone: string;
  sizeGb: string;
  autoDelete: boolean;
  status?: 'CREATING' | 'READY';
  labels?: Record<string, string>;
  /** Set on disks made by disks.insert from a snapshot. */
  sourceSnapshot?: string;
  sourceSnapshotId?: string;
  description?: string;
}

interface FakeSnapshot {
  id: string;
  name: string;
  sourceDisk: string;
  sourceDiskId: string;
  diskSizeGb: string;
  status: 'CREATING' | 'UPLOADING' | 'READY' | 'DELETING';
  labels: Record<string, string>;
  description?: string;
  creationTimestamp: string;
}

export interface GceFake {
  port: number;
  project: string;
  /** Inserts into this zone end with ZONE_RESOURCE_POOL_EXHAUSTED until turned off. */
  exhaustZone(zone: string, exhausted?: boolean): void;
  /** The next `count` requests answer 429 rateLimitExceeded. */
  rateLimit(count: number): void;
  /** Every instance the fake holds (all zones), for assertions. */
  instances(): FakeInstance[];
  /** Moves an instance to a status on GCE's own account (preemption, host maintenance, a host error), with GCE's message. */
  setInstanceStatus(zone: string, name: string, status: FakeInstanceStatus, statusMessage?: string): void;
  /** Every disk the fake holds (all zones; boot disks and disks made from snapshots), for assertions. */
  disks(): FakeDisk[];
  /** Count of requests by method name (`instances.insert`, `zoneOperations.wait`, …), for assertions. */
  calls: Map<string, number>;
  stop(): Promise<void>;
}

const NAME = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const NAME_HELP = "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'";
const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BASE = 'https://www.googleapis.com/compute/v1';
const SYSTEM_PARAMS = ['$alt', '$prettyPrint', 'alt', 'prettyPrint', 'fields'];

class GceError extends Error {
  constructor(readonly code: number, readonly reason: string, message: string, readonly status?: string, readonly domain = 'global') {
    super(message);
  }
}

const notFound = (what: string) => new GceError(404, 'notFound', `The resource '${what}' was not found`);
const invalid = (message: string) => new GceError(400, 'invalid', message, 'INVALID_ARGUMENT');

const last = (url: string) => url.split('/').pop() ?? '';

function numericId(): string {
  return (BigInt('0x' + randomBytes(7).toString('hex')) + 1000000000000000n).toString();
}

export async function startGceFake(opts: GceFakeOptions): Promise<GceFake> {
  const project = opts.project ?? 'drydock-test';
  const zones = new Set(opts.zones ?? ['us-central1-a', 'us-central1-b', 'europe-west4-a']);
  const pollsToDone = Math.max(2, opts.pollsToDone ?? 3);
  const instances = new Map<string, FakeInstance>(); // zone/name
  const disks = new Map<string, FakeDisk>(); // zone/name
  const snapshots = new Map<string, FakeSnapshot>(); // name
  const ops = new Map<string, Operation>(); // id
  const opNames = new Map<string, string>(); // name → id
  const requestIds = new Map<string, string>(); // scope + requestId → op id
  const exhausted = new Set<string>();
  const calls = new Map<string, number>();
  let rateLimited = 0;
  let ipCounter = 2;

  const zoneUrl = (z: string) => `${BASE}/projects/${project}/zones/${z}`;

  function newOp(scope: string | undefined, operationType: string, targetLink: string, targetId: string, hooks: Pick<Operation, 'onRunning' | 'onDone'>): Operation {
    const id = numericId();
    const op: Operation = {
      id,
      name: `operation-${Date.now()}-${randomBytes(6).toString('hex')}`,
      zone: scope,
      operationType,
      targetLink,
      targetId,
      status: 'PENDING',
      polls: 0,
      insertTime: new Date().toISOString(),
      ...hooks,
    };
    ops.set(id, op);
    opNames.set(op.name, id);
    return op;
  }

  /** One poll moves the operation one step: PENDING → RUNNING → … → DONE. */
  function advance(op: Operation): void {
    if (op.status === 'DONE') return;
    op.polls++;
    if (op.status === 'PENDING') {
      op.status = 'RUNNING';
      op.startTime = new Date().toISOString();
      op.onRunning?.();
    }
    if (op.polls >= pollsToDone) {
      op.status = 'DONE';
      op.endTime = new Date().toISOString();
      op.error = op.onDone?.();
    }
  }

  function opJson(op: Operation) {
    return {
      kind: 'compute#operation',
      id: op.id,
      name: op.name,
      ...(op.zone ? { zone: zoneUrl(op.zone) } : {}),
      operationType: op.operationType,
      targetLink: op.targetLink,
      targetId: op.targetId,
      status: op.status,
      user: 'drydock@fake',
      progress: op.status === 'DONE' ? 100 : op.status === 'RUNNING' ? 50 : 0,
      insertTime: op.insertTime,
      ...(op.startTime ? { startTime: op.startTime } : {}),
      ...(op.endTime ? { endTime: op.endTime } : {}),
      selfLink: op.zone ? `${zoneUrl(op.zone)}/operations/${op.name}` : `${BASE}/projects/${project}/global/operations/${op.name}`,
      ...(op.error
        ? { error: { errors: [op.error] }, httpErrorStatusCode: op.error.code === 'ZONE_RESOURCE_POOL_EXHAUSTED' ? 503 : 400, httpErrorMessage: op.error.code === 'ZONE_RESOURCE_POOL_EXHAUSTED' ? 'SERVICE UNAVAILABLE' : 'BAD REQUEST' }
        : {}),
    };
  }

  function instanceJson(i: FakeInstance) {
    const disk = disks.get(`${i.zone}/${i.name}`);
    return {
      kind: 'compute#instance',
      id: i.id,
      name: i.name,
      zone: zoneUrl(i.zone),
      machineType: `${zoneUrl(i.zone)}/machineTypes/${i.machineType}`,
      status: i.status,
      ...(i.statusMessage ? { statusMessage: i.statusMessage } : {}),
      labels: i.labels,
      labelFingerprint: 'fp',
      creationTimestamp: i.creationTimestamp,
      selfLink: `${zoneUrl(i.zone)}/instances/${i.name}`,
      networkInterfaces: [{ kind: 'compute#networkInterface', name: 'nic0', network: `${BASE}/projects/${project}/global/networks/default`, networkIP: i.networkIP }],
      disks: disk
        ? [{ kind: 'compute#attachedDisk', boot: true, autoDelete: disk.autoDelete, deviceName: 'persistent-disk-0', type: 'PERSISTENT', mode: 'READ_WRITE', index: 0, diskSizeGb: disk.sizeGb, source: `${zoneUrl(i.zone)}/disks/${disk.name}` }]
        : [],
      ...(i.body.metadata ? { metadata: { kind: 'compute#metadata', fingerprint: 'fp', ...(i.body.metadata as object) } } : {}),
      ...(i.body.scheduling ? { scheduling: i.body.scheduling } : {}),
    };
  }

  function snapshotJson(s: FakeSnapshot) {
    return {
      kind: 'compute#snapshot',
      id: s.id,
      name: s.name,
      status: s.status,
      sourceDisk: s.sourceDisk,
      sourceDiskId: s.sourceDiskId,
      diskSizeGb: s.diskSizeGb,
      labels: s.labels,
      ...(s.description ? { description: s.description } : {}),
      creationTimestamp: s.creationTimestamp,
      selfLink: `${BASE}/projects/${project}/global/snapshots/${s.name}`,
    };
  }

  function checkLabels(labels: unknown, field: string): void {
    for (const [k, v] of Object.entries((labels ?? {}) as Record<string, string>)) {
      if (!LABEL_KEY.test(k) || !LABEL_VALUE.test(v)) throw invalid(`Invalid value for field '${field}': '${k}=${v}'. Label keys and values may hold lowercase letters, digits, '_' and '-' (keys start with a letter, 63 characters at most)`);
    }
  }

  function checkQuery(q: URLSearchParams, allowed: string[]): void {
    for (const k of q.keys()) {
      if (!allowed.includes(k) && !SYSTEM_PARAMS.includes(k)) {
        throw invalid(`Invalid JSON payload received. Unknown name "${k}": Cannot bind query parameter. Field '${k}' could not be found in request message.`);
      }
    }
  }

  /** A repeated requestId returns the first operation; a new one registers. */
  function dedupe(scope: string, q: URLSearchParams, make: () => Operation): Operation {
    const rid = q.get('requestId');
    if (rid !== null && (!UUID.test(rid) || /^[0-]+$/.test(rid))) throw invalid(`Invalid value for field 'requestId': '${rid}'. The request id must be a valid UUID with the exception that zero UUID is not supported.`);
    if (rid) {
      const seen = requestIds.get(`${scope}|${rid}`);
      if (seen) return ops.get(seen)!;
    }
    const op = make();
    if (rid) requestIds.set(`${scope}|${rid}`, op.id);
    return op;
  }

  function findOp(ref: string, zone: string | undefined): Operation {
    const op = ops.get(ref) ?? ops.get(opNames.get(ref) ?? '');
    if (!op || op.zone !== zone) throw notFound(zone ? `projects/${project}/zones/${zone}/operations/${ref}` : `projects/${project}/global/operations/${ref}`);
    return op;
  }

  function page<T>(items: T[], q: URLSearchParams): { items: T[]; nextPageToken?: string } {
    const max = q.has('maxResults') ? Number(q.get('maxResults')) : 500;
    if (!Number.isInteger(max) || max < 0 || max > 500) throw invalid(`Invalid value for field 'maxResults': '${q.get('maxResults')}'. Must be between 0 and 500.`);
    const start = q.get('pageToken') ? Number(q.get('pageToken')) : 0;
    if (!Number.isInteger(start) || start < 0) throw invalid(`Invalid value for field 'pageToken': '${q.get('pageToken')}'.`);
    const size = max === 0 ? 500 : max;
    const slice = items.slice(start, start + size);
    return start + size < items.length ? { items: slice, nextPageToken: String(start + size) } : { items: slice };
  }

  function filterOf(q: URLSearchParams): Filter {
    const raw = q.get('filter');
    if (!raw) return [];
    const f = parseFilter(raw);
    if (!f) throw invalid(`Invalid value for field 'filter': '${raw}'. Invalid list filter expression.`);
    return f;
  }

  function insertInstance(zone: string, q: URLSearchParams, body: Record<string, unknown>): Operation {
    checkQuery(q, ['requestId', 'sourceInstanceTemplate', 'sourceMachineImage']);
    const bad = checkSchema(body, INSTANCE_SCHEMA, 'instance');
    if (bad) throw invalid(bad);
    const name = body.name;
    if (typeof name !== 'string' || !NAME.test(name)) throw invalid(`Invalid value for field 'resource.name': '${String(name ?? '')}'. ${NAME_HELP}`);
    const mt = String(body.machineType ?? '');
    const m = mt.match(/^(?:https:\/\/www\.googleapis\.com\/compute\/v1\/projects\/([^/]+)\/)?zones\/([^/]+)\/machineTypes\/([a-z0-9-]+)$/);
    if (!m || (m[1] && m[1] !== project) || m[2] !== zone) throw invalid(`Invalid value for field 'resource.machineType': '${mt}'. Machine type must be 'zones/${zone}/machineTypes/<type>'.`);
    checkLabels(body.labels, 'resource.labels');
    const diskList = (body.disks ?? []) as { boot?: boolean; autoDelete?: boolean; initializeParams?: { sourceImage?: string; diskSizeGb?: string; labels?: unknown } }[];
    const boot = diskList.filter((d) => d.boot);
    if (boot.length !== 1 || !boot[0].initializeParams?.sourceImage) throw invalid("Invalid value for field 'resource.disks': ''. Boot disk must be specified, with initializeParams.sourceImage.");
    checkLabels(boot[0].initializeParams.labels, 'resource.disks[0].initializeParams.labels');
    const model = (body.scheduling as { provisioningModel?: string } | undefined)?.provisioningModel;
    if (model !== undefined && model !== 'STANDARD' && model !== 'SPOT') throw invalid(`Invalid value for field 'resource.scheduling.provisioningModel': '${model}'. Must be STANDARD or SPOT.`);

    return dedupe(`zones/${zone}`, q, () => {
      const key = `${zone}/${name}`;
      if (instances.has(key)) throw new GceError(409, 'alreadyExists', `The resource 'projects/${project}/zones/${zone}/instances/${name}' already exists`);
      const inst: FakeInstance = {
        id: numericId(),
        name,
        zone,
        machineType: m[3],
        status: 'PROVISIONING',
        resets: 0,
        labels: (body.labels ?? {}) as Record<string, string>,
        creationTimestamp: new Date().toISOString(),
        networkIP: `10.128.0.${ipCounter++}`,
        body,
      };
      instances.set(key, inst);
      const exhaustedNow = exhausted.has(zone);
      return newOp(zone, 'insert', `${zoneUrl(zone)}/instances/${name}`, inst.id, {
        onRunning: () => {
          if (!exhaustedNow) {
            inst.status = 'STAGING';
            disks.set(key, { id: numericId(), name, zone, sizeGb: String(boot[0].initializeParams!.diskSizeGb ?? '10'), autoDelete: boot[0].autoDelete ?? true });
          }
        },
        onDone: () => {
          if (exhaustedNow) {
            instances.delete(key);
            return {
              code: 'ZONE_RESOURCE_POOL_EXHAUSTED',
              message: `The zone 'projects/${project}/zones/${zone}' does not have enough resources available to fulfill the request.  Try a different zone, or try again later.`,
            };
          }
          inst.status = 'RUNNING';
          return undefined;
        },
      });
    });
  }

  function deleteInstance(zone: string, name: string, q: URLSearchParams): Operation {
    checkQuery(q, ['requestId', 'noGracefulShutdown']);
    return dedupe(`zones/${zone}`, q, () => {
      const key = `${zone}/${name}`;
      const inst = instances.get(key);
      if (!inst) throw notFound(`projects/${project}/zones/${zone}/instances/${name}`);
      return newOp(zone, 'delete', `${zoneUrl(zone)}/instances/${name}`, inst.id, {
        onRunning: () => {
          inst.status = 'STOPPING';
        },
        onDone: () => {
          instances.delete(key);
          if (disks.get(key)?.autoDelete) disks.delete(key);
          return undefined;
        },
      });
    });
  }

  /** instances.reset: a hard reset of a RUNNING instance, which stays RUNNING; the body must be empty. */
  function resetInstance(zone: string, name: string, q: URLSearchParams, body: Record<string, unknown>): Operation {
    checkQuery(q, ['requestId']);
    const extra = Object.keys(body)[0];
    if (extra !== undefined) throw invalid(`Invalid JSON payload received. Unknown name "${extra}": Cannot find field. The request body must be empty.`);
    return dedupe(`zones/${zone}`, q, () => {
      const inst = instances.get(`${zone}/${name}`);
      if (!inst) throw notFound(`projects/${project}/zones/${zone}/instances/${name}`);
      if (inst.status !== 'RUNNING') throw new GceError(400, 'resourceNotReady', `The resource 'projects/${project}/zones/${zone}/instances/${name}' is not ready`);
      return newOp(zone, 'reset', `${zoneUrl(zone)}/instances/${name}`, inst.id, {
        onDone: () => {
          inst.resets++;
          return undefined;
        },
      });
    });
  }

  function createSnapshot(zone: string, diskName: string, q: URLSearchParams, body: Record<string, unknown>): Operation {
    checkQuery(q, ['requestId', 'guestFlush']);
    const bad = checkSchema(body, SNAPSHOT_SCHEMA, 'snapshot');
    if (bad) throw invalid(bad);
    const name = body.name;
    if (typeof name !== 'string' || !NAME.test(name)) throw invalid(`Invalid value for field 'resource.name': '${String(name ?? '')}'. ${NAME_HELP}`);
    checkLabels(body.labels, 'resource.labels');
    return dedupe(`zones/${zone}`, q, () => {
      const disk = disks.get(`${zone}/${diskName}`);
      if (!disk) throw notFound(`projects/${project}/zones/${zone}/disks/${diskName}`);
      if (snapshots.has(name)) throw new GceError(409, 'alreadyExists', `The resource 'projects/${project}/global/snapshots/${name}' already exists`);
      const snap: FakeSnapshot = {
        id: numericId(),
        name,
        sourceDisk: `${zoneUrl(zone)}/disks/${diskName}`,
        sourceDiskId: disk.id,
        diskSizeGb: disk.sizeGb,
        status: 'CREATING',
        labels: (body.labels ?? {}) as Record<string, string>,
        description: body.description as string | undefined,
        creationTimestamp: new Date().toISOString(),
      };
      snapshots.set(name, snap);
      return newOp(zone, 'createSnapshot', `${zoneUrl(zone)}/disks/${diskName}`, disk.id, {
        onRunning: () => {
          snap.status = 'UPLOADING';
        },
        onDone: () => {
          snap.status = 'READY';
          return undefined;
        },
      });
    });
  }

  /** disks.insert: only the from-a-snapshot form drydock uses (sourceSnapshot required). */
  function insertDisk(zone: string, q: URLSearchParams, body: Record<string, unknown>): Operation {
    checkQuery(q, ['requestId', 'sourceImage']);
    if (q.has('sourceImage')) throw invalid("Invalid value for field 'sourceImage': the fake makes disks from snapshots only.");
    const bad = checkSchema(body, DISK_SCHEMA, 'disk');
    if (bad) throw invalid(bad);
    const name = body.name;
    if (typeof name !== 'string' || !NAME.test(name)) throw invalid(`Invalid value for field 'resource.name': '${String(name ?? '')}'. ${NAME_HELP}`);
    checkLabels(body.labels, 'resource.labels');
    const src = body.sourceSnapshot;
    if (typeof src !== 'string' || !src) throw invalid("Invalid value for field 'resource.sourceSnapshot': ''. Source snapshot must be specified.");
    const snapName = last(src);
    if (!/^(?:(?:https:\/\/www\.googleapis\.com\/compute\/v1\/)?projects\/[^/]+\/)?(?:global\/snapshots\/)?[^/]+$/.test(src)) throw invalid(`Invalid value for field 'resource.sourceSnapshot': '${src}'. The URL is malformed.`);
    return dedupe(`zones/${zone}`, q, () => {
      if (!zones.has(zone)) throw notFound(`projects/${project}/zones/${zone}`);
      const snap = snapshots.get(snapName);
      if (!snap) throw notFound(`projects/${project}/global/snapshots/${snapName}`);
      if (snap.status !== 'READY') throw new GceError(400, 'resourceNotReady', `The resource 'projects/${project}/global/snapshots/${snapName}' is not ready`);
      const key = `${zone}/${name}`;
      if (disks.has(key)) throw new GceError(409, 'alreadyExists', `The resource 'projects/${project}/zones/${zone}/disks/${name}' already exists`);
      const sizeGb = body.sizeGb === undefined ? snap.diskSizeGb : String(body.sizeGb);
      if (Number(sizeGb) < Number(snap.diskSizeGb)) throw invalid(`Invalid value for field 'resource.sizeGb': '${sizeGb}'. Disk size cannot be smaller than the snapshot size (${snap.diskSizeGb} GB).`);
      const disk: FakeDisk = {
        id: numericId(),
        name,
        zone,
        sizeGb,
        autoDelete: false,
        status: 'CREATING',
        labels: (body.labels ?? {}) as Record<string, string>,
        sourceSnapshot: `${BASE}/projects/${project}/global/snapshots/${snapName}`,
        sourceSnapshotId: snap.id,
        description: body.description as string | undefined,
      };
      disks.set(key, disk);
      return newOp(zone, 'insert', `${zoneUrl(zone)}/disks/${name}`, disk.id, {
        onDone: () => {
          disk.status = 'READY';
          return undefined;
        },
      });
    });
  }

  function diskJson(d: FakeDisk) {
    return {
      kind: 'compute#disk',
      id: d.id,
      name: d.name,
      zone: zoneUrl(d.zone),
      sizeGb: d.sizeGb,
      status: d.status ?? 'READY',
      ...(d.labels ? { labels: d.labels } : {}),
      ...(d.sourceSnapshot ? { sourceSnapshot: d.sourceSnapshot, sourceSnapshotId: d.sourceSnapshotId } : {}),
      ...(d.description ? { description: d.description } : {}),
      selfLink: `${zoneUrl(d.zone)}/disks/${d.name}`,
    };
  }

  function deleteSnapshot(name: string, q: URLSearchParams): Operation {
    checkQuery(q, ['requestId']);
    return dedupe('global', q, () => {
      const snap = snapshots.get(name);
      if (!snap) throw notFound(`projects/${project}/global/snapshots/${name}`);
      return newOp(undefined, 'delete', `${BASE}/projects/${project}/global/snapshots/${name}`, snap.id, {
        onRunning: () => {
          snap.status = 'DELETING';
        },
        onDone: () => {
          snapshots.delete(name);
          return undefined;
        },
      });
    });
  }

  type Route = [string, string, RegExp, (m: string[], q: URLSearchParams, body: Record<string, unknown>) => unknown];
  const P = `/compute/v1/projects/([^/]+)`;
  const Z = `${P}/zones/([^/]+)`;
  const routes: Route[] = [
    ['instances.insert', 'POST', new RegExp(`^${Z}/instances$`), ([, , z], q, b) => opJson(insertInstance(z, q, b))],
    ['instances.list', 'GET', new RegExp(`^${Z}/instances$`), ([, , z], q) => {
      checkQuery(q, ['filter', 'maxResults', 'orderBy', 'pageToken', 'returnPartialSuccess']);
      const f = filterOf(q);
      const all = [...instances.values()].filter((i) => i.zone === z).map(instanceJson).filter((i) => matchesFilter(i, f));
      return { kind: 'compute#instanceList', id: `projects/${project}/zones/${z}/instances`, selfLink: `${zoneUrl(z)}/instances`, ...page(all, q) };
    }],
    ['instances.get', 'GET', new RegExp(`^${Z}/instances/([^/]+)$`), ([, , z, n], q) => {
      checkQuery(q, []);
      const i = instances.get(`${z}/${n}`);
      if (!i) throw notFound(`projects/${project}/zones/${z}/instances/${n}`);
      return instanceJson(i);
    }],
    ['instances.delete', 'DELETE', new RegExp(`^${Z}/instances/([^/]+)$`), ([, , z, n], q) => opJson(deleteInstance(z, n, q))],
    ['instances.reset', 'POST', new RegExp(`^${Z}/instances/([^/]+)/reset$`), ([, , z, n], q, b) => opJson(resetInstance(z, n, q, b))],
    ['disks.get', 'GET', new RegExp(`^${Z}/disks/([^/]+)$`), ([, , z, n], q) => {
      checkQuery(q, []);
      const d = disks.get(`${z}/${n}`);
      if (!d) throw notFound(`projects/${project}/zones/${z}/disks/${n}`);
      return diskJson(d);
    }],
    ['disks.insert', 'POST', new RegExp(`^${Z}/disks$`), ([, , z], q, b) => opJson(insertDisk(z, q, b))],
    ['disks.createSnapshot', 'POST', new RegExp(`^${Z}/disks/([^/]+)/createSnapshot$`), ([, , z, n], q, b) => opJson(createSnapshot(z, n, q, b))],
    ['zoneOperations.get', 'GET', new RegExp(`^${Z}/operations/([^/]+)$`), ([, , z, ref], q) => {
      checkQuery(q, []);
      const op = findOp(ref, z);
      advance(op);
      return opJson(op);
    }],
    ['zoneOperations.wait', 'POST', new RegExp(`^${Z}/operations/([^/]+)/wait$`), ([, , z, ref], q) => {
      checkQuery(q, []);
      const op = findOp(ref, z);
      advance(op);
      return opJson(op);
    }],
    ['globalOperations.get', 'GET', new RegExp(`^${P}/global/operations/([^/]+)$`), ([, , ref], q) => {
      checkQuery(q, []);
      const op = findOp(ref, undefined);
      advance(op);
      return opJson(op);
    }],
    ['globalOperations.wait', 'POST', new RegExp(`^${P}/global/operations/([^/]+)/wait$`), ([, , ref], q) => {
      checkQuery(q, []);
      const op = findOp(ref, undefined);
      advance(op);
      return opJson(op);
    }],
    ['snapshots.list', 'GET', new RegExp(`^${P}/global/snapshots$`), (_m, q) => {
      checkQuery(q, ['filter', 'maxResults', 'orderBy', 'pageToken', 'returnPartialSuccess']);
      const f = filterOf(q);
      const all = [...snapshots.values()].map(snapshotJson).filter((s) => matchesFilter(s, f));
      return { kind: 'compute#snapshotList', id: `projects/${project}/global/snapshots`, selfLink: `${BASE}/projects/${project}/global/snapshots`, ...page(all, q) };
    }],
    ['snapshots.get', 'GET', new RegExp(`^${P}/global/snapshots/([^/]+)$`), ([, , n], q) => {
      checkQuery(q, []);
      const s = snapshots.get(n);
      if (!s) throw notFound(`projects/${project}/global/snapshots/${n}`);
      return snapshotJson(s);
    }],
    ['snapshots.delete', 'DELETE', new RegExp(`^${P}/global/snapshots/([^/]+)$`), ([, , n], q) => opJson(deleteSnapshot(n, q))],
  ];

  function send(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
    res.end(JSON.stringify(body));
  }

  function sendError(res: ServerResponse, e: GceError): void {
    send(res, e.code, {
      error: {
        code: e.code,
        message: e.message,
        errors: [{ message: e.message, domain: e.domain, reason: e.reason }],
        ...(e.status ? { status: e.status } : {}),
      },
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const url = new URL(req.url ?? '/', 'http://fake');
    try {
      if (req.headers.authorization !== `Bearer ${opts.token}`) {
        throw new GceError(401, 'required', 'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.', 'UNAUTHENTICATED');
      }
      if (rateLimited > 0) {
        rateLimited--;
        throw new GceError(429, 'rateLimitExceeded', 'Rate Limit Exceeded', 'RESOURCE_EXHAUSTED', 'usageLimits');
      }
      for (const [name, method, re, fn] of routes) {
        const m = url.pathname.match(re);
        if (!m || req.method !== method) continue;
        calls.set(name, (calls.get(name) ?? 0) + 1);
        if (m[1] !== project) throw notFound(`projects/${m[1]}`);
        if (re.source.includes('zones') && !zones.has(m[2])) throw notFound(`projects/${project}/zones/${m[2]}`);
        let body: Record<string, unknown> = {};
        if (method === 'POST' && raw && !re.source.endsWith('wait$')) {
          try {
            body = JSON.parse(raw) as Record<string, unknown>;
          } catch {
            throw invalid('Invalid JSON payload received.');
          }
        }
        send(res, 200, fn(m, url.searchParams, body));
        return;
      }
      throw notFound(`${req.method} ${url.pathname}`);
    } catch (err) {
      if (err instanceof GceError) sendError(res, err);
      else send(res, 500, { error: { code: 500, message: String(err), errors: [{ message: String(err), domain: 'global', reason: 'backendError' }] } });
    }
  }

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    project,
    exhaustZone(zone, on = true) {
      if (on) exhausted.add(zone);
      else exhausted.delete(zone);
    },
    rateLimit(count) {
      rateLimited = count;
    },
    instances: () => [...instances.values()],
    setInstanceStatus(zone, name, status, statusMessage) {
      const inst = instances.get(`${zone}/${name}`);
      if (!inst) throw new Error(`gce fake: no instance ${zone}/${name}`);
      inst.status = status;
      inst.statusMessage = statusMessage;
    },
    disks: () => [...disks.values()],
    calls,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * The request bodies the fake accepts, field by field (the subset of the Compute v1 resources that
 * drydock and the client library send). Anything else is rejected the way GCE rejects it.
 */
export type Schema = 'string' | 'int64' | 'number' | 'bool' | 'map' | Schema[] | { [field: string]: Schema };

const initializeParams: Schema = {
  sourceImage: 'string',
  diskSizeGb: 'int64',
  diskType: 'string',
  diskName: 'string',
  description: 'string',
  labels: 'map',
  resourceManagerTags: 'map',
  provisionedIops: 'int64',
  provisionedThroughput: 'int64',
};

export const INSTANCE_SCHEMA: Schema = {
  name: 'string',
  description: 'string',
  machineType: 'string',
  labels: 'map',
  minCpuPlatform: 'string',
  canIpForward: 'bool',
  deletionProtection: 'bool',
  hostname: 'string',
  disks: [
    {
      boot: 'bool',
      autoDelete: 'bool',
      deviceName: 'string',
      mode: 'string',
      type: 'string',
      source: 'string',
      interface: 'string',
      diskSizeGb: 'int64',
      initializeParams,
    },
  ],
  networkInterfaces: [
    {
      network: 'string',
      subnetwork: 'string',
      networkIP: 'string',
      nicType: 'string',
      stackType: 'string',
      accessConfigs: [{ name: 'string', type: 'string', networkTier: 'string', natIP: 'string' }],
    },
  ],
  metadata: { items: [{ key: 'string', value: 'string' }], fingerprint: 'string' },
  scheduling: {
    preemptible: 'bool',
    provisioningModel: 'string',
    automaticRestart: 'bool',
    onHostMaintenance: 'string',
    instanceTerminationAction: 'string',
  },
  serviceAccounts: [{ email: 'string', scopes: ['string'] }],
  guestAccelerators: [{ acceleratorType: 'string', acceleratorCount: 'number' }],
  tags: { items: ['string'] },
};

export const SNAPSHOT_SCHEMA: Schema = {
  name: 'string',
  description: 'string',
  labels: 'map',
  storageLocations: ['string'],
  snapshotType: 'string',
};

/** disks.insert from a snapshot: the fields drydock sends and the common ones next to them. */
export const DISK_SCHEMA: Schema = {
  name: 'string',
  description: 'string',
  labels: 'map',
  sizeGb: 'int64',
  type: 'string',
  sourceSnapshot: 'string',
  physicalBlockSizeBytes: 'int64',
  // A map of DiskAsyncReplicationList the REST client sends (empty) with every disk; other values are not modelled.
  asyncSecondaryDisks: 'map',
};

/** Checks a value against a schema; returns GCE's message for the first problem, or undefined. */
export function checkSchema(value: unknown, schema: Schema, path: string): string | undefined {
  if (Array.isArray(schema)) {
    if (!Array.isArray(value)) return `Invalid value at '${path}': expected a list`;
    for (let i = 0; i < value.length; i++) {
      const bad = checkSchema(value[i], schema[0], `${path}[${i}]`);
      if (bad) return bad;
    }
    return undefined;
  }
  if (typeof schema === 'object') {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return `Invalid value at '${path}': expected an object`;
    for (const [k, v] of Object.entries(value)) {
      if (!(k in schema)) return `Invalid JSON payload received. Unknown name "${k}" at '${path}': Cannot find field.`;
      const bad = checkSchema(v, schema[k], `${path}.${k}`);
      if (bad) return bad;
    }
    return undefined;
  }
  switch (schema) {
    case 'string':
      return typeof value === 'string' ? undefined : `Invalid value at '${path}' (TYPE_STRING)`;
    case 'bool':
      return typeof value === 'boolean' ? undefined : `Invalid value at '${path}' (TYPE_BOOL)`;
    case 'number':
      return typeof value === 'number' && Number.isInteger(value) ? undefined : `Invalid value at '${path}' (TYPE_INT32)`;
    case 'int64':
      // proto3 JSON sends int64 as a decimal string.
      return (typeof value === 'string' && /^\d+$/.test(value)) || (typeof value === 'number' && Number.isInteger(value))
        ? undefined
        : `Invalid value at '${path}' (TYPE_INT64), "${String(value)}"`;
    case 'map':
      return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string')
        ? undefined
        : `Invalid value at '${path}': expected a map of strings`;
  }
}

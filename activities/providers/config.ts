import type { AwsEc2Options } from './aws.ts';
import type { LocalBootHookOptions } from './bootHook.ts';
import type { GceOptions } from './gce.ts';
import type { LocalProviderOptions } from './local.ts';
import { STRATEGIES, type Strategy } from './multi.ts';

/** Where a cloud instance's gpu-agent is found. */
export interface AgentSettings {
  /** Port the agent listens on at the instance's private IP (default 9400). */
  port?: number;
  /** The agent serves HTTPS (--tls-cert/--tls-key); the worker trusts its CA via NODE_EXTRA_CA_CERTS. */
  tls?: boolean;
  /** Dev / tests only: start a local gpu-agent per instance instead of reaching the instance. */
  bootHook?: { type: 'local-agent' } & LocalBootHookOptions;
}

export type LocalProviderConfig = { type: 'local'; name?: string } & LocalProviderOptions;
export type AwsProviderConfig = { type: 'aws-ec2'; name?: string; agent?: AgentSettings } & AwsEc2Options;
export type GceProviderConfig = { type: 'gce'; name?: string; agent?: AgentSettings } & GceOptions;
export type ProviderConfig = LocalProviderConfig | AwsProviderConfig | GceProviderConfig;

/** A pool as the control worker knows it: which provider(s) hold its nodes and what they are. */
export interface PoolConfig {
  name: string;
  instanceType: string;
  /** The pool's provider; in a multi-provider pool, its first entry. */
  provider: ProviderConfig;
  /** All entries in listed order, when the pool has several providers or zones. */
  providers?: ProviderConfig[];
  /** How a multi-provider pool picks where a new node goes (default priority). */
  strategy?: Strategy;
  /** Price per node-hour by entry name, for strategy `cheapest`. */
  prices?: Record<string, number>;
}

export const POOL_DEFAULTS = { strategy: 'priority' as Strategy };

/** A pools file problem; the message names the field (`pools[1].providers[0].zone: …`). */
export class PoolsFileError extends Error {}

type Obj = Record<string, unknown>;
const POOL_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const ENTRY_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SECRET_LIKE = /secret|password|accesskey|credential|token|privatekey/i;

class V {
  constructor(readonly path: string) {}
  fail(field: string, problem: string): never {
    throw new PoolsFileError(`${this.path}.${field}: ${problem}`);
  }
  obj(v: unknown, field: string): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(field, 'expected an object');
    return v as Obj;
  }
  only(o: Obj, allowed: string[], at: string): void {
    for (const k of Object.keys(o)) {
      if (allowed.includes(k)) continue;
      const where = at ? `${at}.${k}` : k;
      if (SECRET_LIKE.test(k)) this.fail(where, 'credentials never go in the pools file; the worker reads them from its environment (AWS_PROFILE / AWS_ACCESS_KEY_ID, GOOGLE_APPLICATION_CREDENTIALS, DRYDOCK_GCE_ACCESS_TOKEN)');
      this.fail(where, `unknown field (allowed: ${allowed.join(', ')})`);
    }
  }
  str(o: Obj, k: string, required: true, re?: RegExp, help?: string): string;
  str(o: Obj, k: string, required?: false, re?: RegExp, help?: string): string | undefined;
  str(o: Obj, k: string, required = false, re?: RegExp, help?: string): string | undefined {
    const v = o[k];
    if (v === undefined) return required ? this.fail(k, 'required: expected a non-empty string') : undefined;
    if (typeof v !== 'string' || !v) this.fail(k, 'expected a non-empty string');
    if (re && !re.test(v)) this.fail(k, `'${v}' is not valid: ${help ?? `must match ${re}`}`);
    return v;
  }
  int(o: Obj, k: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(k, `expected an integer from ${min} to ${max}`);
    return v;
  }
  num(o: Obj, k: string, min: number): number | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) this.fail(k, `expected a number >= ${min}`);
    return v;
  }
  bool(o: Obj, k: string): boolean | undefined {
    const v = o[k];
    if (v !== undefined && typeof v !== 'boolean') this.fail(k, 'expected true or false');
    return v as boolean | undefined;
  }
  strs(o: Obj, k: string): string[] | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || !s)) this.fail(k, 'expected a list of non-empty strings');
    return v as string[];
  }
}

const LOCAL_FIELDS = ['stateDir', 'gpusPerNode', 'bootSeconds', 'simJobs', 'simJobSeconds', 'agentTokensFile', 'faultInjection', 'modelDirs'];

function parseLocalFields(o: Obj, v: V): LocalProviderOptions {
  return {
    stateDir: v.str(o, 'stateDir', true),
    gpusPerNode: v.int(o, 'gpusPerNode', 1, 64),
    bootSeconds: v.num(o, 'bootSeconds', 0),
    simJobs: v.int(o, 'simJobs', 0),
    simJobSeconds: v.num(o, 'simJobSeconds', 0),
    agentTokensFile: v.str(o, 'agentTokensFile'),
    faultInjection: v.bool(o, 'faultInjection'),
    modelDirs: v.strs(o, 'modelDirs'),
  };
}

function parseAgent(raw: unknown, v: V): AgentSettings | undefined {
  if (raw === undefined) return undefined;
  const o = v.obj(raw, 'agent');
  const av = new V(`${v.path}.agent`);
  av.only(o, ['port', 'tls', 'bootHook'], '');
  const port = av.int(o, 'port', 1, 65535);
  const tls = av.bool(o, 'tls');
  if (o.bootHook === undefined) return { port, ...(tls === undefined ? {} : { tls }) };
  const h = av.obj(o.bootHook, 'bootHook');
  const hv = new V(`${v.path}.agent.bootHook`);
  hv.only(h, ['type', ...LOCAL_FIELDS], '');
  if (h.type !== 'local-agent') hv.fail('type', "expected 'local-agent' (starts a local gpu-agent per instance; dev and tests only)");
  return { port, bootHook: { type: 'local-agent', ...parseLocalFields(h, hv) } };
}

function parseAws(o: Obj, v: V): AwsProviderConfig {
  v.only(o, ['type', 'name', 'region', 'imageId', 'instanceType', 'zone', 'subnetId', 'securityGroupIds', 'keyName', 'iamInstanceProfile', 'userData', 'spot', 'endpoint', 'runningTimeoutSeconds', 'volumeTimeoutSeconds', 'agent'], '');
  let spot: AwsEc2Options['spot'];
  if (typeof o.spot === 'object' && o.spot !== null) {
    const s = v.obj(o.spot, 'spot');
    const sv = new V(`${v.path}.spot`);
    sv.only(s, ['maxPrice'], '');
    spot = { maxPrice: sv.str(s, 'maxPrice', false, /^\d+(\.\d+)?$/, 'a price in USD per hour, as a string like "3.50"') };
  } else spot = v.bool(o, 'spot');
  const region = v.str(o, 'region', false, /^[a-z]{2}(-[a-z]+)+-\d$/, "an AWS region like 'us-east-1'") ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (!region) v.fail('region', "required (or set AWS_REGION for the worker): an AWS region like 'us-east-1'");
  return {
    type: 'aws-ec2',
    name: v.str(o, 'name', false, ENTRY_NAME, 'lowercase letters, digits and dashes'),
    region,
    imageId: v.str(o, 'imageId', true, /^ami-[0-9a-f]+$/, "an AMI id like 'ami-0abc1234'"),
    instanceType: v.str(o, 'instanceType'),
    zone: v.str(o, 'zone', false, /^[a-z]{2}(-[a-z]+)+-\d[a-z]$/, "an availability zone like 'us-east-1a'"),
    subnetId: v.str(o, 'subnetId', false, /^subnet-[0-9a-f]+$/, "a subnet id like 'subnet-0abc1234'"),
    securityGroupIds: v.strs(o, 'securityGroupIds'),
    keyName: v.str(o, 'keyName'),
    iamInstanceProfile: v.str(o, 'iamInstanceProfile'),
    userData: v.str(o, 'userData'),
    spot,
    endpoint: v.str(o, 'endpoint', false, /^https?:\/\/[^\s/]+/, 'an http(s) URL'),
    runningTimeoutSeconds: v.int(o, 'runningTimeoutSeconds', 1, 3600),
    volumeTimeoutSeconds: v.int(o, 'volumeTimeoutSeconds', 1, 3600),
    agent: parseAgent(o.agent, v),
  };
}

function parseGce(o: Obj, v: V): GceProviderConfig {
  v.only(o, ['type', 'name', 'project', 'zone', 'sourceImage', 'instanceType', 'network', 'subnetwork', 'diskSizeGb', 'diskType', 'spot', 'serviceAccount', 'accelerator', 'startupScript', 'apiEndpoint', 'port', 'protocol', 'operationTimeoutSeconds', 'agent'], '');
  let accelerator: GceOptions['accelerator'];
  if (o.accelerator !== undefined) {
    const a = v.obj(o.accelerator, 'accelerator');
    const av = new V(`${v.path}.accelerator`);
    av.only(a, ['type', 'count'], '');
    accelerator = { type: av.str(a, 'type', true), count: av.int(a, 'count', 1, 16) ?? av.fail('count', 'required: 1 to 16') };
  }
  const protocol = v.str(o, 'protocol');
  if (protocol !== undefined && protocol !== 'http' && protocol !== 'https') v.fail('protocol', "expected 'http' or 'https'");
  return {
    type: 'gce',
    name: v.str(o, 'name', false, ENTRY_NAME, 'lowercase letters, digits and dashes'),
    project: v.str(o, 'project', true, /^[a-z][-a-z0-9]{4,28}[a-z0-9]$/, 'a GCP project id: 6-30 lowercase letters, digits and dashes'),
    zone: v.str(o, 'zone', true, /^[a-z]+-[a-z]+\d+-[a-z]$/, "a zone like 'us-central1-a'"),
    sourceImage: v.str(o, 'sourceImage', true),
    instanceType: v.str(o, 'instanceType'),
    network: v.str(o, 'network'),
    subnetwork: v.str(o, 'subnetwork'),
    diskSizeGb: v.int(o, 'diskSizeGb', 10, 65536),
    diskType: v.str(o, 'diskType'),
    spot: v.bool(o, 'spot'),
    serviceAccount: v.str(o, 'serviceAccount'),
    accelerator,
    startupScript: v.str(o, 'startupScript'),
    apiEndpoint: v.str(o, 'apiEndpoint'),
    port: v.int(o, 'port', 1, 65535),
    protocol: protocol as GceOptions['protocol'],
    operationTimeoutSeconds: v.int(o, 'operationTimeoutSeconds', 1, 3600),
    agent: parseAgent(o.agent, v),
  };
}

function asObj(raw: unknown, path: string): Obj {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new PoolsFileError(`${path}: expected an object`);
  return raw as Obj;
}

function parseProvider(raw: unknown, path: string): ProviderConfig {
  const o = asObj(raw, path);
  const pv = new V(path);
  switch (o.type) {
    case 'local':
      // Lenient on unknown fields for compatibility: scripts/lib/fleet.ts writes its own options
      // (pool, nodes) into local entries. Credential-like fields are still refused.
      pv.only(Object.fromEntries(Object.entries(o).filter(([k]) => SECRET_LIKE.test(k) && !LOCAL_FIELDS.includes(k))), [], '');
      return { type: 'local', name: pv.str(o, 'name', false, ENTRY_NAME, 'lowercase letters, digits and dashes'), ...parseLocalFields(o, pv) };
    case 'aws-ec2':
      return parseAws(o, pv);
    case 'gce':
      return parseGce(o, pv);
    default:
      return pv.fail('type', `expected 'local', 'aws-ec2' or 'gce', got ${JSON.stringify(o.type)}`);
  }
}

/** The entry's name: given, or made from its type and zone / region. */
export function entryName(cfg: ProviderConfig): string {
  if (cfg.name) return cfg.name;
  if (cfg.type === 'aws-ec2') return `aws-${cfg.zone ?? cfg.subnetId ?? cfg.region}`;
  if (cfg.type === 'gce') return `gce-${cfg.zone}`;
  return 'local';
}

function parsePool(raw: unknown, path: string): PoolConfig {
  const p = asObj(raw, path);
  const v = new V(path);
  v.only(p, ['name', 'instanceType', 'provider', 'providers', 'strategy', 'prices'], '');
  const name = v.str(p, 'name', true, POOL_NAME, 'lowercase letters, digits and dashes, 1-63 characters');
  const instanceType = v.str(p, 'instanceType', true);
  if ((p.provider === undefined) === (p.providers === undefined)) v.fail('provider', "give either 'provider' (one) or 'providers' (a list, with a strategy)");
  let providers: ProviderConfig[];
  if (p.providers !== undefined) {
    const list = p.providers;
    if (!Array.isArray(list) || list.length === 0) v.fail('providers', 'expected a non-empty list of provider entries');
    providers = (list as unknown[]).map((e, i) => parseProvider(e, `${path}.providers[${i}]`));
  } else providers = [parseProvider(p.provider, `${path}.provider`)];
  const names = providers.map(entryName);
  names.forEach((n, i) => {
    if (names.indexOf(n) !== i) v.fail(`providers[${i}].name`, `entry name '${n}' is used twice in this pool; give each entry a distinct name`);
  });
  if (providers.some((c) => c.type === 'gce') && (!/^[a-z]/.test(name) || name.length > 54)) {
    v.fail('name', 'a pool with gce entries needs a name that starts with a letter and has at most 54 characters (GCE instance names are <pool>-<8 hex>)');
  }
  if (providers.some((c) => c.type === 'local') && providers.length > 1) v.fail('providers', "'local' cannot be mixed with other entries");
  const strategy = (v.str(p, 'strategy') ?? POOL_DEFAULTS.strategy) as Strategy;
  if (!STRATEGIES.includes(strategy)) v.fail('strategy', `expected one of ${STRATEGIES.join(', ')}, got '${strategy}'`);
  let prices: Record<string, number> | undefined;
  if (p.prices !== undefined) {
    const po = v.obj(p.prices, 'prices');
    const pv = new V(`${path}.prices`);
    for (const k of Object.keys(po)) if (!names.includes(k)) pv.fail(k, `no entry named '${k}' in this pool (entries: ${names.join(', ')})`);
    prices = Object.fromEntries(Object.keys(po).map((k) => [k, pv.num(po, k, 0)!]));
  }
  if (strategy === 'cheapest') {
    const missing = names.filter((n) => prices?.[n] === undefined);
    if (missing.length) v.fail('prices', `strategy 'cheapest' needs a price per node-hour for every entry; missing: ${missing.join(', ')}`);
  }
  return { name, instanceType, provider: providers[0], ...(p.providers !== undefined ? { providers } : {}), strategy, ...(prices ? { prices } : {}) };
}

/** Parses and validates a pools file's document; errors name the file and the field. */
export function parsePoolsDocument(doc: unknown, file: string): PoolConfig[] {
  try {
    if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as Obj).pools)) throw new PoolsFileError("pools: expected a top-level 'pools' list");
    const v = new V('');
    v.only(doc as Obj, ['pools'], '');
    const pools = ((doc as Obj).pools as unknown[]).map((p, i) => parsePool(p, `pools[${i}]`));
    pools.forEach((p, i) => {
      if (pools.findIndex((q) => q.name === p.name) !== i) throw new PoolsFileError(`pools[${i}].name: pool '${p.name}' is defined twice`);
    });
    return pools;
  } catch (err) {
    if (err instanceof PoolsFileError) throw new PoolsFileError(`${file}: ${err.message.replace(/^\./, '')}`);
    throw err;
  }
}

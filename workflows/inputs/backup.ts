import { invalidArgument } from '../common/errors.ts';
import { parseStoreUrl } from '../common/storeUrl.ts';
import { optionalBoolean, POOL_NAME, POOL_NAME_HELP, rejectUnknown, requireObject, requireString, type Obj } from './validate.ts';

/** Velero's phases as the search attribute DrydockBackupPhase (defined with drydock's other attributes). */
export { DRYDOCK_BACKUP_PHASE } from '../searchAttributes.ts';
export type BackupPhase = 'InProgress' | 'Completed' | 'PartiallyFailed' | 'Failed';

/** A tree of files on the worker's machine: model store, training checkpoints, configuration. */
export interface FilesSourceInput {
  type: 'files';
  /** Names the source in the manifest and on restore (`models`, `checkpoints`, `config`). */
  name: string;
  /** Absolute path of the directory to back up. */
  path: string;
}

/** Provider snapshots of the data disks of a pool's live nodes (EBS, GCE, local: a copy of the data dir). */
export interface SnapshotSourceInput {
  type: 'snapshot';
  name: string;
  pool: string;
  /** Only these nodes (default: every live node of the pool). */
  nodes?: string[];
}

export type BackupSourceInput = FilesSourceInput | SnapshotSourceInput;

/** Runs before or after the copies; e.g. ask an agent to quiesce writes, then resume. */
export interface HookInput {
  name: string;
  /** A command run on the worker without a shell: ['/usr/bin/sync']. */
  exec?: string[];
  /** An HTTP call; the bearer token is read on the worker from the env var named by tokenEnv. */
  http?: { url: string; method?: 'GET' | 'POST'; tokenEnv?: string; body?: Obj };
  /** Default 30. */
  timeoutSeconds?: number;
  /** `fail` (default) fails the backup; `continue` records the error and marks it PartiallyFailed. */
  onError?: 'fail' | 'continue';
}

export interface RetentionInput {
  /** Keep this many newest backups of this name. */
  keepLast?: number;
  /** Delete backups older than this. The newest verified backup is never deleted. */
  maxAgeDays?: number;
}

/** Input of the `backup` workflow (public API). */
export interface BackupInput {
  /** Backup name: lowercase letters, digits and dashes; backups are `<name>/<time>`. */
  name: string;
  sources: BackupSourceInput[];
  /** `file:///dir` (or `/dir`) or `s3://bucket/prefix`. */
  destination: string;
  retention?: RetentionInput;
  hooks?: { pre?: HookInput[]; post?: HookInput[] };
  /** Restore into a scratch directory and compare checksums after the copy (default true). */
  verify?: boolean;
}

export interface HookConfig extends Required<Pick<HookInput, 'name' | 'timeoutSeconds' | 'onError'>> {
  exec?: string[];
  http?: { url: string; method: 'GET' | 'POST'; tokenEnv?: string; body?: Obj };
}

export interface BackupConfig {
  name: string;
  sources: BackupSourceInput[];
  destination: string;
  retention: RetentionInput;
  hooks: { pre: HookConfig[]; post: HookConfig[] };
  verify: boolean;
}

export const BACKUP_DEFAULTS = { hookTimeoutSeconds: 30, onError: 'fail', verify: true } as const;

const SOURCE_NAME = /^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$/;
const SOURCE_NAME_HELP = 'lowercase letters, digits, dashes, dots and underscores, 1-63 characters';

export function parseBackupInput(raw: unknown): BackupConfig {
  const obj = requireObject(raw, 'input');
  rejectUnknown(obj, ['name', 'sources', 'destination', 'retention', 'hooks', 'verify']);
  const name = requireString(obj, 'name', POOL_NAME, POOL_NAME_HELP);
  if (!Array.isArray(obj.sources) || obj.sources.length === 0) throw invalidArgument('sources', 'expected a non-empty list of sources');
  const sources = obj.sources.map((s, i) => parseSource(s, `sources[${i}]`));
  const seen = new Set<string>();
  sources.forEach((s, i) => {
    if (seen.has(s.name)) throw invalidArgument(`sources[${i}].name`, `'${s.name}' is used twice; source names must be unique`);
    seen.add(s.name);
  });
  return {
    name,
    sources,
    destination: parseStore(obj, 'destination'),
    retention: parseRetention(obj.retention),
    hooks: parseHooks(obj.hooks),
    verify: optionalBoolean(obj, 'verify', BACKUP_DEFAULTS.verify),
  };
}

/** Store URLs: file:///abs, /abs or s3://bucket/prefix. */
export function parseStore(obj: Obj, field: string): string {
  const loc = parseStoreUrl(requireString(obj, field));
  if (typeof loc === 'string') throw invalidArgument(field, loc);
  return loc.uri;
}

/** An absolute path without '..' segments. */
export function parseAbsolutePath(obj: Obj, field: string): string {
  const path = requireString(obj, field);
  if (!path.startsWith('/')) throw invalidArgument(field, `'${path}' must be an absolute path`);
  if (path.split('/').includes('..')) throw invalidArgument(field, `'${path}' must not contain '..' segments`);
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}

function parseSource(raw: unknown, at: string): BackupSourceInput {
  const obj = requireObject(raw, at);
  const type = obj.type;
  if (type !== 'files' && type !== 'snapshot') throw invalidArgument(`${at}.type`, `expected 'files' or 'snapshot', got ${JSON.stringify(type)}`);
  try {
    const name = requireString(obj, 'name', SOURCE_NAME, SOURCE_NAME_HELP);
    if (type === 'files') {
      rejectUnknown(obj, ['type', 'name', 'path']);
      return { type, name, path: parseAbsolutePath(obj, 'path') };
    }
    rejectUnknown(obj, ['type', 'name', 'pool', 'nodes']);
    const pool = requireString(obj, 'pool', POOL_NAME, POOL_NAME_HELP);
    if (obj.nodes !== undefined && (!Array.isArray(obj.nodes) || obj.nodes.some((n) => typeof n !== 'string' || !n))) {
      throw invalidArgument('nodes', 'expected a list of node ids');
    }
    return { type, name, pool, ...(obj.nodes ? { nodes: obj.nodes as string[] } : {}) };
  } catch (err) {
    throw prefixField(err, at);
  }
}

function parseRetention(raw: unknown): RetentionInput {
  if (raw === undefined) return {};
  const obj = requireObject(raw, 'retention');
  rejectUnknown(obj, ['keepLast', 'maxAgeDays'], 'retention.');
  const out: RetentionInput = {};
  if (obj.keepLast !== undefined) {
    if (!Number.isInteger(obj.keepLast) || (obj.keepLast as number) < 1) throw invalidArgument('retention.keepLast', 'expected an integer of at least 1');
    out.keepLast = obj.keepLast as number;
  }
  if (obj.maxAgeDays !== undefined) {
    if (typeof obj.maxAgeDays !== 'number' || !(obj.maxAgeDays > 0)) throw invalidArgument('retention.maxAgeDays', 'expected a number of days above 0');
    out.maxAgeDays = obj.maxAgeDays;
  }
  return out;
}

function parseHooks(raw: unknown): { pre: HookConfig[]; post: HookConfig[] } {
  if (raw === undefined) return { pre: [], post: [] };
  const obj = requireObject(raw, 'hooks');
  rejectUnknown(obj, ['pre', 'post'], 'hooks.');
  const list = (when: 'pre' | 'post') => {
    const v = obj[when];
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw invalidArgument(`hooks.${when}`, 'expected a list of hooks');
    return v.map((h, i) => parseHook(h, `hooks.${when}[${i}]`));
  };
  return { pre: list('pre'), post: list('post') };
}

function parseHook(raw: unknown, at: string): HookConfig {
  const obj = requireObject(raw, at);
  try {
    rejectUnknown(obj, ['name', 'exec', 'http', 'timeoutSeconds', 'onError']);
    const name = requireString(obj, 'name');
    const timeoutSeconds = obj.timeoutSeconds ?? BACKUP_DEFAULTS.hookTimeoutSeconds;
    if (!Number.isInteger(timeoutSeconds) || (timeoutSeconds as number) < 1 || (timeoutSeconds as number) > 3600) {
      throw invalidArgument('timeoutSeconds', 'expected an integer between 1 and 3600');
    }
    const onError = obj.onError ?? BACKUP_DEFAULTS.onError;
    if (onError !== 'fail' && onError !== 'continue') throw invalidArgument('onError', `expected 'fail' or 'continue', got ${JSON.stringify(onError)}`);
    const hook: HookConfig = { name, timeoutSeconds: timeoutSeconds as number, onError };
    if ((obj.exec === undefined) === (obj.http === undefined)) throw invalidArgument('exec', 'give exactly one of exec or http');
    if (obj.exec !== undefined) {
      if (!Array.isArray(obj.exec) || obj.exec.length === 0 || obj.exec.some((a) => typeof a !== 'string')) {
        throw invalidArgument('exec', 'expected a non-empty list of strings: the program and its arguments');
      }
      hook.exec = obj.exec as string[];
    } else {
      const http = requireObject(obj.http, 'http');
      rejectUnknown(http, ['url', 'method', 'tokenEnv', 'body'], 'http.');
      const url = requireString(http, 'url');
      if (!/^https?:\/\/[^\s]+$/.test(url)) throw invalidArgument('http.url', `'${url}' is not an http(s) URL`);
      const method = http.method ?? 'POST';
      if (method !== 'GET' && method !== 'POST') throw invalidArgument('http.method', "expected 'GET' or 'POST'");
      if (http.tokenEnv !== undefined && (typeof http.tokenEnv !== 'string' || !/^[A-Z_][A-Z0-9_]*$/.test(http.tokenEnv))) {
        throw invalidArgument('http.tokenEnv', 'expected the NAME of an environment variable (never the token itself)');
      }
      hook.http = { url, method, ...(http.tokenEnv ? { tokenEnv: http.tokenEnv as string } : {}), ...(http.body ? { body: requireObject(http.body, 'http.body') } : {}) };
    }
    return hook;
  } catch (err) {
    throw prefixField(err, at);
  }
}

/** Re-labels an InvalidArgument raised on a nested object with the path of that object. */
function prefixField(err: unknown, at: string): unknown {
  const e = err as { type?: string; message?: string };
  if (e?.type !== 'InvalidArgument' || !e.message || e.message.startsWith(at)) return err;
  return invalidArgument(`${at}.${e.message.slice(0, e.message.indexOf(':'))}`, e.message.slice(e.message.indexOf(':') + 2));
}

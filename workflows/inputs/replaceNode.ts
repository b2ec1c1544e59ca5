import { NODE_ID, NODE_ID_HELP, optionalBoolean, optionalInteger, optionalString, POOL_NAME, POOL_NAME_HELP, rejectUnknown, requireObject, requireString } from './validate.ts';

/** Input of the `replaceNode` workflow (public API). */
export interface ReplaceNodeInput {
  pool: string;
  nodeId: string;
  /** Why the node is being replaced; shown in the Web UI and the status query. */
  reason?: string;
  /** How long to wait for in-flight work before escalating (default 300). */
  drainTimeoutSeconds?: number;
  /** On drain timeout: true cancels remaining work and continues; false uncordons and fails (default). */
  force?: boolean;
}

export const REPLACE_NODE_DEFAULTS = { reason: 'manual', drainTimeoutSeconds: 300, force: false } as const;

export type ReplaceNodeConfig = Required<ReplaceNodeInput>;

export function parseReplaceNodeInput(raw: unknown): ReplaceNodeConfig {
  const obj = requireObject(raw, 'input');
  rejectUnknown(obj, ['pool', 'nodeId', 'reason', 'drainTimeoutSeconds', 'force']);
  return {
    pool: requireString(obj, 'pool', POOL_NAME, POOL_NAME_HELP),
    nodeId: requireString(obj, 'nodeId', NODE_ID, NODE_ID_HELP),
    reason: optionalString(obj, 'reason', 500) ?? REPLACE_NODE_DEFAULTS.reason,
    drainTimeoutSeconds: optionalInteger(obj, 'drainTimeoutSeconds', 0, 86_400, REPLACE_NODE_DEFAULTS.drainTimeoutSeconds),
    force: optionalBoolean(obj, 'force', REPLACE_NODE_DEFAULTS.force),
  };
}

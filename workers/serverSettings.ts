/**
 * Temporal server settings drydock is tuned for (dynamic config). Eager activity execution hands a
 * workflow's next activity to the worker in the reply to its workflow task, saving a task-queue
 * round trip per step: a rollout's node walk has eight. Servers default it to off; drydock works
 * without it, only slower (docs/operations.md).
 *
 * Worker Deployment Versioning (workers/versioning.ts) needs deployments and their versions on
 * (the default from server 1.28; set here so an older default cannot turn them off).
 */
export const SERVER_DYNAMIC_CONFIG = {
  'system.enableActivityEagerExecution': true,
  'system.enableDeployments': true,
  'system.enableDeploymentVersions': true,
} as const;

/**
 * Dev-server only: how soon an old version reports drained once nothing pinned runs on it. The
 * server waits a visibility grace period (default 3 minutes) and then rechecks every refresh
 * interval (default 3 minutes); a dev stack and the upgrade test want seconds. Production keeps
 * the defaults (docs/operations.md).
 */
export const DEV_SERVER_DYNAMIC_CONFIG = {
  'matching.wv.VersionDrainageStatusVisibilityGracePeriod': '5s',
  'matching.wv.VersionDrainageStatusRefreshInterval': '1s',
} as const;

export type ServerDynamicConfig = { [K in keyof typeof SERVER_DYNAMIC_CONFIG]: boolean } & { [K in keyof typeof DEV_SERVER_DYNAMIC_CONFIG]: string };

/** `temporal server start-dev` flags that apply both sets, with `overrides` (the rollout benchmark's --no-eager). */
export function devServerDynamicConfigArgs(overrides: Partial<ServerDynamicConfig> = {}): string[] {
  return Object.entries({ ...SERVER_DYNAMIC_CONFIG, ...DEV_SERVER_DYNAMIC_CONFIG, ...overrides }).flatMap(([key, value]) => ['--dynamic-config-value', `${key}=${JSON.stringify(value)}`]);
}

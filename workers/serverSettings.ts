/**
 * Temporal server settings drydock is tuned for (dynamic config). Eager activity execution hands a
 * workflow's next activity to the worker in the reply to its workflow task, saving a task-queue
 * round trip per step: a rollout's node walk has eight. Servers default it to off; drydock works
 * without it, only slower (docs/operations.md).
 */
export const SERVER_DYNAMIC_CONFIG = {
  'system.enableActivityEagerExecution': true,
} as const;

export type ServerDynamicConfig = { [K in keyof typeof SERVER_DYNAMIC_CONFIG]: boolean };

/** `temporal server start-dev` flags that apply SERVER_DYNAMIC_CONFIG, with `overrides` (the rollout benchmark's --no-eager). */
export function devServerDynamicConfigArgs(overrides: Partial<ServerDynamicConfig> = {}): string[] {
  return Object.entries({ ...SERVER_DYNAMIC_CONFIG, ...overrides }).flatMap(([key, value]) => ['--dynamic-config-value', `${key}=${JSON.stringify(value)}`]);
}

import { ApplicationFailure } from '@temporalio/common';
import { CapacityError } from './types.ts';

/** How the provider layer reacts to a cloud error. */
export type ErrorClass = 'capacity' | 'throttle' | 'auth' | 'invalid' | 'not-found' | 'other';

/** Failure types activities surface, so workflows and people can tell them apart. */
export const PROVIDER_AUTH = 'ProviderAuth';
export const PROVIDER_CONFIG = 'ProviderConfig';
/** A reboot asked of an instance that cannot take one (gone, stopped, failed at the provider). */
export const NODE_NOT_REBOOTABLE = 'NodeNotRebootable';

/** Where an error happened, for messages that say what to fix. */
export interface ErrorScope {
  provider: string;
  /** The pool-file entry (pool name, and entry name in a multi-provider pool). */
  entry: string;
  operation: string;
}

/**
 * Turns a classified cloud error into what the activity should throw: capacity → CapacityError (next
 * zone / provider), auth and invalid → non-retryable with a fix, throttling and the rest → retryable.
 */
export function providerFailure(cls: ErrorClass, scope: ErrorScope, detail: string, fix?: string): Error {
  const where = `${scope.provider} (${scope.entry}) ${scope.operation}`;
  switch (cls) {
    case 'capacity':
      return new CapacityError(scope.entry, `${where}: no capacity: ${detail}`);
    case 'auth':
      return ApplicationFailure.nonRetryable(`${where} was refused: ${detail}. ${fix ?? 'Check the worker\'s cloud credentials and permissions.'}`, PROVIDER_AUTH);
    case 'invalid':
      return ApplicationFailure.nonRetryable(`${where} was rejected: ${detail}. ${fix ?? 'Fix the pool\'s provider settings in the pools file.'}`, PROVIDER_CONFIG);
    default:
      return new Error(`${where} failed: ${detail}`);
  }
}

/** Non-retryable: the instance cannot be rebooted (`why`), so the caller replaces it instead. */
export function notRebootable(where: string, nodeId: string, why: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`${where}: cannot reboot node ${nodeId}: ${why}. Replace the node instead.`, NODE_NOT_REBOOTABLE);
}

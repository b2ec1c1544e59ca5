import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure } from '@temporalio/common';

/** The innermost cause of an activity or child workflow failure. */
function innermost(err: unknown): unknown {
  let e: unknown = err;
  while ((e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) && e.cause) e = e.cause;
  return e;
}

/** The innermost message of an activity or child failure, for events and node errors. */
export function failureMessage(err: unknown): string {
  const e = innermost(err);
  return e instanceof Error ? e.message : String(e);
}

/** The ApplicationFailure type of the innermost cause, if it is one. */
export function failureType(err: unknown): string | undefined {
  const e = innermost(err);
  return e instanceof ApplicationFailure ? (e.type ?? undefined) : undefined;
}

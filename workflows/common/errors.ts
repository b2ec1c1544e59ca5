import { ApplicationFailure } from '@temporalio/common';

/** Failure type for bad input; never retried, always names the field. */
export const INVALID_ARGUMENT = 'InvalidArgument';

export function invalidArgument(field: string, problem: string): ApplicationFailure {
  return ApplicationFailure.create({ type: INVALID_ARGUMENT, message: `${field}: ${problem}`, nonRetryable: true });
}

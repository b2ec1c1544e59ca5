import { ApplicationFailure } from '@temporalio/common';
import { openStore as openSharedStore, StoreUrlError, type ObjectStore } from '../stores/index.ts';

export type { ObjectStore };

/**
 * Checkpoints and deltas live in drydock's shared object stores (activities/stores): `file:///abs/dir`
 * or `s3://bucket/prefix`, with S3 settings and credentials from the standard AWS environment.
 */
export async function openStore(uri: string): Promise<ObjectStore> {
  try {
    return openSharedStore(uri);
  } catch (err) {
    if (err instanceof StoreUrlError) throw ApplicationFailure.create({ type: 'InvalidArgument', nonRetryable: true, message: `checkpoint.uri: ${err.message}` });
    throw err;
  }
}

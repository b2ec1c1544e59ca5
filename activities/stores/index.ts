import { parseStoreUrl } from '../../workflows/common/storeUrl.ts';
import { FileStore } from './file.ts';
import { S3Store } from './s3.ts';
import { StoreUrlError, type ObjectStore } from './types.ts';

export { FileStore } from './file.ts';
export { S3Store, s3ClientFromEnv } from './s3.ts';
export { StoreUrlError, type ObjectInfo, type ObjectStore } from './types.ts';

/**
 * Opens `file:///abs/dir` (or `/abs/dir`) or `s3://bucket/prefix`. S3 settings and credentials
 * come from the environment (see s3ClientFromEnv); a bad URL throws StoreUrlError.
 */
export function openStore(url: string): ObjectStore {
  const loc = parseStoreUrl(url);
  if (typeof loc === 'string') throw new StoreUrlError(loc);
  return loc.scheme === 'file' ? new FileStore(loc.dir) : new S3Store({ bucket: loc.bucket, prefix: loc.prefix });
}

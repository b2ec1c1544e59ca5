import type { Readable } from 'node:stream';

/** One stored object as a listing shows it. */
export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
}

/**
 * A flat key → bytes store: a `file://` directory or an `s3://bucket/prefix`. Keys are
 * '/'-separated paths relative to the store's root. Every write is atomic: a reader sees the
 * whole object or none of it, even when the writer is killed half-way.
 */
export interface ObjectStore {
  /** The store's canonical URL (`file:///abs/dir` or `s3://bucket/prefix`). */
  readonly uri: string;
  put(key: string, body: Uint8Array): Promise<void>;
  /** Streams a local file into the store without holding it in memory. */
  putFile(key: string, path: string): Promise<void>;
  /** undefined when the key does not exist. */
  get(key: string): Promise<Uint8Array | undefined>;
  /**
   * `length` bytes from `offset` (a blob inside a pack); fewer when the object is shorter.
   * undefined when the key does not exist.
   */
  getRange(key: string, offset: number, length: number): Promise<Uint8Array | undefined>;
  /** A stream of the object's bytes; undefined when the key does not exist. */
  getStream(key: string): Promise<Readable | undefined>;
  /** Size and age of one object; undefined when it does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Every key under `prefix` (recursive), sorted. */
  list(prefix: string): Promise<string[]>;
  /** Like list, with sizes and modification times. */
  listObjects(prefix: string): Promise<ObjectInfo[]>;
  /** Removing a key that does not exist is success. */
  remove(key: string): Promise<void>;
}

/** The store URL is unusable (unknown scheme, relative path, missing bucket); retrying will not help. */
export class StoreUrlError extends Error {}

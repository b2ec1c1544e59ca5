import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { checkKey } from './keys.ts';
import type { ObjectInfo, ObjectStore } from './types.ts';

/** Files above this go up in parts (a single PUT stops at 5 GiB). */
const MULTIPART_ABOVE = 1024 ** 3;
const PART_SIZE = 64 * 1024 ** 2;

export interface S3StoreOptions {
  bucket: string;
  prefix: string;
  /** Defaults to a client built from the environment (see s3ClientFromEnv). */
  client?: S3Client;
}

/**
 * Region, endpoint and credentials come from the standard AWS environment and credential chain,
 * never from workflow inputs. AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL points at an S3-compatible
 * server (moto, MinIO), which also switches to path-style addressing.
 */
export function s3ClientFromEnv(env: NodeJS.ProcessEnv = process.env): S3Client {
  const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  return new S3Client({
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    // Otherwise the SDK sends streamed bodies with aws-chunked framing that some S3 servers store verbatim.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export class S3Store implements ObjectStore {
  readonly uri: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(opts: S3StoreOptions) {
    this.bucket = opts.bucket;
    this.prefix = opts.prefix;
    this.client = opts.client ?? s3ClientFromEnv();
    this.uri = opts.prefix ? `s3://${opts.bucket}/${opts.prefix}` : `s3://${opts.bucket}`;
  }

  private key(k: string): string {
    checkKey(k);
    return this.prefix ? `${this.prefix}/${k}` : k;
  }

  private unkey(k: string): string {
    return this.prefix ? k.slice(this.prefix.length + 1) : k;
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key(key), Body: body }));
  }

  async putFile(key: string, path: string): Promise<void> {
    const { size } = await stat(path);
    if (size > MULTIPART_ABOVE) return this.putMultipart(this.key(key), path, size);
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: this.key(key), Body: createReadStream(path), ContentLength: size }),
    );
  }

  private async putMultipart(Key: string, path: string, size: number): Promise<void> {
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key }));
    const fh = await open(path, 'r');
    try {
      const parts: { ETag: string; PartNumber: number }[] = [];
      const buf = Buffer.alloc(PART_SIZE);
      for (let off = 0, n = 1; off < size; off += PART_SIZE, n++) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(PART_SIZE, size - off), off);
        const out = await this.client.send(
          new UploadPartCommand({ Bucket: this.bucket, Key, UploadId, PartNumber: n, Body: buf.subarray(0, bytesRead) }),
        );
        parts.push({ ETag: out.ETag!, PartNumber: n });
      }
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
    } catch (err) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId })).catch(() => undefined);
      throw err;
    } finally {
      await fh.close();
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const body = await this.getStream(key);
    if (!body) return undefined;
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    return new Uint8Array(Buffer.concat(chunks));
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array | undefined> {
    if (length === 0) return (await this.head(key)) ? new Uint8Array(0) : undefined; // an empty Range is not valid HTTP
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(key), Range: `bytes=${offset}-${offset + length - 1}` }));
      return await out.Body!.transformToByteArray();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      // A range that starts past the end: the object is shorter than asked, as with file://.
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 416) return new Uint8Array(0);
      throw err;
    }
  }

  async getStream(key: string): Promise<Readable | undefined> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
      return out.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
      return { key, size: out.ContentLength ?? 0, lastModified: out.LastModified ?? new Date(0) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    return (await this.listObjects(prefix)).map((o) => o.key);
  }

  async listObjects(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    const full = this.prefix ? `${this.prefix}/${prefix}` : prefix;
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: full, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        if (o.Key) out.push({ key: this.unkey(o.Key), size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async remove(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

import { Readable } from 'node:stream';
import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { s3ClientFromEnv } from '../../activities/stores/s3.ts';
import { ModelError } from './errors.ts';
import { empty, type RemoteSource, type SourceBody } from './sources.ts';

/** s3://bucket/key through the AWS SDK (standard credential chain, region and AWS_ENDPOINT_URL*). */
export class S3Source implements RemoteSource {
  constructor(private readonly bucket: string, private readonly key: string, private readonly client: S3Client) {}

  private get where(): string {
    return `s3://${this.bucket}/${this.key}`;
  }

  private async failure(err: unknown): Promise<ModelError> {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number }; message?: string };
    const code = e.$metadata?.httpStatusCode;
    if (e.name === 'NoSuchBucket') return new ModelError(404, `uri: bucket '${this.bucket}' does not exist`);
    if (e.name === 'NoSuchKey' || e.name === 'NotFound' || code === 404) {
      // HEAD answers carry no error body: ask for the bucket to say which of the two is missing.
      try {
        await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      } catch (b) {
        const bs = (b as { $metadata?: { httpStatusCode?: number }; name?: string });
        if (bs.$metadata?.httpStatusCode === 404 || bs.name === 'NotFound' || bs.name === 'NoSuchBucket') return new ModelError(404, `uri: bucket '${this.bucket}' does not exist`);
      }
      return new ModelError(404, `uri: no object '${this.key}' in bucket '${this.bucket}'`);
    }
    if (code === 403 || e.name === 'AccessDenied' || e.name === 'InvalidAccessKeyId' || e.name === 'SignatureDoesNotMatch') {
      return new ModelError(400, `uri: S3 refused ${this.where} (${e.name ?? code}): check the agent's AWS credentials and the bucket policy`);
    }
    if (e.name === 'CredentialsProviderError') return new ModelError(400, `uri: no AWS credentials for ${this.where}: ${e.message}`);
    return new ModelError(502, `uri: ${this.where}: ${e.name ?? 'error'} ${e.message ?? ''}`.trim());
  }

  async open(offset: number, signal: AbortSignal, ifMatch?: string): Promise<SourceBody> {
    let head;
    try {
      head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key }), { abortSignal: signal });
    } catch (err) {
      if (signal.aborted) throw err;
      throw await this.failure(err);
    }
    const total = head.ContentLength ?? null;
    // The object changed since the bytes on disk were fetched: start over.
    const start = ifMatch && head.ETag && head.ETag !== ifMatch ? 0 : offset;
    if (total !== null && start >= total) return { body: empty(), start, totalBytes: total, etag: head.ETag };
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.key, ...(start > 0 ? { Range: `bytes=${start}-` } : {}), ...(head.ETag ? { IfMatch: head.ETag } : {}) }),
        { abortSignal: signal },
      );
      if (!(res.Body instanceof Readable)) throw new ModelError(502, `uri: ${this.where}: the SDK returned no stream`);
      return { body: res.Body, start, totalBytes: total, etag: head.ETag };
    } catch (err) {
      if (err instanceof ModelError || signal.aborted) throw err;
      throw await this.failure(err);
    }
  }
}

let client: S3Client | undefined;

/** One S3 client per agent, built from the standard AWS environment on first use. */
export function s3Source(bucket: string, key: string): S3Source {
  return new S3Source(bucket, key, (client ??= s3ClientFromEnv()));
}

import { allowOnly, HttpError } from '../http.ts';
import { SHA256_RE } from '../inference/modelFile.ts';
import { ModelError } from './errors.ts';
import type { ModelFetcher } from './fetcher.ts';

export const MODEL_URI_FIELD_HELP = 'uri: expected a model URI: s3://bucket/key, https://…, http://…, file:///path or a path under a --model-dir';

/** Validates a {uri, sha256} body (PUT /model, POST /model/prefetch); 400 naming the field. */
export function modelRefBody(b: Record<string, unknown>): { uri: string; sha256: string } {
  allowOnly(b, ['uri', 'sha256']);
  if (typeof b.uri !== 'string' || b.uri === '') throw new HttpError(400, MODEL_URI_FIELD_HELP);
  if (typeof b.sha256 !== 'string' || !SHA256_RE.test(b.sha256)) throw new HttpError(400, "sha256: expected the model file's sha256 as 64 hex digits");
  return { uri: b.uri, sha256: b.sha256.toLowerCase() };
}

/**
 * POST /model/prefetch {uri, sha256}: fetch a model into the cache while the node keeps serving;
 * answers 202 with the download's progress (200 once it is there). Idempotent: call it again to
 * read progress, or to resume a download that failed or was cut off by a restart.
 * GET /model/downloads: every recent download and the cache.
 */
export function modelRoutes(fetcher: ModelFetcher) {
  return {
    'POST /model/prefetch': async (b: Record<string, unknown>): Promise<[number, unknown]> => {
      const { uri, sha256 } = modelRefBody(b);
      try {
        const d = await fetcher.prefetch(uri, sha256);
        return [d.state === 'done' ? 200 : 202, { download: d }];
      } catch (err) {
        if (err instanceof ModelError) throw new HttpError(err.status, err.message);
        throw err;
      }
    },
    'GET /model/downloads': async (): Promise<[number, unknown]> => [200, { downloads: fetcher.downloads(), cache: fetcher.cacheView() }],
  };
}

import { setTimeout as sleep } from 'node:timers/promises';
import { allowOnly, HttpError, optionalNumber } from '../http.ts';
import { SHA256_RE } from '../inference/modelFile.ts';
import { ModelError } from './errors.ts';
import type { ModelFetcher } from './fetcher.ts';

export const MODEL_URI_FIELD_HELP = 'uri: expected a model URI: s3://bucket/key, https://…, http://…, file:///path or a path under a --model-dir';

/** Longest a prefetch request may long-poll (waitSeconds) before answering with the progress so far. */
export const MAX_PREFETCH_WAIT_SECONDS = 30;

/** Validates a {uri, sha256} body (PUT /model, POST /model/prefetch); 400 naming the field. */
export function modelRefBody(b: Record<string, unknown>, extra: string[] = []): { uri: string; sha256: string } {
  allowOnly(b, ['uri', 'sha256', ...extra]);
  if (typeof b.uri !== 'string' || b.uri === '') throw new HttpError(400, MODEL_URI_FIELD_HELP);
  if (typeof b.sha256 !== 'string' || !SHA256_RE.test(b.sha256)) throw new HttpError(400, "sha256: expected the model file's sha256 as 64 hex digits");
  return { uri: b.uri, sha256: b.sha256.toLowerCase() };
}

/**
 * POST /model/prefetch {uri, sha256, waitSeconds?}: fetch a model into the cache while the node keeps
 * serving; answers 202 with the download's progress (200 once it is there). With waitSeconds it
 * answers as soon as the download ends (done or failed), or after that long. Idempotent: call it
 * again to read progress, or to resume a download that failed or was cut off by a restart.
 * GET /model/downloads: every recent download and the cache.
 */
export function modelRoutes(fetcher: ModelFetcher) {
  return {
    'POST /model/prefetch': async (b: Record<string, unknown>): Promise<[number, unknown]> => {
      const { uri, sha256 } = modelRefBody(b, ['waitSeconds']);
      const wait = optionalNumber(b, 'waitSeconds', 0, 0);
      if (wait > MAX_PREFETCH_WAIT_SECONDS) throw new HttpError(400, `waitSeconds: at most ${MAX_PREFETCH_WAIT_SECONDS}`);
      try {
        const d = await fetcher.prefetch(uri, sha256);
        // The status object is the live one: it changes as the download goes.
        const until = Date.now() + wait * 1000;
        while ((d.state === 'downloading' || d.state === 'verifying') && Date.now() < until) await sleep(Math.min(50, until - Date.now()));
        return [d.state === 'done' ? 200 : 202, { download: d }];
      } catch (err) {
        if (err instanceof ModelError) throw new HttpError(err.status, err.message);
        throw err;
      }
    },
    'GET /model/downloads': async (): Promise<[number, unknown]> => [200, { downloads: fetcher.downloads(), cache: fetcher.cacheView() }],
  };
}

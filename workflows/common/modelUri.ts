/**
 * Model URIs, as the gpu-agent and the workflow inputs read them (pure: runs in the workflow
 * sandbox and in Node). A model is `s3://bucket/key`, `https://…` or `http://…` (the agent
 * downloads it into its cache), or `file:///path` or a path (a file already on the node, under
 * one of the agent's `--model-dir` roots).
 */
export type ModelSource =
  | { scheme: 's3'; bucket: string; key: string }
  | { scheme: 'http' | 'https'; url: string }
  | { scheme: 'file'; path: string };

/** Why a model URI cannot be used, naming what was wrong. */
export class ModelUriError extends Error {}

const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):/;
// S3's bucket naming rules: 3-63 lowercase letters, digits, dots and dashes.
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const HTTP = /^(https?):\/\/([^/?#\s@]+)(\/[^\s]*)?$/i;

export const MODEL_URI_HELP = 's3://bucket/key, https://…, http://…, file:///path or an absolute path';

/** Parses a model URI; throws ModelUriError for an unknown scheme or a malformed URI. */
export function parseModelUri(uri: string): ModelSource {
  if (uri === '') throw new ModelUriError(`expected ${MODEL_URI_HELP}`);
  if (/[\0\r\n]/.test(uri)) throw new ModelUriError('must not contain NUL or line breaks');
  const scheme = SCHEME.exec(uri)?.[1]?.toLowerCase();
  // A Windows-style drive letter is no scheme, but drydock runs on Linux: a path starts with '/' or '.'.
  if (scheme === undefined) return { scheme: 'file', path: uri };
  if (scheme === 's3') {
    const m = /^s3:\/\/([^/]+)\/(.+)$/i.exec(uri);
    if (!m) throw new ModelUriError(`expected s3://bucket/key, got '${uri}'`);
    if (!BUCKET.test(m[1])) throw new ModelUriError(`'${m[1]}' is not an S3 bucket name (3-63 lowercase letters, digits, dots and dashes)`);
    return { scheme: 's3', bucket: m[1], key: m[2] };
  }
  if (scheme === 'http' || scheme === 'https') {
    const m = HTTP.exec(uri);
    if (!m) throw new ModelUriError(`expected ${scheme}://host/path (no user:password@ in the URI: put credentials in the agent's --model-headers file), got '${uri}'`);
    return { scheme, url: uri };
  }
  if (scheme === 'file') {
    if (!uri.startsWith('file:///')) throw new ModelUriError(`expected file:///absolute/path, got '${uri}'`);
    let path: string;
    try {
      path = decodeURIComponent(uri.slice('file://'.length));
    } catch {
      throw new ModelUriError(`'${uri}' has a malformed %-escape`);
    }
    return { scheme: 'file', path };
  }
  throw new ModelUriError(`unsupported scheme '${scheme}:'; expected ${MODEL_URI_HELP}`);
}

/** True for URIs the agent downloads (s3, http, https) rather than reads from its disk. */
export function isRemoteModelUri(uri: string): boolean {
  try {
    return parseModelUri(uri).scheme !== 'file';
  } catch {
    return false;
  }
}

/**
 * Store URLs, parsed without any Node API so workflow code can validate them too.
 * `file:///abs/dir` (or a bare absolute path, which means file://) and `s3://bucket[/prefix]`.
 */
export type StoreLocation = { scheme: 'file'; dir: string; uri: string } | { scheme: 's3'; bucket: string; prefix: string; uri: string };

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Returns the location, or a sentence saying what is wrong with the URL. */
export function parseStoreUrl(raw: string): StoreLocation | string {
  if (raw.startsWith('/')) raw = `file://${raw}`;
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/(.*)$/.exec(raw);
  if (!m) return `'${raw}' is not a store URL: use file:///absolute/dir, /absolute/dir or s3://bucket/prefix`;
  const [, scheme, rest] = m;
  if (scheme === 'file') {
    if (!rest.startsWith('/')) return `'${raw}': a file:// URL needs an absolute path (file:///var/backups)`;
    const dir = normalize(rest);
    if (dir === undefined) return `'${raw}': the path must not contain '..' segments`;
    return { scheme: 'file', dir, uri: `file://${dir}` };
  }
  if (scheme === 's3') {
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/^\/+|\/+$/g, '');
    if (!BUCKET.test(bucket)) return `'${raw}': '${bucket}' is not a valid S3 bucket name`;
    if (prefix.split('/').some((s) => s === '..' || s === '.')) return `'${raw}': the prefix must not contain '.' or '..' segments`;
    return { scheme: 's3', bucket, prefix, uri: prefix ? `s3://${bucket}/${prefix}` : `s3://${bucket}` };
  }
  return `unknown scheme '${scheme}://' in '${raw}': supported are file:// and s3://`;
}

function normalize(path: string): string | undefined {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return undefined;
  return '/' + parts.join('/');
}

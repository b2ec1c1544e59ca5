import { StoreUrlError } from './types.ts';

/** Keys are relative '/'-paths without empty, '.' or '..' segments, so no key can leave the store root. */
export function checkKey(key: string): void {
  if (key === '' || key.startsWith('/') || key.split('/').some((s) => s === '' || s === '.' || s === '..') || key.includes('.partial-')) {
    throw new StoreUrlError(`object key '${key}' is not valid: use a relative path without empty, '.' or '..' segments`);
  }
}

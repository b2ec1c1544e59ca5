import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename, extname, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { isRemoteModelUri } from '../../../workflows/common/modelUri.ts';
import { badInput } from '../runtime.ts';

/** The model file of `rollout start --model`: its path as the nodes see it, its checksum, and the default rollout id it gives. */

/** The sha256 of a local file, streamed so multi-GB models do not sit in memory. */
export async function sha256File(file: string): Promise<string> {
  if (isRemoteModelUri(file)) throw badInput(`--sha256: required with a remote --model (${file}): the agents check the download against it, and the CLI does not fetch the model`);
  const hash = createHash('sha256');
  try {
    await pipeline(createReadStream(file), hash);
  } catch (err) {
    throw badInput(
      `--model: cannot read ${file} to compute its sha256 (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); ` +
        'give --sha256 when the file exists on the nodes only',
    );
  }
  return hash.digest('hex');
}

/** A path or file:// URI as the absolute path the nodes are given; a remote URI (s3://, https://, http://) as it is. */
export function absoluteModelPath(model: string): string {
  if (isRemoteModelUri(model)) return model;
  if (model.startsWith('file://')) {
    try {
      return fileURLToPath(model);
    } catch (err) {
      throw badInput(`--model: '${model}' is not a file:/// URI: ${(err as Error).message}`);
    }
  }
  return resolve(model);
}

/** A unique, readable rollout id: the model's base name and the UTC time, cut to ROLLOUT_ID's 64 characters. */
export function defaultRolloutId(modelPath: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
  const base = basename(modelPath, extname(modelPath))
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 64 - stamp.length - 1)
    .replace(/[^A-Za-z0-9]+$/, '');
  return base ? `${base}-${stamp}` : `rollout-${stamp}`;
}

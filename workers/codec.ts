import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Payload, PayloadCodec } from '@temporalio/common';

/**
 * Optional AES-256-GCM payload encryption for workflow inputs, results, queries and details.
 * The whole payload (metadata and data) is encrypted, so the server and its history hold only
 * ciphertext; `encryption-key-id` names the key so old histories stay readable after rotation.
 */
export const ENCODING_ENCRYPTED = 'binary/encrypted';
export const METADATA_KEY_ID = 'encryption-key-id';

const IV_BYTES = 12;
const TAG_BYTES = 16;

export class CodecConfigError extends Error {}

export interface CodecKey {
  id: string;
  key: Buffer;
}

/**
 * Keys from DRYDOCK_CODEC_KEY (comma-separated) or DRYDOCK_CODEC_KEY_FILE (one per line).
 * Each entry is `<id>:<base64 of 32 bytes>` or just the base64 (its id is then a fingerprint).
 * The first key encrypts; the others only decrypt, which is how a key is rotated.
 * Returns undefined when neither is set: encryption is off.
 */
export function loadCodecKeys(env: NodeJS.ProcessEnv): CodecKey[] | undefined {
  let text: string | undefined;
  let source: string;
  if (env.DRYDOCK_CODEC_KEY) {
    text = env.DRYDOCK_CODEC_KEY;
    source = 'DRYDOCK_CODEC_KEY';
  } else if (env.DRYDOCK_CODEC_KEY_FILE) {
    source = `DRYDOCK_CODEC_KEY_FILE (${env.DRYDOCK_CODEC_KEY_FILE})`;
    try {
      text = readFileSync(env.DRYDOCK_CODEC_KEY_FILE, 'utf8');
    } catch (err) {
      throw new CodecConfigError(`${source}: cannot read the key file: ${(err as Error).message}`);
    }
  } else {
    return undefined;
  }
  const entries = text.split(/[,\n]/).map((s) => s.trim()).filter((s) => s && !s.startsWith('#'));
  if (entries.length === 0) throw new CodecConfigError(`${source}: no key found; generate one with 'openssl rand -base64 32'`);
  const keys = entries.map((entry) => parseKey(entry, source));
  const ids = new Set(keys.map((k) => k.id));
  if (ids.size !== keys.length) throw new CodecConfigError(`${source}: two keys share an id; give each key its own id`);
  return keys;
}

function parseKey(entry: string, source: string): CodecKey {
  const colon = entry.indexOf(':');
  const id = colon >= 0 ? entry.slice(0, colon) : undefined;
  const b64 = colon >= 0 ? entry.slice(colon + 1) : entry;
  const key = Buffer.from(b64, 'base64');
  if (key.length !== 32 || key.toString('base64') !== b64.replace(/\s/g, '')) {
    throw new CodecConfigError(`${source}: each key must be 32 bytes in base64 ('openssl rand -base64 32'), optionally prefixed by '<id>:'`);
  }
  if (id !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(id)) {
    throw new CodecConfigError(`${source}: key id '${id}' must be 1-64 letters, digits, '.', '_' or '-'`);
  }
  return { id: id ?? `sha256-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`, key };
}

/** The wire form of a payload before encryption: JSON with base64 bytes (no protobuf dependency). */
function serialize(p: Payload): Buffer {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) if (v) metadata[k] = Buffer.from(v).toString('base64');
  return Buffer.from(JSON.stringify({ metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') }));
}

function deserialize(buf: Buffer): Payload {
  const obj = JSON.parse(buf.toString('utf8')) as { metadata: Record<string, string>; data: string };
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(obj.metadata)) metadata[k] = Buffer.from(v, 'base64');
  return { metadata, data: Buffer.from(obj.data, 'base64') };
}

export class EncryptionCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;
  readonly activeKeyId: string;

  constructor(private readonly keys: CodecKey[]) {
    if (keys.length === 0) throw new CodecConfigError('EncryptionCodec needs at least one key');
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
    this.activeKeyId = keys[0].id;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const { id, key } = this.keys[0];
    return payloads.map((p) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const ct = Buffer.concat([cipher.update(serialize(p)), cipher.final()]);
      return {
        metadata: { encoding: Buffer.from(ENCODING_ENCRYPTED), [METADATA_KEY_ID]: Buffer.from(id) },
        data: Buffer.concat([iv, ct, cipher.getAuthTag()]),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      if (Buffer.from(p.metadata?.encoding ?? []).toString() !== ENCODING_ENCRYPTED) return p; // written before encryption was on
      const id = Buffer.from(p.metadata?.[METADATA_KEY_ID] ?? []).toString();
      const key = this.byId.get(id);
      if (!key) {
        throw new CodecConfigError(`payload encrypted with key '${id}', which is not configured: add it to DRYDOCK_CODEC_KEY(_FILE) as a decrypt-only key`);
      }
      const data = Buffer.from(p.data ?? new Uint8Array());
      if (data.length < IV_BYTES + TAG_BYTES) throw new CodecConfigError(`encrypted payload (key '${id}') is truncated`);
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      return deserialize(plain);
    });
  }
}

/** The codec from env, or undefined when encryption is off. */
export function codecFromEnv(env: NodeJS.ProcessEnv = process.env): EncryptionCodec | undefined {
  const keys = loadCodecKeys(env);
  return keys ? new EncryptionCodec(keys) : undefined;
}

/** A data converter for clients and workers: adds the codec when one is configured. */
export function dataConverterFromEnv(env: NodeJS.ProcessEnv = process.env): { payloadCodecs?: PayloadCodec[] } {
  const codec = codecFromEnv(env);
  return codec ? { payloadCodecs: [codec] } : {};
}

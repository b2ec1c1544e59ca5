import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { CodecConfigError, EncryptionCodec, ENCODING_ENCRYPTED, loadCodecKeys, METADATA_KEY_ID } from '../../workers/codec.ts';
import { createCodecServer } from '../../workers/codecServer.ts';

const key = () => randomBytes(32).toString('base64');
const text = (b?: Uint8Array | null) => Buffer.from(b ?? []).toString('utf8');
const input = { pool: 'demo', nodeId: 'node-1', reason: 'customer-secret-7f3a' };

describe('payload codec (AES-256-GCM)', () => {
  it('round-trips a payload and leaves no plaintext in what it sends', async () => {
    const codec = new EncryptionCodec(loadCodecKeys({ DRYDOCK_CODEC_KEY: `k1:${key()}` })!);
    const plain = defaultPayloadConverter.toPayload(input);
    const [enc] = await codec.encode([plain]);
    assert.equal(text(enc.metadata!.encoding), ENCODING_ENCRYPTED);
    assert.equal(text(enc.metadata![METADATA_KEY_ID]), 'k1');
    assert.ok(!Buffer.from(enc.data!).includes('customer-secret'), 'ciphertext must not contain the input');
    assert.ok(!Buffer.from(enc.data!).includes('json/plain'), 'the inner encoding is encrypted too');
    const [dec] = await codec.decode([enc]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(dec), input);
    // A fresh IV each time: the same input never encrypts to the same bytes.
    const [again] = await codec.encode([plain]);
    assert.notDeepEqual(Buffer.from(again.data!), Buffer.from(enc.data!));
  });

  it('rotates keys: new payloads use the first key, old ones still decode with a decrypt-only key', async () => {
    const oldKey = `2025:${key()}`;
    const newKey = `2026:${key()}`;
    const before = new EncryptionCodec(loadCodecKeys({ DRYDOCK_CODEC_KEY: oldKey })!);
    const [old] = await before.encode([defaultPayloadConverter.toPayload(input)]);
    const rotated = new EncryptionCodec(loadCodecKeys({ DRYDOCK_CODEC_KEY: `${newKey},${oldKey}` })!);
    assert.deepEqual(defaultPayloadConverter.fromPayload((await rotated.decode([old]))[0]), input);
    assert.equal(text((await rotated.encode([defaultPayloadConverter.toPayload(1)]))[0].metadata![METADATA_KEY_ID]), '2026');
    const onlyNew = new EncryptionCodec(loadCodecKeys({ DRYDOCK_CODEC_KEY: newKey })!);
    await assert.rejects(onlyNew.decode([old]), /key '2025', which is not configured/);
  });

  it('rejects tampered ciphertext and passes through payloads written before encryption was on', async () => {
    const codec = new EncryptionCodec(loadCodecKeys({ DRYDOCK_CODEC_KEY: key() })!);
    const [enc] = await codec.encode([defaultPayloadConverter.toPayload(input)]);
    const data = Buffer.from(enc.data!);
    data[20] ^= 1;
    await assert.rejects(codec.decode([{ ...enc, data }]), /unable to authenticate|auth/i);
    const plain = defaultPayloadConverter.toPayload('unencrypted');
    assert.deepEqual((await codec.decode([plain]))[0], plain);
  });

  it('reads keys from env or a key file; unset means off; a bad key names the variable', () => {
    assert.equal(loadCodecKeys({}), undefined);
    const dir = mkdtempSync(join(tmpdir(), 'drydock-codec-'));
    try {
      const file = join(dir, 'keys');
      writeFileSync(file, `# active first\nnew:${key()}\nold:${key()}\n`);
      assert.deepEqual(loadCodecKeys({ DRYDOCK_CODEC_KEY_FILE: file })!.map((k) => k.id), ['new', 'old']);
      assert.throws(() => loadCodecKeys({ DRYDOCK_CODEC_KEY_FILE: join(dir, 'missing') }), /DRYDOCK_CODEC_KEY_FILE .*cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.throws(() => loadCodecKeys({ DRYDOCK_CODEC_KEY: 'too-short' }), (e: Error) => e instanceof CodecConfigError && /DRYDOCK_CODEC_KEY: each key must be 32 bytes/.test(e.message));
    const k = key();
    assert.throws(() => loadCodecKeys({ DRYDOCK_CODEC_KEY: `a:${k},a:${key()}` }), /share an id/);
    assert.match(loadCodecKeys({ DRYDOCK_CODEC_KEY: k })![0].id, /^sha256-[0-9a-f]{12}$/);
  });
});

describe('codec server', () => {
  const codec = new EncryptionCodec(loadCodecKeys({ DRYDOCK_CODEC_KEY: `ui:${key()}` })!);
  const ui = 'http://localhost:8233';
  const token = randomBytes(16).toString('hex');
  let url: string;
  const server = createCodecServer(codec, { corsOrigins: [ui], token });
  const toJson = (p: Payload) => ({
    metadata: Object.fromEntries(Object.entries(p.metadata!).map(([k, v]) => [k, Buffer.from(v!).toString('base64')])),
    data: Buffer.from(p.data!).toString('base64'),
  });
  const post = (path: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${token}` }) =>
    fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', origin: ui, ...headers }, body: JSON.stringify(body) });

  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('decodes what the workers encrypt, for the Web UI origin, and encodes back', async () => {
    const [enc] = await codec.encode([defaultPayloadConverter.toPayload(input)]);
    const res = await post('/decode', { payloads: [toJson(enc)] });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), ui);
    const { payloads } = (await res.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
    assert.equal(Buffer.from(payloads[0].metadata.encoding, 'base64').toString(), 'json/plain');
    assert.deepEqual(JSON.parse(Buffer.from(payloads[0].data, 'base64').toString()), input);

    const back = (await (await post('/encode', { payloads })).json()) as { payloads: { metadata: Record<string, string> }[] };
    assert.equal(Buffer.from(back.payloads[0].metadata.encoding, 'base64').toString(), ENCODING_ENCRYPTED);
  });

  it('answers the CORS preflight for the UI only, and refuses bad requests with a reason', async () => {
    const pre = await fetch(`${url}/decode`, { method: 'OPTIONS', headers: { origin: ui, 'access-control-request-method': 'POST' } });
    assert.equal(pre.status, 204);
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /x-namespace/);
    const other = await fetch(`${url}/decode`, { method: 'OPTIONS', headers: { origin: 'http://evil.example' } });
    assert.equal(other.headers.get('access-control-allow-origin'), null);

    assert.equal((await post('/decode', { payloads: [] }, {})).status, 401, 'no token');
    const bad = await post('/decode', { nope: 1 });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /payloads/);
    assert.equal((await post('/other', { payloads: [] })).status, 404);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRemoteModelUri, parseModelUri } from '../../workflows/common/modelUri.ts';
import { parseRollingUpdateInput } from '../../workflows/inputs/rollingUpdate.ts';
import { absoluteModelPath, sha256File } from '../../scripts/cli/rollout/model.ts';

const SHA = 'a'.repeat(64);

/** Throws an InvalidArgument whose message starts with `field: ` and matches `re`. */
function throwsNaming(fn: () => unknown, field: string, re: RegExp): void {
  assert.throws(fn, (err: Error & { type?: string }) => err.type === 'InvalidArgument' && err.message.startsWith(`${field}: `) && re.test(err.message));
}

describe('model URIs (agent and rollout input)', () => {
  it('parses s3, https, http, file and paths; refuses other schemes naming what is expected', () => {
    assert.deepEqual(parseModelUri('s3://acme-models/llama/q4.gguf'), { scheme: 's3', bucket: 'acme-models', key: 'llama/q4.gguf' });
    assert.deepEqual(parseModelUri('https://models.example.com/q4.gguf?sig=x'), { scheme: 'https', url: 'https://models.example.com/q4.gguf?sig=x' });
    assert.deepEqual(parseModelUri('http://10.0.0.5:8080/m.gguf'), { scheme: 'http', url: 'http://10.0.0.5:8080/m.gguf' });
    assert.deepEqual(parseModelUri('file:///models/a%20b.gguf'), { scheme: 'file', path: '/models/a b.gguf' });
    assert.deepEqual(parseModelUri('/models/m.gguf'), { scheme: 'file', path: '/models/m.gguf' });
    assert.ok(isRemoteModelUri('s3://b-1/k') && isRemoteModelUri('https://h/m') && !isRemoteModelUri('/m.gguf') && !isRemoteModelUri('ftp://x/y'));
    assert.throws(() => parseModelUri('ftp://host/m.gguf'), /^Error: unsupported scheme 'ftp:'; expected s3:\/\/bucket\/key, https:/);
    assert.throws(() => parseModelUri('s3://bucket-only'), /expected s3:\/\/bucket\/key/);
    assert.throws(() => parseModelUri('s3://UPPER/k'), /not an S3 bucket name/);
    assert.throws(() => parseModelUri('https://user:pw@host/m'), /no user:password@ in the URI/);
    assert.throws(() => parseModelUri('file://host/m'), /expected file:\/\/\/absolute\/path/);
    assert.throws(() => parseModelUri(''), /expected s3:\/\/bucket\/key/);
  });

  it('a rollout target may be remote; a bad URI or prefetch fails naming the field', () => {
    const input = (model: object, extra: object = {}) => ({ pool: 'p', target: { model }, ...extra });
    assert.equal(parseRollingUpdateInput(input({ uri: 's3://acme/m.gguf', sha256: SHA })).target.model.uri, 's3://acme/m.gguf');
    assert.equal(parseRollingUpdateInput(input({ uri: 'https://h/m.gguf', sha256: SHA })).prefetch, undefined);
    assert.deepEqual(parseRollingUpdateInput(input({ uri: 'https://h/m.gguf', sha256: SHA }, { prefetch: 0 })).prefetch, { count: 0 });
    assert.deepEqual(parseRollingUpdateInput(input({ uri: 'https://h/m.gguf', sha256: SHA }, { prefetch: '50%' })).prefetch, { percent: 50 });
    throwsNaming(() => parseRollingUpdateInput(input({ uri: 'ftp://h/m.gguf', sha256: SHA })), 'target.model.uri', /unsupported scheme 'ftp:'/);
    throwsNaming(() => parseRollingUpdateInput(input({ uri: 'models/m.gguf', sha256: SHA })), 'target.model.uri', /absolute path/);
    throwsNaming(() => parseRollingUpdateInput(input({ uri: 's3://acme/m.gguf', sha256: SHA }, { prefetch: 'lots' })), 'prefetch', /percent/);
  });

  it('drydock rollout start --model passes a remote URI through and wants its --sha256', async () => {
    assert.equal(absoluteModelPath('s3://acme/m.gguf'), 's3://acme/m.gguf');
    assert.equal(absoluteModelPath('https://h/m.gguf'), 'https://h/m.gguf');
    await assert.rejects(sha256File('s3://acme/m.gguf'), /^Error: --sha256: required with a remote --model \(s3:\/\/acme\/m\.gguf\)/);
  });
});

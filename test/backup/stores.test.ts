import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { FileStore, openStore, S3Store, s3ClientFromEnv, StoreUrlError, type ObjectStore } from '../../activities/stores/index.ts';
import { parseStoreUrl } from '../../workflows/common/storeUrl.ts';
import { startMoto, type Moto } from '../helpers/moto.ts';

describe('object stores (file:// and s3:// on moto)', () => {
  let moto: Moto;
  let dir: string;
  const stores: Record<string, ObjectStore> = {};

  before(async () => {
    moto = await startMoto();
    dir = mkdtempSync(join(tmpdir(), 'drydock-store-'));
    const client = s3ClientFromEnv({ AWS_ENDPOINT_URL_S3: moto.endpoint, AWS_REGION: 'us-east-1' });
    // moto accepts any credentials; the SDK only needs some in its chain.
    process.env.AWS_ACCESS_KEY_ID ??= 'testing';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
    await client.send(new CreateBucketCommand({ Bucket: 'store-test' }));
    stores.file = new FileStore(join(dir, 'store'));
    stores.s3 = new S3Store({ bucket: 'store-test', prefix: 'a/b', client });
  });
  after(async () => {
    await moto?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const kind of ['file', 's3']) {
    it(`${kind}: put, putFile, get, stream, head, list and remove round-trip bytes exactly`, async () => {
      const s = stores[kind];
      const small = randomBytes(1000);
      const big = randomBytes(3 * 1024 * 1024 + 7);
      const src = join(dir, `${kind}-big.bin`);
      writeFileSync(src, big);
      await s.put('x/small', small);
      await s.putFile('x/y/big', src);
      assert.deepEqual(Buffer.from((await s.get('x/small'))!), small);
      const chunks: Buffer[] = [];
      for await (const c of (await s.getStream('x/y/big'))!) chunks.push(c as Buffer);
      assert.ok(Buffer.concat(chunks).equals(big), 'streamed bytes are identical (no chunk framing stored)');
      assert.equal((await s.head('x/y/big'))?.size, big.length);
      // Range reads (a blob inside a pack): small and big, a range running past the end, an empty one, a missing key.
      assert.deepEqual(Buffer.from((await s.getRange('x/small', 10, 20))!), small.subarray(10, 30));
      assert.ok(Buffer.from((await s.getRange('x/y/big', 1024 * 1024 - 3, 2 * 1024 * 1024))!).equals(big.subarray(1024 * 1024 - 3, 3 * 1024 * 1024 - 3)));
      assert.deepEqual(Buffer.from((await s.getRange('x/small', 990, 50))!), small.subarray(990));
      assert.equal((await s.getRange('x/small', 5, 0))?.length, 0);
      assert.equal(await s.getRange('x/missing', 0, 10), undefined);
      assert.equal(await s.head('x/missing'), undefined);
      assert.equal(await s.get('x/missing'), undefined);
      assert.equal(await s.getStream('x/missing'), undefined);
      assert.deepEqual(await s.list('x/'), ['x/small', 'x/y/big']);
      assert.deepEqual(await s.list('x/y'), ['x/y/big']);
      await s.remove('x/small');
      await s.remove('x/small');
      assert.deepEqual(await s.list(''), ['x/y/big']);
      await assert.rejects(s.put('../escape', small), StoreUrlError);
      await assert.rejects(s.put('a//b', small), StoreUrlError);
    });
  }

  it('file: a killed writer leaves only a partial that list ignores and sweepPartials removes', async () => {
    const s = new FileStore(join(dir, 'partials'));
    await s.put('k/one', Buffer.from('1'));
    // What a SIGKILLed writer leaves: a partial named after a pid that no longer runs.
    writeFileSync(join(dir, 'partials/k/two.partial-' + (await import('node:os')).hostname() + '-999999999-abcd'), 'half');
    assert.deepEqual(await s.list('k/'), ['k/one']);
    assert.equal(await s.sweepPartials(), 1);
    assert.deepEqual(readdirSync(join(dir, 'partials/k')), ['one']);
  });

  it('file: putNew creates content-addressed objects, keeps a complete one and replaces a torn one', async () => {
    const s = new FileStore(join(dir, 'cas'));
    const body = randomBytes(5000);
    await s.putNew('o/x', body);
    await s.putNew('o/x', body); // already there, complete: nothing to do
    writeFileSync(join(dir, 'cas/o/y'), body.subarray(0, 100)); // what a killed writer leaves
    await s.putNew('o/y', body);
    assert.deepEqual(Buffer.from((await s.get('o/x'))!), body);
    assert.deepEqual(Buffer.from((await s.get('o/y'))!), body);
  });

  it('file: putFileAddressed copies a file under a key named by its sha256, hashing while copying; a failed copy leaves no partial', async () => {
    const s = new FileStore(join(dir, 'addressed'));
    const body = randomBytes(2 * 1024 * 1024 + 3);
    const src = join(dir, 'addressed-src.bin');
    writeFileSync(src, body);
    const sha = createHash('sha256').update(body).digest('hex');
    const put = await s.putFileAddressed(src, (h) => `objects/sha256/${h.slice(0, 2)}/${h}`);
    assert.deepEqual(put, { key: `objects/sha256/${sha.slice(0, 2)}/${sha}`, sha256: sha, size: body.length });
    assert.ok(Buffer.from((await s.get(put.key))!).equals(body));
    await assert.rejects(s.putFileAddressed(join(dir, 'no-such-file'), (h) => `objects/${h}`), (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
    assert.deepEqual(readdirSync(join(dir, 'addressed'), { recursive: true }).filter((n) => String(n).includes('.partial-')), []);
  });

  it('parses store URLs and says what is wrong with bad ones', () => {
    assert.deepEqual(parseStoreUrl('/var/backups/'), { scheme: 'file', dir: '/var/backups', uri: 'file:///var/backups' });
    assert.deepEqual(parseStoreUrl('s3://bkt-1/p/q/'), { scheme: 's3', bucket: 'bkt-1', prefix: 'p/q', uri: 's3://bkt-1/p/q' });
    assert.match(parseStoreUrl('gs://b/x') as string, /unknown scheme 'gs:\/\/'/);
    assert.match(parseStoreUrl('file://relative/x') as string, /absolute path/);
    assert.match(parseStoreUrl('file:///a/../b') as string, /'\.\.'/);
    assert.match(parseStoreUrl('s3://B_/x') as string, /bucket name/);
    assert.match(parseStoreUrl('backups') as string, /not a store URL/);
    assert.throws(() => openStore('ftp://x/y'), StoreUrlError);
    assert.equal(openStore('s3://bkt/p').uri, 's3://bkt/p');
  });
});

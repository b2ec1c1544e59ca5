import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGceFake, type GceFake } from '../fakes/gce/server.ts';

const TOKEN = 'fake-access-token';

/** The GCE fake must be as strict as GCE, or code passing against it proves nothing. */
describe('GCE REST fake', () => {
  let fake: GceFake;
  let base: string;
  before(async () => {
    fake = await startGceFake({ token: TOKEN, pollsToDone: 3 });
    base = `http://127.0.0.1:${fake.port}/compute/v1/projects/${fake.project}`;
  });
  after(() => fake.stop());

  const call = async (method: string, path: string, body?: unknown, token = TOKEN) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any -- test reads arbitrary Google JSON
  };
  const instance = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    machineType: 'zones/us-central1-a/machineTypes/a2-highgpu-1g',
    disks: [{ boot: true, initializeParams: { sourceImage: 'projects/debian-cloud/global/images/family/debian-12' } }],
    ...extra,
  });
  const rid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

  it('requires the bearer token', async () => {
    const r = await call('GET', '/zones/us-central1-a/instances', undefined, 'wrong');
    assert.equal(r.status, 401);
    assert.equal(r.json.error.status, 'UNAUTHENTICATED');
  });

  it('rejects unknown fields, unknown query parameters, malformed names and requestIds', async () => {
    const unknownField = await call('POST', `/zones/us-central1-a/instances?requestId=${rid(1)}`, instance('ok-name', { colour: 'blue' }));
    assert.equal(unknownField.status, 400);
    assert.match(unknownField.json.error.message, /Unknown name "colour" at 'instance'/);
    assert.equal(unknownField.json.error.errors[0].reason, 'invalid');
    const nested = await call('POST', '/zones/us-central1-a/instances', instance('ok-name', { scheduling: { preemptable: true } }));
    assert.match(nested.json.error.message, /Unknown name "preemptable" at 'instance.scheduling'/);
    const query = await call('POST', '/zones/us-central1-a/instances?requestid=x', instance('ok-name'));
    assert.equal(query.status, 400);
    assert.match(query.json.error.message, /Unknown name "requestid"/);
    const badName = await call('POST', '/zones/us-central1-a/instances', instance('Bad_Name'));
    assert.equal(badName.status, 400);
    assert.match(badName.json.error.message, /resource.name.*Bad_Name/);
    const badRid = await call('POST', '/zones/us-central1-a/instances?requestId=not-a-uuid', instance('ok-name'));
    assert.match(badRid.json.error.message, /requestId/);
    const badType = await call('POST', '/zones/us-central1-a/instances', instance('ok-name', { machineType: 'zones/us-central1-b/machineTypes/x' }));
    assert.match(badType.json.error.message, /resource.machineType/);
    const badLabel = await call('POST', '/zones/us-central1-a/instances', instance('ok-name', { labels: { Pool: 'x' } }));
    assert.match(badLabel.json.error.message, /resource.labels/);
    assert.equal(fake.instances().length, 0, 'nothing was created by bad requests');
  });

  it('de-duplicates on requestId and moves operations PENDING → RUNNING → DONE over polls, by id or name', async () => {
    const first = await call('POST', `/zones/us-central1-a/instances?requestId=${rid(2)}`, instance('dedupe-me'));
    assert.equal(first.status, 200);
    assert.equal(first.json.status, 'PENDING');
    const again = await call('POST', `/zones/us-central1-a/instances?requestId=${rid(2)}`, instance('dedupe-me'));
    assert.equal(again.json.id, first.json.id, 'same requestId, same operation');
    assert.equal(fake.instances().filter((i) => i.name === 'dedupe-me').length, 1);
    const seen = [first.json.status];
    seen.push((await call('GET', `/zones/us-central1-a/operations/${first.json.id}`)).json.status);
    seen.push((await call('POST', `/zones/us-central1-a/operations/${first.json.name}/wait`)).json.status);
    seen.push((await call('GET', `/zones/us-central1-a/operations/${first.json.name}`)).json.status);
    assert.deepEqual(seen, ['PENDING', 'RUNNING', 'RUNNING', 'DONE']);
    assert.equal((await call('GET', '/zones/us-central1-a/instances/dedupe-me')).json.status, 'RUNNING');
  });

  it('answers Google-style 404 notFound, 409 alreadyExists and 429 rateLimitExceeded', async () => {
    const missing = await call('GET', '/zones/us-central1-a/instances/nope');
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.json.error.errors[0], { message: missing.json.error.message, domain: 'global', reason: 'notFound' });
    assert.equal((await call('GET', '/zones/mars-north1-a/instances')).status, 404, 'unknown zone');
    const dup = await call('POST', `/zones/us-central1-a/instances?requestId=${rid(3)}`, instance('dedupe-me'));
    assert.equal(dup.status, 409);
    assert.equal(dup.json.error.errors[0].reason, 'alreadyExists');
    fake.rateLimit(1);
    const limited = await call('GET', '/zones/us-central1-a/instances');
    assert.equal(limited.status, 429);
    assert.equal(limited.json.error.errors[0].reason, 'rateLimitExceeded');
    assert.equal((await call('GET', '/zones/us-central1-a/instances')).status, 200, 'only the injected count is limited');
  });

  it('filters lists by label and pages them', async () => {
    for (const [i, pool] of ['a', 'a', 'b'].entries()) {
      const op = await call('POST', `/zones/us-central1-b/instances?requestId=${rid(10 + i)}`, instance(`n${i}`, { machineType: 'zones/us-central1-b/machineTypes/x', labels: { 'drydock-pool': pool } }));
      assert.equal(op.status, 200);
    }
    const a = await call('GET', `/zones/us-central1-b/instances?filter=${encodeURIComponent('labels.drydock-pool = "a"')}&maxResults=1`);
    assert.equal(a.json.items.length, 1);
    assert.ok(a.json.nextPageToken);
    const a2 = await call('GET', `/zones/us-central1-b/instances?filter=${encodeURIComponent('labels.drydock-pool = "a"')}&maxResults=1&pageToken=${a.json.nextPageToken}`);
    assert.deepEqual([a.json.items[0].name, a2.json.items[0].name].sort(), ['n0', 'n1']);
    assert.equal(a2.json.nextPageToken, undefined);
    const bad = await call('GET', `/zones/us-central1-b/instances?filter=${encodeURIComponent('labels.x ~ y')}`);
    assert.equal(bad.status, 400);
  });

  it('instances.reset: POST …/instances/<name>/reset with an empty body, a RUNNING instance only, one reset per requestId', async () => {
    const done = async (op: Record<string, any>) => { // eslint-disable-line @typescript-eslint/no-explicit-any -- Google JSON
      let cur = op;
      while (cur.status !== 'DONE') cur = (await call('POST', `/zones/us-central1-a/operations/${cur.name}/wait`)).json;
      return cur;
    };
    const inserted = await call('POST', `/zones/us-central1-a/instances?requestId=${rid(30)}`, instance('reset-me'));
    // Still PROVISIONING: not ready for a reset, as GCE answers for a resource in the wrong state.
    const early = await call('POST', '/zones/us-central1-a/instances/reset-me/reset');
    assert.equal(early.status, 400);
    assert.equal(early.json.error.errors[0].reason, 'resourceNotReady');
    await done(inserted.json);
    assert.equal((await call('POST', '/zones/us-central1-a/instances/nope/reset')).status, 404);
    assert.match((await call('POST', '/zones/us-central1-a/instances/reset-me/reset', { force: true })).json.error.message, /Unknown name "force"/);
    assert.match((await call('POST', '/zones/us-central1-a/instances/reset-me/reset?hard=1')).json.error.message, /Unknown name "hard"/);
    assert.equal((await call('PUT', '/zones/us-central1-a/instances/reset-me/reset')).status, 404, 'only POST');

    const first = await call('POST', `/zones/us-central1-a/instances/reset-me/reset?requestId=${rid(31)}`);
    assert.equal(first.status, 200);
    assert.equal(first.json.operationType, 'reset');
    assert.match(first.json.targetLink, /\/instances\/reset-me$/);
    const fin = await done(first.json);
    assert.equal(fin.error, undefined);
    const again = await call('POST', `/zones/us-central1-a/instances/reset-me/reset?requestId=${rid(31)}`);
    assert.equal(again.json.id, first.json.id, 'same requestId, same operation');
    const inst = fake.instances().find((i) => i.name === 'reset-me')!;
    assert.equal(inst.resets, 1, 'one reset for one requestId');
    assert.equal((await call('GET', '/zones/us-central1-a/instances/reset-me')).json.status, 'RUNNING', 'a reset instance stays RUNNING');

    // Stopped on GCE's own account: shown with its message, and not ready for a reset.
    fake.setInstanceStatus('us-central1-a', 'reset-me', 'TERMINATED', 'Instance was preempted.');
    const got = await call('GET', '/zones/us-central1-a/instances/reset-me');
    assert.deepEqual([got.json.status, got.json.statusMessage], ['TERMINATED', 'Instance was preempted.']);
    const stopped = await call('POST', `/zones/us-central1-a/instances/reset-me/reset?requestId=${rid(32)}`);
    assert.equal(stopped.status, 400);
    assert.equal(stopped.json.error.errors[0].reason, 'resourceNotReady');
    assert.equal(inst.resets, 1);
  });

  it('can exhaust a zone: the insert operation ends with ZONE_RESOURCE_POOL_EXHAUSTED and no instance', async () => {
    fake.exhaustZone('europe-west4-a');
    const op = await call('POST', `/zones/europe-west4-a/instances?requestId=${rid(20)}`, instance('big', { machineType: 'zones/europe-west4-a/machineTypes/a3' }));
    let cur = op.json;
    while (cur.status !== 'DONE') cur = (await call('POST', `/zones/europe-west4-a/operations/${cur.name}/wait`)).json;
    assert.equal(cur.error.errors[0].code, 'ZONE_RESOURCE_POOL_EXHAUSTED');
    assert.equal((await call('GET', '/zones/europe-west4-a/instances/big')).status, 404);
    fake.exhaustZone('europe-west4-a', false);
  });
});

import { SharedTokenAuth } from '../../activities/agentAuth.ts';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { LocalAgentBootHook, PrivateIpAgent } from '../../activities/providers/bootHook.ts';
import { PROVIDER_AUTH, PROVIDER_CONFIG } from '../../activities/providers/errors.ts';
import { classifyGceError, fixedTokenAuth, gceErrorInfo, GceProvider, LABEL_REQUEST, type GceOptions } from '../../activities/providers/gce.ts';
import { keyHash } from '../../activities/providers/naming.ts';
import { CapacityError } from '../../activities/providers/types.ts';
import { startGceFake, type GceFake } from '../fakes/gce/server.ts';
import { removeFleetDir } from '../../scripts/lib/fleet.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { assertNotRebootable } from '../helpers/providers.ts';

const TOKEN = 'fake-gce-token';

describe('gce provider (real @google-cloud/compute client) against the strict GCE fake', () => {
  let fake: GceFake;
  const made: GceProvider[] = [];
  const provider = (opts: Partial<GceOptions> = {}, token = TOKEN) => {
    const p = new GceProvider(
      { project: fake.project, zone: 'us-central1-a', sourceImage: 'projects/debian-cloud/global/images/family/debian-12', apiEndpoint: '127.0.0.1', port: fake.port, protocol: 'http', ...opts },
      new PrivateIpAgent(9400),
      'pool gpu',
      fixedTokenAuth(token),
    );
    made.push(p);
    return p;
  };
  const spec = { pool: 'gpu', instanceType: 'a2-highgpu-1g' };

  before(async () => (fake = await startGceFake({ token: TOKEN, pollsToDone: 3 })));
  beforeEach(() => fake.calls.clear());
  after(async () => {
    await Promise.all(made.map((p) => p.close()));
    await fake.stop();
  });

  it('provisioning twice with one key (also at once) makes one labelled, running instance', async () => {
    const p = provider({ spot: true, startupScript: 'echo {{nodeId}}' });
    const [a, b] = await Promise.all([p.provision(spec, 'replace/gpu/n1/provision'), p.provision(spec, 'replace/gpu/n1/provision')]);
    const c = await p.provision(spec, 'replace/gpu/n1/provision');
    assert.equal(a.id, b.id);
    assert.equal(a.id, c.id);
    assert.equal(fake.instances().filter((i) => i.labels['drydock-pool'] === 'gpu').length, 1, 'one instance for one key');
    assert.equal(a.state, 'running');
    assert.equal(a.instanceType, 'a2-highgpu-1g');
    assert.equal(a.agentUrl, `http://${a.privateIp}:9400`);
    assert.deepEqual(
      { pool: a.tags['drydock-pool'], node: a.tags['drydock-node'], managed: a.tags['drydock-managed'], req: a.tags[LABEL_REQUEST] },
      { pool: 'gpu', node: a.id, managed: 'true', req: keyHash('replace/gpu/n1/provision') },
    );
    // The operation was polled through RUNNING to DONE with ZoneOperationsClient.wait.
    assert.ok((fake.calls.get('zoneOperations.wait') ?? 0) >= 3);
  });

  it('terminate twice is fine, as is an unknown node; a deleted node is gone from describe and list', async () => {
    const p = provider();
    const n = await p.provision(spec, 'k1');
    const keep = await p.provision(spec, 'k2');
    await Promise.all([p.terminate(n.id), p.terminate(n.id)]);
    await p.terminate(n.id);
    await p.terminate('gpu-nosuchnode');
    assert.equal(await p.describe(n.id), undefined);
    assert.ok((await p.list('gpu')).some((x) => x.id === keep.id));
    assert.equal((await p.list('gpu')).some((x) => x.id === n.id), false);
  });

  it('lists by pool label only', async () => {
    const p = provider({ zone: 'us-central1-b' });
    await p.provision(spec, 'x1');
    await p.provision({ pool: 'other', instanceType: 'a2-highgpu-1g' }, 'x2');
    assert.deepEqual((await p.list('gpu')).map((n) => n.pool), ['gpu']);
    assert.deepEqual((await p.list('other')).map((n) => n.pool), ['other']);
    assert.deepEqual(await p.list('empty'), []);
  });

  it('disk snapshots: disks.createSnapshot once per key, list by label, delete twice', async () => {
    const p = provider();
    const n = await p.provision(spec, 'snap-node');
    const req = { source: { nodeId: n.id }, idempotencyKey: 'backup/nightly/1', tags: { 'drydock-backup': 'nightly' } };
    const [s1, s2] = await Promise.all([p.snapshot(req), p.snapshot(req)]);
    assert.equal(s1.id, s2.id);
    assert.equal(s1.state, 'ready');
    assert.equal(s1.volumeId, n.id, 'the boot disk is named after the instance');
    const byDisk = await p.snapshot({ source: { volumeId: `zones/us-central1-a/disks/${n.id}` }, idempotencyKey: 'other', tags: { 'drydock-backup': 'weekly' } });
    assert.notEqual(byDisk.id, s1.id);
    assert.deepEqual((await p.listSnapshots({ tags: { 'drydock-backup': 'nightly' } })).map((s) => s.id), [s1.id]);
    await p.deleteSnapshot(s1.id);
    await p.deleteSnapshot(s1.id);
    assert.deepEqual(await p.listSnapshots({ tags: { 'drydock-backup': 'nightly' } }), []);
    assert.equal((await p.listSnapshots()).length, 1);
  });

  it('a snapshot name taken (409) is adopted only when it carries this key: another key\'s snapshot fails, naming what to fix', async () => {
    const a = await provider().provision(spec, 'snap-adopt-a');
    const b = await provider({ zone: 'us-central1-b' }).provision(spec, 'snap-adopt-b');
    const req = { source: { nodeId: a.id }, idempotencyKey: 'backup/adopt/1', tags: { 'drydock-backup': 'adopt' } };
    const first = await provider().snapshot(req);
    // The same key through the entry of another zone: another requestId, so GCE answers 409 on the name; that snapshot is ours.
    const adopted = await provider({ zone: 'us-central1-b' }).snapshot({ ...req, source: { nodeId: b.id } });
    assert.equal(adopted.id, first.id);
    // A snapshot holding the name this key derives, made by someone else (another key label): not adopted.
    const key = 'backup/taken/1';
    const name = `drydock-snap-${keyHash(key).slice(0, 20)}`;
    const res = await fetch(`http://127.0.0.1:${fake.port}/compute/v1/projects/${fake.project}/zones/us-central1-a/disks/${a.id}/createSnapshot`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name, labels: { 'drydock-snapshot-key': keyHash('someone-else') } }),
    });
    assert.equal(res.status, 200);
    const err = await provider().snapshot({ ...req, idempotencyKey: key }).catch((e: unknown) => e);
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, PROVIDER_CONFIG);
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, new RegExp(`snapshot name ${name} is taken by a snapshot drydock did not make.*Delete or rename that snapshot`, 's'));
  });

  it('reboot is instances.reset: once per key (a retry gets the first operation), every call without one; the node keeps its id', async () => {
    const p = provider();
    const n = await p.provision(spec, 'reboot-node');
    const inst = () => fake.instances().find((i) => i.name === n.id)!;
    await Promise.all([p.reboot(n.id, 'remedy/gpu/1'), p.reboot(n.id, 'remedy/gpu/1')]);
    await p.reboot(n.id, 'remedy/gpu/1');
    assert.equal(inst().resets, 1, 'one reset for one key');
    await p.reboot(n.id);
    assert.equal(inst().resets, 2, 'no key: every call resets');
    const after = await p.describe(n.id);
    assert.deepEqual([after?.id, after?.state, after?.dead, after?.agentUrl], [n.id, 'running', undefined, n.agentUrl]);
  });

  it('with the local boot hook (dev and tests), a reset restarts the stand-in agent: its non-persistent faults are gone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drydock-gce-hook-'));
    const agentToken = 'gce-hook-agent-token';
    const p = new GceProvider(
      { project: fake.project, zone: 'us-central1-a', sourceImage: 'debian-12', apiEndpoint: '127.0.0.1', port: fake.port, protocol: 'http' },
      new LocalAgentBootHook({ stateDir: dir, gpusPerNode: 2, bootSeconds: 0, faultInjection: true }, new SharedTokenAuth(agentToken)),
      'pool gpu',
      fixedTokenAuth(TOKEN),
    );
    made.push(p);
    const xids = async (url: string) => {
      const res = await fetch(`${url}/health`, { headers: { authorization: `Bearer ${agentToken}` } });
      return ((await res.json()) as { recentXids: unknown[] }).recentXids.length;
    };
    try {
      const n = await p.provision(spec, 'hooked-node');
      const url = async () => (await p.describe(n.id))?.agentUrl;
      await waitFor(async () => (await url()) !== undefined, 30_000, 'the stand-in agent');
      const first = (await url())!;
      const inject = await fetch(`${first}/sim/faults`, { method: 'POST', headers: { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'xid', gpu: 0, code: 79 }) });
      assert.equal(inject.status, 200);
      assert.equal(await xids(first), 1);
      await p.reboot(n.id, 'remedy/hooked/1');
      await waitFor(async () => {
        const u = await url();
        return u !== undefined && u !== first;
      }, 30_000, 'the restarted stand-in agent');
      assert.equal(await xids((await url())!), 0);
    } finally {
      await removeFleetDir(dir);
    }
  });

  it('a node GCE stopped or is repairing is dead at the provider: listed with GCE\'s reason, not rebootable, and terminate deletes it', async () => {
    const p = provider();
    const [stopped, suspended, repairing, fine] = await Promise.all(['dead-1', 'dead-2', 'dead-3', 'dead-4'].map((k) => p.provision({ pool: 'deadpool', instanceType: 'a2-highgpu-1g' }, k)));
    fake.setInstanceStatus('us-central1-a', stopped.id, 'TERMINATED', 'Instance was preempted.');
    fake.setInstanceStatus('us-central1-a', suspended.id, 'SUSPENDED');
    fake.setInstanceStatus('us-central1-a', repairing.id, 'REPAIRING');
    const listed = new Map((await p.list('deadpool')).map((x) => [x.id, x]));
    assert.equal(listed.size, 4, 'dead nodes stay listed: they exist, out of service, until drydock deletes them');
    assert.deepEqual(listed.get(stopped.id)?.dead, { reason: 'GCE status TERMINATED: Instance was preempted.' });
    assert.deepEqual(listed.get(suspended.id)?.dead, { reason: 'GCE status SUSPENDED' });
    assert.deepEqual(listed.get(repairing.id)?.dead, { reason: 'GCE status REPAIRING' });
    assert.equal(listed.get(fine.id)?.dead, undefined);
    assert.equal(listed.get(stopped.id)?.agentUrl, undefined);
    assert.deepEqual((await p.describe(stopped.id))?.dead, { reason: 'GCE status TERMINATED: Instance was preempted.' });

    await assertNotRebootable(p.reboot(stopped.id, 'remedy/dead'), /the instance is TERMINATED \(Instance was preempted.\).*Replace the node/);
    await assertNotRebootable(p.reboot('gpu-nosuchnode', 'remedy/dead'), /no such instance/);
    assert.equal(fake.calls.get('instances.reset') ?? 0, 0, 'no reset was sent for a node that cannot take one');
    await p.terminate(stopped.id);
    assert.equal(await p.describe(stopped.id), undefined);
  });

  it('an exhausted zone is a capacity error (the pool tries its next zone), leaving no instance', async () => {
    fake.exhaustZone('europe-west4-a');
    try {
      const err = await provider({ zone: 'europe-west4-a' }).provision(spec, 'big').catch((e: unknown) => e);
      assert.ok(err instanceof CapacityError, String(err));
      assert.match(err.message, /ZONE_RESOURCE_POOL_EXHAUSTED/);
      assert.equal(fake.instances().filter((i) => i.zone === 'europe-west4-a').length, 0);
      fake.exhaustZone('europe-west4-a', false);
      // Capacity is back: the retried key gets its node, although GCE replays the failed operation for its requestId.
      const [a, b] = await Promise.all([provider({ zone: 'europe-west4-a' }).provision(spec, 'big'), provider({ zone: 'europe-west4-a' }).provision(spec, 'big')]);
      assert.equal(a.id, b.id);
      // The call that lost the race found the other's instance by name (409) and may see it still booting.
      assert.ok([a.state, b.state].includes('running'));
      assert.equal(fake.instances().filter((i) => i.zone === 'europe-west4-a').length, 1, 'one instance');
    } finally {
      fake.exhaustZone('europe-west4-a', false);
    }
  });

  it('rate limiting is retryable; a bad token and a bad name fail non-retryably saying what to fix', async () => {
    fake.rateLimit(1);
    const limited = await provider().describe('gpu-x').catch((e: unknown) => e);
    assert.ok(limited instanceof Error && !(limited instanceof ApplicationFailure), 'throttling is left to retries');
    assert.match(limited.message, /429 rateLimitExceeded/);

    const auth = await provider({}, 'stolen').provision(spec, 'a').catch((e: unknown) => e);
    assert.ok(auth instanceof ApplicationFailure);
    assert.equal(auth.type, PROVIDER_AUTH);
    assert.equal(auth.nonRetryable, true);
    assert.match(auth.message, /GOOGLE_APPLICATION_CREDENTIALS/);
    assert.doesNotMatch(auth.message, /stolen/, 'the credential never appears in the message');

    const bad = await provider().provision({ pool: '9gpu', instanceType: 'a2' }, 'b').catch((e: unknown) => e);
    assert.ok(bad instanceof ApplicationFailure);
    assert.equal(bad.type, PROVIDER_CONFIG);
    assert.match(bad.message, /resource.name.*Fix the pool name/s);
  });

  it('reads both error shapes gax versions produce (gRPC code 5, or HTTP 404 with the JSON body)', () => {
    assert.equal(classifyGceError(gceErrorInfo({ code: 5, message: 'not found' })), 'not-found');
    const http = gceErrorInfo({ code: 404, message: JSON.stringify({ error: { code: 404, message: 'gone', errors: [{ reason: 'notFound' }] } }) });
    assert.deepEqual(http, { http: 404, reason: 'notFound', message: 'gone' });
    assert.equal(classifyGceError(gceErrorInfo({ code: 8, message: 'Rate Limit Exceeded' })), 'throttle');
    assert.equal(classifyGceError(gceErrorInfo({ code: 6, message: 'exists' })), 'conflict');
    assert.equal(classifyGceError(gceErrorInfo(new Error('Could not load the default credentials. Browse to https://cloud.google.com/docs/authentication'))), 'auth');
  });
});

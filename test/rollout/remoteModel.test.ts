import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { agentPid, pidAlive } from '../../activities/providers/agentProcess.ts';
import type { ModelDownload } from '../../activities/agentClient.ts';
import { tinyLlamaGguf } from '../../scripts/lib/tinyLlama.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import type { RolloutResult } from '../../workflows/rollout/api.ts';
import { startMoto, type Moto } from '../helpers/moto.ts';
import { allServing, failsWith, rolloutHarness, waitRollout } from './helpers.ts';

const TQ = 'rollout-remote';
const POOL = 'remote';
const NODES = 2;
const quick = { analysis: { intervalSeconds: 0, maxLatencyMs: 120_000 }, drainTimeoutSeconds: 20 };

describe('rollingUpdate from s3:// (moto): prefetch while serving, a SIGKILL mid-download, a corrupt object', () => {
  let moto: Moto;
  let s3: S3Client;
  const saved = { ...process.env };
  // Before the harness starts agents and the worker: they take S3's endpoint and credentials from the environment.
  before(async () => {
    moto = await startMoto();
    // 3 MiB/s: the ~11 MB model takes a few seconds, long enough to kill an agent mid-way.
    Object.assign(process.env, { AWS_ENDPOINT_URL_S3: moto.endpoint, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1', DRYDOCK_AGENT_MODEL_DOWNLOAD_RATE: String(3 * 2 ** 20) });
    s3 = new S3Client({ region: 'us-east-1', endpoint: moto.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    await s3.send(new CreateBucketCommand({ Bucket: 'models' }));
  });
  const spec: FleetPoolSpec = {
    name: POOL,
    minNodes: 1,
    maxNodes: 4,
    health: { probeIntervalSeconds: 1, unhealthyAfter: 3, unreachableAfterSeconds: 30, drainTimeoutSeconds: 20 },
    disruption: { maxUnavailable: 1, minHealthy: 1 },
  };
  const h = rolloutHarness({ taskQueue: TQ, spec, nodes: NODES });
  after(async () => {
    await moto?.stop();
    process.env = saved;
  });

  const download = async (nodeId: string, sha256: string): Promise<ModelDownload | undefined> => {
    try {
      return ((await (await h.agent(nodeId, 'GET', '/model/downloads')).json()) as { downloads: ModelDownload[] }).downloads.find((d) => d.sha256 === sha256);
    } catch {
      return undefined; // the agent is restarting
    }
  };

  it('rolls a multipart s3:// model out: nodes download while serving, a SIGKILLed agent resumes its download, every node serves it', async () => {
    // ~11 MB in three parts of a multipart upload.
    const bytes = tinyLlamaGguf({ seed: 51, name: 'remote-b', embedding: 256, layers: 4, feedForward: 512 });
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'models', Key: 'llm/remote-b.gguf' }));
    const parts = [];
    for (let i = 0, n = 1; i < bytes.length; i += 5 * 2 ** 20, n++) {
      const r = await s3.send(new UploadPartCommand({ Bucket: 'models', Key: 'llm/remote-b.gguf', UploadId, PartNumber: n, Body: bytes.subarray(i, i + 5 * 2 ** 20) }));
      parts.push({ ETag: r.ETag, PartNumber: n });
    }
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'models', Key: 'llm/remote-b.gguf', UploadId, MultipartUpload: { Parts: parts } }));

    const uri = 's3://models/llm/remote-b.gguf';
    const [first, second] = h.fleet.nodeIds;
    const handle = await h.start('from-s3', { target: { model: { uri, sha256 } }, maxUnavailable: 1, prefetch: 2, ...quick });
    // Both nodes download at once, and both still serve meanwhile (prefetch: the walk waits for it before the cordon).
    const during = await waitRollout(handle, (s) => s.nodes.filter((n) => n.prefetch?.state === 'prefetching').length === 2, 'both nodes prefetching');
    assert.ok(during.nodes.every((n) => n.state === 'pending'), JSON.stringify(during.nodes));
    await waitFor(async () => ((await download(second, sha256))?.bytes ?? 0) >= 4 * 2 ** 20, 60_000, `4 MiB on ${second}`, 50);
    for (const id of [first, second]) assert.equal((await h.agent(id, 'GET', '/ready')).status, 200, `${id} serves while it downloads`);

    // A crash mid-download: the restarted agent is asked again by the activity and goes on from its partial file.
    const dataDir = join(h.fleet.dir, 'state', 'nodes', second);
    const pid = agentPid(dataDir)!;
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !pidAlive(pid), 5000, 'the killed agent to be gone', 5);
    await h.fleet.provider.ensureRunning(POOL); // what systemd's Restart= does on a node

    const result = (await handle.result().catch((err: Error & { cause?: Error }) => {
      throw new Error(`rollout failed: ${err.cause?.message ?? err.message}`);
    })) as RolloutResult;
    assert.equal(result.outcome, 'succeeded', result.status.reason);
    assert.deepEqual(Object.values(await h.served()), Array(NODES).fill(sha256));
    const resumed = await download(second, sha256);
    assert.equal(resumed?.state, 'done');
    assert.ok((resumed?.resumedFromBytes ?? 0) >= 4 * 2 ** 20, `the restarted agent resumed at ${resumed?.resumedFromBytes} bytes, it did not start over`);
    const node = result.status.nodes.find((n) => n.id === second)!;
    assert.equal(node.prefetch?.state, 'ready');
    assert.ok((node.prefetch?.resumedFromBytes ?? 0) >= 4 * 2 ** 20, JSON.stringify(node.prefetch));
    await allServing(h);
  });

  it('a corrupt object (sha256 mismatch after download) fails its prefetch and rolls back: the old model keeps serving, no node was cordoned', async () => {
    const before = await h.served();
    const good = tinyLlamaGguf({ seed: 52, name: 'remote-c' });
    await s3.send(new PutObjectCommand({ Bucket: 'models', Key: 'llm/remote-c.gguf', Body: good.subarray(0, good.length - 1000) }));
    const sha256 = createHash('sha256').update(good).digest('hex');
    const handle = await h.start('corrupt', { target: { model: { uri: 's3://models/llm/remote-c.gguf', sha256 } }, maxUnavailable: 1, ...quick });
    const r = await failsWith(handle, 'RolloutRolledBack');
    assert.match(r.status.reason ?? '', /prefetch failed \(the node kept serving its model\): .*sha256: s3:\/\/models\/llm\/remote-c\.gguf downloaded with sha256 [0-9a-f]{64}, expected/);
    assert.ok(r.status.nodes.every((n) => n.state !== 'cordoning' && n.previous?.sha256 === Object.values(before)[0]));
    assert.deepEqual(await h.served(), before);
    assert.equal(r.status.maxDisrupted, 0, 'nothing was taken out of service');
    await allServing(h);
  });

  it('blue-green from s3://: green nodes download the model as a step of their own before they are loaded and join', async () => {
    const bytes = tinyLlamaGguf({ seed: 53, name: 'remote-d' });
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await s3.send(new PutObjectCommand({ Bucket: 'models', Key: 'llm/remote-d.gguf', Body: bytes }));
    const handle = await h.start('bg-s3', { strategy: 'blueGreen', target: { model: { uri: 's3://models/llm/remote-d.gguf', sha256 } }, scaleDownDelaySeconds: 0, ...quick });
    const result = (await handle.result().catch((err: Error & { cause?: Error }) => {
      throw new Error(`rollout failed: ${err.cause?.message ?? err.message}`);
    })) as RolloutResult;
    assert.equal(result.outcome, 'succeeded', result.status.reason);
    const green = result.status.nodes.filter((n) => n.role === 'green');
    assert.equal(green.length, NODES);
    for (const n of green) {
      assert.equal(n.prefetch?.state, 'ready', JSON.stringify(n));
      assert.equal(n.prefetch?.bytes, bytes.length);
    }
    assert.deepEqual(Object.values(await h.served()), Array(NODES).fill(sha256));
    await allServing(h);
  });
});

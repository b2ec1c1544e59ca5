import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { agentUrl } from '../../activities/providers/agentProcess.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { tinyLlamaGguf } from '../../scripts/lib/tinyLlama.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { startModelServer, type ModelServer } from '../helpers/modelServer.ts';
import { startMoto, type Moto } from '../helpers/moto.ts';

const TOKEN = 'model-resume-test-token-0123456789';

interface Download {
  sha256: string;
  state: string;
  bytes: number;
  totalBytes: number | null;
  resumedFromBytes: number;
  requests: number;
  error?: string;
  status?: number;
}

/** A real gpu-agent process (so SIGKILL is a real crash), with its own data dir, env and flags. */
class AgentProc {
  child?: ChildProcess;
  constructor(readonly dataDir: string, private readonly args: string[], private readonly env: NodeJS.ProcessEnv) {}

  async start(): Promise<void> {
    mkdirSync(this.dataDir, { recursive: true });
    rmSync(join(this.dataDir, 'agent.json'), { force: true });
    this.child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'gpu-agent/main.ts'), '--port', '0', '--data-dir', this.dataDir, '--gpus', '1', '--slots', '1', '--threads', '1', ...this.args], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, ...this.env, DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN },
    });
    await waitFor(() => agentUrl(this.dataDir) !== undefined, 30_000, 'the agent to listen');
  }

  call(method: string, path: string, body?: unknown): Promise<Response> {
    return fetch(`${agentUrl(this.dataDir)}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  }

  async download(sha256: string): Promise<Download | undefined> {
    return ((await (await this.call('GET', '/model/downloads')).json()) as { downloads: Download[] }).downloads.find((d) => d.sha256 === sha256);
  }

  async kill(): Promise<void> {
    const c = this.child!;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }
}

/** Prefetches, SIGKILLs the agent once `killAt` bytes are on disk, restarts it, prefetches again: returns the second run's status. */
async function killMidDownloadAndResume(agent: AgentProc, uri: string, sha256: string, killAt: number): Promise<{ before: number; after: Download }> {
  assert.equal((await agent.call('POST', '/model/prefetch', { uri, sha256 })).status, 202);
  await waitFor(async () => ((await agent.download(sha256))?.bytes ?? 0) >= killAt, 60_000, `${killAt} bytes of ${uri} on disk`, 50);
  await agent.kill();
  const part = join(agent.dataDir, 'models', 'partial', `${sha256}.part`);
  const before = statSync(part).size;
  assert.ok(before >= killAt, `partial file has ${before} bytes`);
  await agent.start();
  const res = await agent.call('POST', '/model/prefetch', { uri, sha256 });
  assert.equal(res.status, 202, await res.clone().text());
  let d: Download | undefined;
  await waitFor(async () => ((d = await agent.download(sha256))?.state ?? '') !== 'downloading' && d?.state !== 'verifying', 60_000, `the resumed download of ${uri}`, 50);
  return { before, after: d! };
}

describe('gpu-agent model downloads survive a SIGKILL: https (a private CA) and s3:// on moto', () => {
  let dir: string;
  let server: ModelServer;
  let moto: Moto;
  let cert: string;
  const agents: AgentProc[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agent-model-resume-'));
    cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
    server = await startModelServer({ cert, key });
    moto = await startMoto();
  });
  after(async () => {
    for (const a of agents) await a.kill();
    await server?.close();
    await moto?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('https:// with range requests: an agent SIGKILLed mid-download resumes from its partial file, verifies and serves', async () => {
    const bytes = tinyLlamaGguf({ seed: 31, name: 'tls-model' });
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    server.put('/models/tls-model.gguf', bytes);
    const uri = `${server.base}/models/tls-model.gguf`;
    // The agent trusts the store's private CA the standard Node way; 150 kB/s makes the download take ~3 s.
    const agent = new AgentProc(join(dir, 'https-agent'), ['--model-download-rate', '150000'], { NODE_EXTRA_CA_CERTS: cert });
    agents.push(agent);
    await agent.start();
    const { before, after: d } = await killMidDownloadAndResume(agent, uri, sha256, 150_000);
    assert.equal(d.state, 'done', d.error);
    assert.equal(d.resumedFromBytes, before, 'the restarted agent went on from its partial file');
    const reqs = server.requests.filter((r) => r.path === '/models/tls-model.gguf');
    assert.equal(reqs.at(-1)!.range, `bytes=${before}-`);
    assert.equal(reqs.at(-1)!.bytesSent, bytes.length - before, 'only the rest was fetched again');
    const load = await agent.call('PUT', '/model', { uri, sha256 });
    assert.equal(load.status, 200, await load.clone().text());
    assert.equal(server.requests.filter((r) => r.path === '/models/tls-model.gguf').length, reqs.length, 'the load came from the cache');
    assert.equal(((await (await agent.call('GET', '/health')).json()) as { model: { sha256: string } }).model.sha256, sha256);
  });

  it('s3:// on moto: a multipart object downloads, survives a SIGKILL without starting over, and bad objects get 4xx naming the cause', async () => {
    const env = { AWS_ENDPOINT_URL_S3: moto.endpoint, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1' };
    const s3 = new S3Client({ region: 'us-east-1', endpoint: moto.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    await s3.send(new CreateBucketCommand({ Bucket: 'models' }));
    // ~11 MB: three parts of a multipart upload (moto, like S3, wants 5 MiB parts but the last).
    const bytes = tinyLlamaGguf({ seed: 41, name: 'big', embedding: 256, layers: 4, feedForward: 512 });
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'models', Key: 'llm/big.gguf' }));
    const PART = 5 * 2 ** 20;
    const parts = [];
    for (let i = 0, n = 1; i < bytes.length; i += PART, n++) {
      const r = await s3.send(new UploadPartCommand({ Bucket: 'models', Key: 'llm/big.gguf', UploadId, PartNumber: n, Body: bytes.subarray(i, i + PART) }));
      parts.push({ ETag: r.ETag, PartNumber: n });
    }
    assert.ok(parts.length >= 3, `${parts.length} parts`);
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'models', Key: 'llm/big.gguf', UploadId, MultipartUpload: { Parts: parts } }));
    await s3.send(new PutObjectCommand({ Bucket: 'models', Key: 'llm/corrupt.gguf', Body: bytes.subarray(0, 100_000) }));

    const agent = new AgentProc(join(dir, 's3-agent'), ['--model-download-rate', String(3 * 2 ** 20)], env);
    agents.push(agent);
    await agent.start();
    const uri = 's3://models/llm/big.gguf';
    const { before, after: d } = await killMidDownloadAndResume(agent, uri, sha256, 4 * 2 ** 20);
    assert.equal(d.state, 'done', d.error);
    assert.equal(d.resumedFromBytes, before);
    assert.ok(d.bytes === bytes.length);
    const load = await agent.call('PUT', '/model', { uri, sha256 });
    assert.equal(load.status, 200, await load.clone().text());
    const smoke = await agent.call('POST', '/smoke', { prompt: 'hi', max_tokens: 2 });
    assert.equal(smoke.status, 200);

    const bad: [string, string, number, RegExp][] = [
      ['no bucket', 's3://no-such-bucket/m.gguf', 404, /^uri: bucket 'no-such-bucket' does not exist/],
      ['no object', 's3://models/llm/none.gguf', 404, /^uri: no object 'llm\/none\.gguf' in bucket 'models'/],
      ['corrupt object', 's3://models/llm/corrupt.gguf', 409, /^sha256: s3:\/\/models\/llm\/corrupt\.gguf downloaded with sha256 [0-9a-f]{64}, expected/],
    ];
    for (const [what, u, status, re] of bad) {
      const res = await agent.call('PUT', '/model', { uri: u, sha256: 'b'.repeat(64) });
      const body = (await res.json()) as { error: string };
      assert.equal(res.status, status, `${what}: ${body.error}`);
      assert.match(body.error, re, what);
    }
    assert.equal(((await (await agent.call('GET', '/health')).json()) as { model: { sha256: string } }).model.sha256, sha256, 'the good model still serves');
    assert.ok(!existsSync(join(agent.dataDir, 'models', 'b'.repeat(64))));
    assert.deepEqual(readdirSync(join(agent.dataDir, 'models', 'partial')), []);
  });
});

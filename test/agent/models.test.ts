import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadAgentConfig } from '../../gpu-agent/config.ts';
import { createAgent, type Agent } from '../../gpu-agent/server.ts';
import { tinyLlamaGguf, writeTinyLlama } from '../../scripts/lib/tinyLlama.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { startModelServer, type ModelServer } from '../helpers/modelServer.ts';

const TOKEN = 'models-test-token-0123456789';

interface TinyModel {
  bytes: Buffer;
  sha256: string;
}
const tiny = (seed: number): TinyModel => {
  const bytes = tinyLlamaGguf({ seed, name: `tiny-${seed}` });
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
};

/** An in-process agent (real llama.cpp on tiny GGUFs) with a data dir and model root of its own. */
async function startAgent(dir: string, extra: string[] = []) {
  mkdirSync(join(dir, 'data'), { recursive: true });
  mkdirSync(join(dir, 'root'), { recursive: true });
  const agent: Agent = createAgent(
    loadAgentConfig(['--gpus', '1', '--slots', '1', '--threads', '1', '--data-dir', join(dir, 'data'), '--model-dir', join(dir, 'root'), ...extra], { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN }),
  );
  await new Promise<void>((r) => agent.server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(agent.server.address() as AddressInfo).port}`;
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = async (method: string, path: string, body?: unknown) => (await call(method, path, body)).json();
  const cached = () => readdirSync(join(dir, 'data', 'models')).filter((f) => /^[0-9a-f]{64}$/.test(f)).sort();
  const partials = () => readdirSync(join(dir, 'data', 'models', 'partial'));
  /** Prefetches and waits until the download is done (or failed), returning its status. */
  const prefetched = async (uri: string, sha256: string) => {
    let d: { state: string; error?: string; status?: number } = (await json('POST', '/model/prefetch', { uri, sha256 })).download;
    await waitFor(async () => {
      d = (await json('GET', '/model/downloads')).downloads.find((x: { sha256: string }) => x.sha256 === sha256) ?? d;
      return d.state === 'done' || d.state === 'failed';
    }, 30_000, `prefetch of ${uri}`, 50);
    return d;
  };
  return { agent, call, json, cached, partials, prefetched, close: () => agent.close() };
}

describe('gpu-agent model delivery: URIs, roots, a verified resumable cache', () => {
  let dir: string;
  let server: ModelServer;
  const m = { a: tiny(11), b: tiny(12), c: tiny(13), d: tiny(14), e: tiny(15) };
  const size = m.a.bytes.length;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agent-models-'));
    server = await startModelServer();
    for (const [k, v] of Object.entries(m)) server.put(`/models/${k}.gguf`, v.bytes);
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('downloads over http with range requests, resumes after the connection drops mid-file, verifies, then serves it', async () => {
    const a = await startAgent(join(dir, 'resume'));
    try {
      server.put('/models/drop.gguf', m.b.bytes, { dropAfterBytes: { bytes: 200_000, times: 1 } });
      const uri = `${server.base}/models/drop.gguf`;
      const res = await a.call('PUT', '/model', { uri, sha256: m.b.sha256 });
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal((await res.json()).model.sha256, m.b.sha256);
      const reqs = server.requests.filter((r) => r.path === '/models/drop.gguf');
      assert.equal(reqs.length, 2, 'one request cut off, one range request for the rest');
      assert.equal(reqs[0].range, undefined);
      // It resumes where its file ends (bytes still in flight when the connection dropped are lost).
      const from = Number(/^bytes=(\d+)-$/.exec(reqs[1].range ?? '')?.[1]);
      assert.ok(from > 0 && from <= reqs[0].bytesSent, `resumed from ${reqs[1].range}, ${reqs[0].bytesSent} sent before`);
      assert.equal(reqs[1].status, 206);
      assert.equal(reqs[1].bytesSent, size - from, 'only the rest fetched again');
      const h = await a.json('GET', '/health');
      assert.equal(h.model.sha256, m.b.sha256);
      assert.equal(h.model.id, 'drop');
      assert.equal(h.modelDownloads[0].state, 'done');
      assert.equal(h.modelDownloads[0].bytes, size);
      assert.equal(h.modelDownloads[0].requests, 2);
      assert.deepEqual(a.cached(), [m.b.sha256]);
      assert.deepEqual(a.partials(), []);
      assert.equal(h.modelCache.models[0].pinned, true);
      // Metrics carry cache use; a swap back to a cached model fetches nothing.
      assert.match(await (await a.call('GET', '/metrics')).text(), new RegExp(`drydock_model_cache_bytes ${size}`));
      const before = server.requests.length;
      assert.equal((await a.call('PUT', '/model', { uri, sha256: m.b.sha256 })).status, 200);
      assert.equal(server.requests.length, before);
    } finally {
      await a.close();
    }
  });

  it('refuses every bad source with a 4xx naming it, keeps nothing partial, and keeps serving the old model', async () => {
    const a = await startAgent(join(dir, 'bad'));
    try {
      assert.equal((await a.call('PUT', '/model', { uri: `${server.base}/models/a.gguf`, sha256: m.a.sha256 })).status, 200);
      server.put('/models/short.gguf', m.c.bytes, { truncateAt: 100_000 });
      const outside = mkdtempSync(join(tmpdir(), 'agent-models-outside-'));
      const fifo = join(outside, 'secret');
      execFileSync('mkfifo', [fifo]); // opening it would block: a 403 that came back proves it was not opened
      symlinkSync(fifo, join(dir, 'bad', 'root', 'link.gguf'));
      const sha = m.d.sha256;
      const cases: [string, string, number, RegExp][] = [
        ['unknown scheme', 'ftp://host/m.gguf', 400, /^uri: unsupported scheme 'ftp:'; expected s3:\/\/bucket\/key/],
        ['malformed s3', 's3://Bad_Bucket/m.gguf', 400, /^uri: 'Bad_Bucket' is not an S3 bucket name/],
        ['404', `${server.base}/models/none.gguf`, 404, /^uri: http:\/\/127\.0\.0\.1:\d+\/models\/none\.gguf answered 404/],
        ['redirect loop', `${server.base}/loop/a`, 400, /^uri: redirect loop: .*\/loop\/a redirects back to itself/],
        ['truncated file', `${server.base}/models/short.gguf`, 422, /^uri: download truncated: .* ended at 100000 of \d+ bytes 5 times in a row/],
        ['sha256 mismatch after download', `${server.base}/models/c.gguf`, 409, new RegExp(`^sha256: .* downloaded with sha256 ${m.c.sha256}, expected ${sha}; the download was discarded`)],
        ['path outside the roots', fifo, 403, /^uri: .*secret is outside the agent's model roots .*; the agent does not open it/],
        ['link out of the roots', join(dir, 'bad', 'root', 'link.gguf'), 403, /^uri: .*link\.gguf \(a link to .*secret\) is outside the agent's model roots/],
        ['/etc/shadow', '/etc/shadow', 403, /^uri: \/etc\/shadow is outside the agent's model roots/],
        ['missing file in a root', join(dir, 'bad', 'root', 'none.gguf'), 404, /^uri: no file at/],
      ];
      for (const [what, uri, status, re] of cases) {
        const sent = what === 'truncated file' ? m.c.sha256 : sha;
        const res = await a.call('PUT', '/model', { uri, sha256: sent });
        const body = (await res.json()) as { error: string };
        assert.equal(res.status, status, `${what}: ${body.error}`);
        assert.match(body.error, re, what);
        assert.match(body.error, new RegExp(`still serving ${m.a.sha256}\\)$`), what);
        if (what.includes('outside') || what.includes('link') || what.includes('shadow')) assert.doesNotMatch(body.error.replace(m.a.sha256, '').replace(sha, ''), /[0-9a-f]{64}/, `${what}: no hash reported`);
      }
      // Prefetch reports the same failures (in its status: it runs in the background).
      const pf = await a.prefetched(`${server.base}/models/c.gguf`, sha);
      assert.equal(pf.state, 'failed');
      assert.equal(pf.status, 409);
      assert.equal((await a.call('POST', '/model/prefetch', { uri: fifo, sha256: sha })).status, 403);
      assert.equal((await a.call('POST', '/model/prefetch', { uri: 'gopher://x/y', sha256: sha })).status, 400);
      // Nothing partial or unverified is in the cache; the old model serves on.
      assert.deepEqual(a.cached(), [m.a.sha256]);
      assert.ok(!existsSync(join(dir, 'bad', 'data', 'models', sha)));
      assert.deepEqual(a.partials().filter((f) => f.startsWith(sha)), []);
      const h = await a.json('GET', '/health');
      assert.equal(h.model.sha256, m.a.sha256);
      assert.equal((await a.call('GET', '/ready')).status, 200);
      assert.equal((await a.call('POST', '/v1/completions', { prompt: 'still here', max_tokens: 2 })).status, 200);
      rmSync(outside, { recursive: true, force: true });
    } finally {
      await a.close();
    }
  });

  it('refuses a model the disk has no room for (the cache quota) before its first byte, and changes nothing', async () => {
    const root = join(dir, 'full', 'root');
    const local = writeTinyLlama(join(root, 'local.gguf'), { seed: 21 });
    const a = await startAgent(join(dir, 'full'), ['--model-cache-bytes', String(Math.floor(size / 2)), '--model', local.path, '--model-sha256', local.sha256]);
    try {
      await a.agent.started;
      const res = await a.call('PUT', '/model', { uri: `${server.base}/models/e.gguf`, sha256: m.e.sha256 });
      const body = (await res.json()) as { error: string };
      assert.equal(res.status, 413, body.error);
      assert.match(body.error, /^disk: .*e\.gguf \(.*\) needs .* but the cache's quota \(--model-cache-bytes \d+\) leaves .*; nothing was downloaded/);
      assert.deepEqual(a.cached(), []);
      assert.deepEqual(a.partials(), [], 'not a byte written');
      assert.equal((await a.json('GET', '/health')).model.sha256, local.sha256);
      assert.equal((await a.call('GET', '/ready')).status, 200);
    } finally {
      await a.close();
    }
  });

  it('evicts the least recently used model, never the served one', async () => {
    const a = await startAgent(join(dir, 'lru'), ['--model-cache-bytes', String(Math.floor(size * 3.5))]);
    const uri = (k: string) => `${server.base}/models/${k}.gguf`;
    try {
      assert.equal((await a.call('PUT', '/model', { uri: uri('a'), sha256: m.a.sha256 })).status, 200);
      assert.equal((await a.prefetched(uri('b'), m.b.sha256)).state, 'done');
      assert.equal((await a.prefetched(uri('c'), m.c.sha256)).state, 'done');
      // B is loaded from the cache: A is no longer served and is now the least recently used.
      assert.equal((await a.call('PUT', '/model', { uri: uri('b'), sha256: m.b.sha256 })).status, 200);
      assert.equal((await a.prefetched(uri('d'), m.d.sha256)).state, 'done');
      assert.deepEqual(a.cached(), [m.b.sha256, m.c.sha256, m.d.sha256].sort(), 'A (least recently used) evicted; B (served) kept');
      const view = (await a.json('GET', '/model/downloads')).cache;
      assert.ok(view.usedBytes <= size * 3.5);
      assert.deepEqual(view.models.filter((x: { pinned: boolean }) => x.pinned).map((x: { sha256: string }) => x.sha256).sort(), [m.b.sha256, m.d.sha256].sort());
    } finally {
      await a.close();
    }
  });

  it('never evicts the served or the desired (prefetched) model: a load that needs their room is refused', async () => {
    const a = await startAgent(join(dir, 'pinned'), ['--model-cache-bytes', String(Math.floor(size * 2.5))]);
    const uri = (k: string) => `${server.base}/models/${k}.gguf`;
    try {
      assert.equal((await a.call('PUT', '/model', { uri: uri('a'), sha256: m.a.sha256 })).status, 200);
      assert.equal((await a.prefetched(uri('b'), m.b.sha256)).state, 'done');
      const res = await a.call('PUT', '/model', { uri: uri('c'), sha256: m.c.sha256 });
      const body = (await res.json()) as { error: string };
      assert.equal(res.status, 413, body.error);
      assert.match(body.error, /^disk: .* evicting every model not served or wanted frees only 0 bytes; nothing was downloaded/);
      assert.deepEqual(a.cached(), [m.a.sha256, m.b.sha256].sort());
      assert.equal((await a.json('GET', '/health')).model.sha256, m.a.sha256);
    } finally {
      await a.close();
    }
  });

  it('writes model headers only to the URL prefixes they are for', async () => {
    const headers = join(dir, 'headers.json');
    writeFileSync(headers, JSON.stringify({ [`${server.base}/models/`]: { authorization: 'Bearer store-secret' }, 'https://elsewhere.example/': { 'x-other': '1' } }));
    const a = await startAgent(join(dir, 'headers'), ['--model-headers', headers]);
    try {
      assert.equal((await a.call('PUT', '/model', { uri: `${server.base}/models/e.gguf`, sha256: m.e.sha256 })).status, 200);
      const r = server.requests.filter((x) => x.path === '/models/e.gguf').at(-1)!;
      assert.equal(r.headers.authorization, 'Bearer store-secret');
      assert.equal(r.headers['x-other'], undefined);
      await a.call('PUT', '/model', { uri: `${server.base}/loop/a`, sha256: m.e.sha256 });
      assert.ok(server.requests.filter((x) => x.path.startsWith('/loop/')).every((x) => x.headers.authorization === undefined));
    } finally {
      await a.close();
    }
  });
});

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { loadMetricsConfig } from '../../workers/metrics.ts';
import { freePort } from '../helpers/moto.ts';

/** A misconfigured worker refuses to start with exit 2 and names the setting, before reaching Temporal. */
describe('control worker settings for encryption and metrics', () => {
  let dir: string;
  let poolsFile: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'drydock-worker-config-'));
    poolsFile = join(dir, 'pools.yaml');
    writeFileSync(poolsFile, JSON.stringify({ pools: [{ name: 'cfg', instanceType: 'sim', provider: { type: 'local', stateDir: join(dir, 'state') } }] }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function startWorker(env: Record<string, string>): Promise<{ code: number; output: string }> {
    const { NODE_TEST_CONTEXT: _, ...base } = process.env;
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', join(REPO_ROOT, 'workers/control.ts')],
        {
          cwd: REPO_ROOT,
          timeout: 60_000,
          // Nothing listens on this address: a worker that got past its settings would fail differently.
          env: { ...base, TEMPORAL_ADDRESS: `127.0.0.1:${env.PORT}`, DRYDOCK_POOLS_FILE: poolsFile, DRYDOCK_AGENT_KEY: 'a'.repeat(32), ...env },
        },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
      );
    });
  }

  it('parses DRYDOCK_METRICS_ADDRESS, off when unset', () => {
    assert.equal(loadMetricsConfig({}), undefined);
    assert.deepEqual(loadMetricsConfig({ DRYDOCK_METRICS_ADDRESS: '0.0.0.0:9464' }), { host: '0.0.0.0', port: 9464 });
    assert.deepEqual(loadMetricsConfig({ DRYDOCK_METRICS_ADDRESS: '::1:9464' }), { host: '::1', port: 9464 });
    assert.throws(() => loadMetricsConfig({ DRYDOCK_METRICS_ADDRESS: '9464' }), /DRYDOCK_METRICS_ADDRESS: expected host:port/);
    assert.throws(() => loadMetricsConfig({ DRYDOCK_METRICS_ADDRESS: 'host:99999' }), /DRYDOCK_METRICS_ADDRESS/);
  });

  it('a malformed codec key stops the worker with exit 2, naming the variable and how to make a key', async () => {
    const r = await startWorker({ PORT: String(await freePort()), DRYDOCK_CODEC_KEY: 'v1:not-a-key' });
    assert.equal(r.code, 2, r.output);
    assert.match(r.output, /control worker: DRYDOCK_CODEC_KEY: each key must be 32 bytes in base64 \('openssl rand -base64 32'\)/);
  });

  it('a metrics port already in use stops the worker with exit 2', async () => {
    const port = await freePort();
    const { createServer } = await import('node:net');
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(port, '127.0.0.1', r));
    try {
      const r = await startWorker({ PORT: String(await freePort()), DRYDOCK_METRICS_ADDRESS: `127.0.0.1:${port}` });
      assert.equal(r.code, 2, r.output);
      assert.match(r.output, new RegExp(`control worker: DRYDOCK_METRICS_ADDRESS: cannot listen on 127\\.0\\.0\\.1:${port}`));
    } finally {
      busy.close();
    }
  });
});

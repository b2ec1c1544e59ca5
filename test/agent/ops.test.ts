import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { after, before, describe, it } from 'node:test';
import { AgentConfigError, loadAgentConfig } from '../../gpu-agent/config.ts';
import { createAgent, type Agent } from '../../gpu-agent/server.ts';

const TOKEN = 'ops-test-token-0123456789abcdef';
const ENV = { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN, DRYDOCK_AGENT_ALLOW_FAULT_INJECTION: '1' };

async function listen(agent: Agent): Promise<number> {
  await new Promise<void>((r) => agent.server.listen(0, '127.0.0.1', r));
  return (agent.server.address() as AddressInfo).port;
}

describe('gpu-agent operations: TLS, metrics, kernel log, flags', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'agent-ops-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('serves HTTPS from a cert and key file, with bearer auth on everything but /livez', async (t) => {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const agent = createAgent(loadAgentConfig(['--gpus', '2', '--tls-cert', cert, '--tls-key', key], ENV));
    t.after(() => agent.close());
    const port = await listen(agent);
    const get = (path: string, token?: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path, ca: readFileSync(cert), headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
    assert.equal((await get('/livez')).status, 200);
    assert.equal((await get('/health')).status, 401);
    const h = await get('/health', TOKEN);
    assert.equal(h.status, 200);
    assert.equal(JSON.parse(h.body).gpus.length, 2);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/livez`)); // no plain HTTP on a TLS port
  });

  it('exports Prometheus metrics for GPUs, health, XIDs, slots and request latency', async (t) => {
    const agent = createAgent(loadAgentConfig(['--gpus', '2'], ENV));
    t.after(() => agent.close());
    const base = `http://127.0.0.1:${await listen(agent)}`;
    const post = (path: string, body: unknown) => fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(body) });
    await post('/sim/faults', { kind: 'xid', gpu: 1, code: 13 });
    await post('/sim/faults', { kind: 'temperature', gpu: 0, celsius: 96 });
    assert.equal((await fetch(`${base}/metrics`)).status, 401);
    const text = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    for (const re of [
      /^drydock_gpu_temperature_celsius\{gpu="0",uuid="GPU-[^"]+"\} 96$/m,
      /^drydock_gpu_xid_events_total\{gpu="1",code="13"\} 1$/m,
      /^drydock_gpu_health_status\{gpu="0",uuid="[^"]+"\} 2$/m,
      /^drydock_gpu_health_status\{gpu="1",uuid="[^"]+"\} 1$/m,
      /^drydock_node_health_status 2$/m,
      /^drydock_gpu_power_watts\{/m,
      /^drydock_gpu_memory_total_bytes\{gpu="1",uuid="[^"]+"\} 85520809984$/m,
      /^drydock_slots_total 0$/m,
      /^drydock_queue_depth 0$/m,
      /^drydock_tokens_generated_total 0$/m,
      /^drydock_request_duration_seconds_bucket\{le="0.005",route="POST \/sim\/faults",status="200"\}/m,
    ]) assert.match(text, re);
  });

  it('simulates throttling and a hung nvidia-smi; follows a kernel log file for the simulated GPUs too', async (t) => {
    const log = join(dir, 'kern.log');
    writeFileSync(log, '');
    const agent = createAgent(loadAgentConfig(['--gpus', '2', '--kernel-log', `file:${log}`], ENV));
    t.after(() => agent.close());
    const base = `http://127.0.0.1:${await listen(agent)}`;
    const call = async (method: string, path: string, body?: unknown) =>
      (await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` }, body: body === undefined ? undefined : JSON.stringify(body) })).json();
    const throttled = await call('POST', '/sim/faults', { kind: 'throttle', gpu: 1, reasons: ['hw_power_brake_slowdown'] });
    assert.equal(throttled.status, 'degraded');
    assert.match(throttled.reasons.join(), /gpu 1: clocks throttled: hw_power_brake_slowdown/);
    const hung = await call('POST', '/sim/faults', { kind: 'smi-hang' });
    assert.equal(hung.status, 'unhealthy');
    assert.match(hung.reasons[0], /timed out/);
    await call('POST', '/sim/faults/clear', {});
    // Simulated GPU 1 sits at PCI 00000000:28:00.0.
    appendFileSync(log, '[ 77.7] NVRM: Xid (PCI:0000:28:00): 94, pid=9, name=x, Contained: SM (0x1). RST: No, D-RST: No\n');
    let h = await call('GET', '/health');
    await waitFor(async () => (h = await call('GET', '/health')).recentXids.length > 0, 10_000, 'the XID to be read');
    assert.equal(h.kernelLog, `file:${log}`);
    assert.equal(h.gpus[1].status, 'unhealthy');
    assert.match(h.reasons.join(), /gpu 1: xid 94 \(fatal\)/);
    assert.equal(h.xidCounts[0].count, 1);
  });

  it('validates flags at start and names what to fix', () => {
    const bad = (argv: string[], re: RegExp, env: NodeJS.ProcessEnv = ENV) =>
      assert.throws(() => loadAgentConfig(argv, env), (e: Error) => e instanceof AgentConfigError && re.test(e.message), argv.join(' '));
    bad(['--gpu-backend', 'tpu'], /^--gpu-backend: expected auto, nvidia or simulated/);
    bad(['--model', '/x.gguf'], /^--model-sha256: expected the model file's sha256/);
    bad(['--model-sha256', 'a'.repeat(64)], /^--model: --model-sha256 was given without --model/);
    bad(['--model', join(dir, 'none.gguf'), '--model-sha256', 'a'.repeat(64)], /^--model: no file at/);
    bad(['--model', 's3://bucket/m.gguf', '--model-sha256', 'a'.repeat(64)], /^--model: downloading s3:\/\/bucket\/m\.gguf needs --data-dir/);
    bad(['--model', 'ftp://host/m.gguf', '--model-sha256', 'a'.repeat(64)], /^--model: unsupported scheme 'ftp:'; expected s3:\/\/bucket\/key, https:/);
    bad(['--model-dir', 's3://bucket/models'], /^--model-dir: expected a folder path/);
    bad(['--model-cache-bytes', 'lots'], /^--model-cache-bytes: expected an integer >= 0/);
    bad(['--model-headers', join(dir, 'no-headers.json')], /^--model-headers: cannot read/);
    bad(['--tls-cert', '/x.pem'], /^--tls-cert\/--tls-key: give both/);
    bad(['--tls-cert', join(dir, 'no.pem'), '--tls-key', join(dir, 'no.pem')], /^--tls-cert: cannot read/);
    bad(['--kernel-log', 'dmesg'], /^--kernel-log: expected auto, kmsg, journal, none or file:PATH/);
    bad(['--slots', '0'], /^--slots: expected an integer >= 1/);
    bad(['--queue-timeout-ms', 'soon'], /^--queue-timeout-ms:/);
    const policy = join(dir, 'bad-policy.yaml');
    writeFileSync(policy, 'version: v1\nthermal:\n  degradedC: hot\n');
    bad(['--policy', policy], /^--policy .*: thermal\.degradedC: expected a number/);
    writeFileSync(policy, 'version: strict-1\nthermal:\n  degradedC: 70\n');
    const c = loadAgentConfig(['--policy', policy, '--bind', '0.0.0.0', '--gpu-backend', 'simulated'], ENV);
    assert.equal(c.policy.version, 'strict-1');
    assert.equal(c.host, '0.0.0.0');
  });
});

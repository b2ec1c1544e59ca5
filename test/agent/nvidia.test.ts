import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';

const TOKEN = 'nvidia-test-token-0123456789';
const SMI = join(REPO_ROOT, 'test/fixtures/nvidia-smi');

/** The real agent process, finding a fake nvidia-smi on PATH and following a kernel log file. */
describe('gpu-agent with the nvidia backend over a fake nvidia-smi', () => {
  let dir: string;
  let agent: ChildProcess;
  let base: string;
  const kernLog = () => join(dir, 'kern.log');
  const get = async (path: string) => {
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return path === '/metrics' ? res.text() : res.json();
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agent-nvidia-'));
    copyFileSync(join(SMI, '8xh100-ecc-throttle.csv'), join(dir, 'query.csv'));
    writeFileSync(kernLog(), 'Nov 23 04:00:00 node kernel: [1.0] NVRM: Xid (PCI:0000:18:00): 79, pid=1, name=old, before the agent started.\n');
    agent = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'gpu-agent/main.ts'), '--node-id', 'gpu-node-7', '--pool', 'p', '--port', '0',
      '--data-dir', join(dir, 'data'), '--kernel-log', `file:${kernLog()}`, '--smi-timeout-ms', '1500'], {
      cwd: REPO_ROOT,
      env: { ...process.env, PATH: `${join(SMI, 'bin')}:${process.env.PATH}`, FAKE_NVIDIA_SMI_DIR: dir, DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const agentJson = join(dir, 'data', 'agent.json');
    await waitFor(() => existsSync(agentJson), 30_000, 'the agent to write agent.json');
    const { port } = JSON.parse(readFileSync(agentJson, 'utf8')) as { port: number };
    base = `http://127.0.0.1:${port}`;
  });
  after(() => {
    agent?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('picks the nvidia backend by itself and judges each GPU from nvidia-smi telemetry', async () => {
    let h = await get('/health');
    await waitFor(async () => !!(h = await get('/health')).llama, 30_000, 'llama.cpp for the cross-check to load');
    assert.equal(h.backend, 'nvidia');
    assert.equal(h.gpus.length, 8);
    assert.equal(h.expectedGpus, 8);
    assert.equal(h.status, 'unhealthy');
    assert.deepEqual(h.gpus.map((g: { status: string }) => g.status), ['healthy', 'healthy', 'unhealthy', 'degraded', 'healthy', 'healthy', 'healthy', 'healthy']);
    assert.match(h.reasons.join('\n'), /gpu 2: 2 uncorrected ECC errors/);
    assert.match(h.reasons.join('\n'), /gpu 3: clocks throttled: hw_thermal_slowdown/);
    assert.equal(h.recentXids.length, 0, 'lines already in the log file before start are history');
    // node-llama-cpp's own view is the cross-check: a CPU-only build beside listed GPUs is called out.
    assert.ok(h.llama && 'gpu' in h.llama, JSON.stringify(h.llama));
    if (h.llama.gpu === false) assert.match(h.reasons.join('\n'), /node-llama-cpp found no usable GPU backend although nvidia-smi lists 8 GPUs/);
  });

  it('maps an XID from the kernel log to its GPU by PCI bus id', async () => {
    appendFileSync(kernLog(), 'Nov 23 06:00:00 node kernel: [9.0] NVRM: Xid (PCI:0000:18:00): 79, pid=0, name=python, GPU has fallen off the bus.\n');
    appendFileSync(kernLog(), 'Nov 23 06:00:01 node kernel: [9.1] NVRM: Xid (PCI:0000:ab:00): 13, pid=7, name=python, Graphics SM Warp Exception\n');
    let h = await get('/health');
    await waitFor(async () => (h = await get('/health')).recentXids.length === 2, 10_000, 'both XIDs to be read');
    assert.deepEqual(h.recentXids.map((x: { gpuIndex: number; code: number }) => [x.gpuIndex, x.code]), [[0, 79], [5, 13]]);
    assert.equal(h.gpus[0].status, 'unhealthy');
    assert.equal(h.gpus[5].status, 'degraded');
    assert.match(h.reasons.join('\n'), /gpu 0: xid 79 \(fatal\): pid=0, name=python, GPU has fallen off the bus/);
    const metrics = await get('/metrics');
    assert.match(metrics, /drydock_gpu_xid_events_total\{gpu="0",code="79"\} 1/);
    assert.match(metrics, /drydock_gpu_temperature_celsius\{gpu="3",uuid="GPU-1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b"\} 88/);
    assert.match(metrics, /drydock_gpu_ecc_errors\{gpu="2",uuid="[^"]+",type="uncorrected"\} 2/);
    assert.match(metrics, /drydock_gpu_health_status\{gpu="2",uuid="[^"]+"\} 2/);
    assert.match(metrics, /drydock_node_health_status 2/);
  });

  it('a GPU missing from nvidia-smi, a failing nvidia-smi and a hung one each make the node unhealthy', async () => {
    const csv = readFileSync(join(dir, 'query.csv'), 'utf8').trim().split('\n');
    writeFileSync(join(dir, 'query.csv'), `${csv.slice(0, 7).join('\n')}\n`);
    assert.match((await get('/health')).reasons[0], /expected 8 GPUs, found 7/);
    writeFileSync(join(dir, 'mode'), 'fail');
    assert.match((await get('/health')).reasons[0], /gpu backend nvidia failed: nvidia-smi exited with 255/);
    writeFileSync(join(dir, 'mode'), 'hang');
    const hung = await get('/health');
    assert.equal(hung.status, 'unhealthy');
    assert.match(hung.reasons[0], /nvidia-smi timed out after 1500 ms/);
    assert.equal((await fetch(`${base}/ready`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 503);
    writeFileSync(join(dir, 'mode'), 'ok');
  });
});

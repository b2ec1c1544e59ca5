import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { evaluateHealth } from '../../gpu-agent/health.ts';
import { DEFAULT_HEALTH_POLICY, loadPolicyFile, parsePolicy, PolicyError } from '../../gpu-agent/policy.ts';
import { SimulatedGpuBackend } from '../../gpu-agent/gpu/simulated.ts';
import type { GpuInfo, XidEvent } from '../../gpu-agent/gpu/types.ts';

const NOW = Date.parse('2026-11-23T06:00:00Z');

async function gpus(n = 2): Promise<GpuInfo[]> {
  return (await new SimulatedGpuBackend(n, 'policy-test').snapshot()).gpus;
}
const xid = (gpuIndex: number, code: number, secondsAgo = 10): XidEvent => ({
  gpuIndex,
  pciBusId: 'x',
  code,
  message: `Xid ${code}`,
  at: new Date(NOW - secondsAgo * 1000).toISOString(),
});
const judge = async (events: XidEvent[], edit: (g: GpuInfo[]) => void = () => {}, policy = DEFAULT_HEALTH_POLICY) => {
  const g = await gpus();
  edit(g);
  return evaluateHealth({ backend: 'simulated', gpus: g }, events, 2, policy, NOW);
};

describe('health policy', () => {
  it('fatal XIDs (Navarch and EKS lists) make a GPU unhealthy, however old', async () => {
    for (const code of [79, 48, 94, 119, 155]) {
      const v = await judge([xid(1, code, 86_400)]);
      assert.equal(v.status, 'unhealthy', `xid ${code}`);
      assert.equal(v.gpus[1].status, 'unhealthy');
      assert.equal(v.gpus[0].status, 'healthy');
    }
  });

  it('degraded XIDs degrade within the window, expire after it, and escalate when repeated', async () => {
    assert.equal((await judge([xid(0, 13)])).status, 'degraded');
    assert.equal((await judge([xid(0, 109, 7200)])).status, 'healthy'); // outside the 1 h window
    const repeated = await judge([xid(0, 31, 50), xid(0, 13, 40), xid(0, 31, 30)]);
    assert.equal(repeated.gpus[0].status, 'unhealthy');
    assert.match(repeated.reasons.join(), /3 degraded XIDs within 3600 s/);
    // Repeats on different GPUs do not add up.
    assert.equal((await judge([xid(0, 13), xid(1, 13)])).status, 'degraded');
  });

  it('ignored XIDs are not held against the GPU; unknown codes count as degraded by default', async () => {
    assert.equal((await judge([xid(0, 43), xid(0, 45), xid(0, 43)])).status, 'healthy');
    assert.equal((await judge([xid(0, 999)])).status, 'degraded');
  });

  it('thermal: degraded from 85 C, unhealthy from 95 C', async () => {
    assert.equal((await judge([], (g) => (g[0].temperatureC = 84))).status, 'healthy');
    assert.equal((await judge([], (g) => (g[0].temperatureC = 85))).status, 'degraded');
    assert.equal((await judge([], (g) => (g[0].temperatureC = 95))).status, 'unhealthy');
  });

  it('ECC: any uncorrected error is unhealthy; corrected errors above the threshold are degraded', async () => {
    assert.equal((await judge([], (g) => (g[1].eccUncorrected = 1))).status, 'unhealthy');
    assert.equal((await judge([], (g) => (g[1].eccCorrected = 100))).status, 'healthy');
    assert.equal((await judge([], (g) => (g[1].eccCorrected = 101))).status, 'degraded');
  });

  it('throttling, pending memory repair and remap failure', async () => {
    assert.equal((await judge([], (g) => (g[0].throttleReasons = ['sw_power_cap']))).status, 'healthy');
    assert.equal((await judge([], (g) => (g[0].throttleReasons = ['hw_slowdown']))).status, 'degraded');
    assert.equal((await judge([], (g) => (g[0].remappedRows = { correctable: 0, uncorrectable: 1, pending: true, failure: false }))).status, 'degraded');
    assert.equal((await judge([], (g) => (g[0].remappedRows = { correctable: 0, uncorrectable: 1, pending: false, failure: true }))).status, 'unhealthy');
  });

  it('fewer GPUs than expected, or a failed backend, is unhealthy', async () => {
    const g = await gpus(1);
    assert.match(evaluateHealth({ backend: 'nvidia', gpus: g }, [], 2).reasons.join(), /expected 2 GPUs, found 1/);
    const failed = evaluateHealth({ backend: 'nvidia', gpus: [], error: 'nvidia-smi timed out after 5000 ms' }, [], 2);
    assert.equal(failed.status, 'unhealthy');
    assert.match(failed.reasons[0], /timed out/);
    // An XID for a bus id no GPU has (one that fell off the bus) still counts against the node.
    assert.equal(evaluateHealth({ backend: 'nvidia', gpus: await gpus(2) }, [xid(-1, 79)], 2).status, 'unhealthy');
  });

  it('loads a versioned policy file that overrides any subset, and rejects bad documents naming the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'policy-'));
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, 'version: site-2026-11\nthermal:\n  degradedC: 80\nxid:\n  fatal: [79, 48]\n  degraded: [13]\n  ignored: [43, 45, 31]\n  escalateAfter: 2\n');
    const p = loadPolicyFile(file);
    assert.equal(p.version, 'site-2026-11');
    assert.equal(p.thermal.degradedC, 80);
    assert.equal(p.thermal.unhealthyC, 95); // default kept
    assert.deepEqual(p.xid.ignored, [43, 45, 31]);
    assert.throws(() => parsePolicy({ thermal: {} }), /version: a policy document must name its version/);
    assert.throws(() => parsePolicy({ version: 'x', thermal: { hotC: 1 } }), /thermal\.hotC: unknown policy field/);
    assert.throws(() => parsePolicy({ version: 'x', xid: { fatal: [13], degraded: [13] } }), /xid\.degraded: code 13 is also listed in xid\.fatal/);
    assert.throws(() => parsePolicy({ version: 'x', xid: { fatal: ['79'] } }), /xid\.fatal\[0\]: expected a positive integer/);
    assert.throws(() => parsePolicy({ version: 'x', thermal: { degradedC: 99 } }), PolicyError);
    writeFileSync(file, 'version: [');
    assert.throws(() => loadPolicyFile(file), /not valid YAML/);
  });

  it('every default class is disjoint and the anchors\' disputed codes have a decision', () => {
    const p = parsePolicy(DEFAULT_HEALTH_POLICY); // would throw on overlaps
    for (const code of [13, 31, 32, 43, 45, 68, 92, 94, 109]) {
      assert.ok([...p.xid.fatal, ...p.xid.degraded, ...p.xid.ignored].includes(code), `xid ${code} has no class`);
    }
  });
});

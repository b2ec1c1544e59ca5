import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { evaluateHealth } from '../../gpu-agent/health.ts';
import { decodeThrottleReasons, parseQueryGpuCsv, QUERY_FIELDS } from '../../gpu-agent/gpu/nvidiaSmi.ts';
import { NvidiaGpuBackend } from '../../gpu-agent/gpu/nvidia.ts';
import { normalizePciBusId } from '../../gpu-agent/gpu/types.ts';
import { parseXidLine, XidLog } from '../../gpu-agent/gpu/xid.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';

const SMI = join(REPO_ROOT, 'test/fixtures/nvidia-smi');
const KLOG = join(REPO_ROOT, 'test/fixtures/kernel-log');
const read = (p: string) => readFileSync(p, 'utf8');

describe('nvidia-smi parsing', () => {
  it('parses the real H100 capture, with [N/A] retired pages and row remapping counters', () => {
    const [g] = parseQueryGpuCsv(read(join(SMI, 'h100-query.csv')));
    assert.equal(g.index, 0);
    assert.equal(g.uuid, 'GPU-2be6d0a1-74f8-a8c6-211d-80f4f3708d57');
    assert.equal(g.name, 'NVIDIA H100 80GB HBM3');
    assert.equal(g.pciBusId, '00000000:00:06.0');
    assert.equal(g.memoryTotalMiB, 81559);
    assert.equal(g.powerLimitW, 700);
    assert.deepEqual(g.throttleReasons, []); // 0x1 is "idle": normal
    assert.equal(g.retiredPages, null);
    assert.deepEqual(g.remappedRows, { correctable: 0, uncorrectable: 0, pending: false, failure: false });
    // The real capture's header names the fields in the order the agent asks for them
    // (the driver prints clocks_event_reasons for the older clocks_throttle_reasons alias).
    const header = read(join(SMI, 'h100-query-header.csv')).split('\n')[0].split(', ').map((h) => h.replace(/ \[.*\]$/, ''));
    assert.deepEqual(header.map((h) => h.replace('clocks_event_reasons', 'clocks_throttle_reasons')), [...QUERY_FIELDS]);
  });

  it('the agent on the real H100 picked the nvidia backend and judged the idle GPU healthy (capture from the lent machine)', () => {
    const h = JSON.parse(read(join(SMI, 'h100-agent-health.json')));
    assert.equal(h.backend, 'nvidia');
    assert.equal(h.status, 'healthy');
    assert.equal(h.kernelLog, 'kmsg');
    // What the fake nvidia-smi prints for -L has the real one's shape (auto-detection matches on it).
    assert.match(read(join(SMI, 'h100-L.txt')), /^GPU 0: NVIDIA H100 80GB HBM3 \(UUID: GPU-[0-9a-f-]+\)$/m);
    assert.equal(normalizePciBusId(h.gpus[0].pciBusId), '0000:00:06');
    // A test XID line written to the real /dev/kmsg there came back mapped to GPU 0 by its bus id.
    const [x] = JSON.parse(read(join(SMI, 'h100-agent-kmsg-xid.json')));
    assert.deepEqual([x.gpuIndex, x.code, x.pciBusId], [0, 43, '0000:00:06']);
    // The kmsg line itself parses the same here.
    assert.equal(parseXidLine(`4,9,100,-;NVRM: Xid (PCI:0000:00:06): 43, ${x.message}`)?.message, x.message);
  });

  it('parses 8 GPUs with an ECC error, a pending row remap, a throttled hot GPU and unsupported counters', () => {
    const gpus = parseQueryGpuCsv(read(join(SMI, '8xh100-ecc-throttle.csv')));
    assert.equal(gpus.length, 8);
    assert.equal(gpus[2].eccUncorrected, 2);
    assert.equal(gpus[2].eccUncorrectedAggregate, 2);
    assert.equal(gpus[2].remappedRows?.pending, true);
    assert.deepEqual(gpus[3].throttleReasons, ['sw_power_cap', 'hw_thermal_slowdown']);
    assert.equal(gpus[3].temperatureC, 88);
    assert.equal(gpus[7].eccCorrectedAggregate, null);
    assert.equal(gpus[7].remappedRows, null);

    const v = evaluateHealth({ backend: 'nvidia', gpus }, [], 8);
    assert.equal(v.status, 'unhealthy');
    assert.deepEqual(v.gpus.map((g) => g.status), ['healthy', 'healthy', 'unhealthy', 'degraded', 'healthy', 'healthy', 'healthy', 'healthy']);
    assert.match(v.gpus[2].reasons.join(), /2 uncorrected ECC errors/);
    assert.match(v.gpus[2].reasons.join(), /row remap pending/);
    assert.match(v.gpus[3].reasons.join(), /temperature 88 C >= 85 C/);
    assert.match(v.gpus[3].reasons.join(), /clocks throttled: hw_thermal_slowdown/);
  });

  it('parses the core field set of drivers without row remapping, and names a malformed line', () => {
    const gpus = parseQueryGpuCsv(read(join(SMI, '2xa100-old-driver-core.csv')));
    assert.equal(gpus.length, 2);
    assert.equal(gpus[1].pciBusId, '00000000:0F:00.0');
    assert.equal(gpus[1].remappedRows, null);
    assert.throws(() => parseQueryGpuCsv('0, GPU-x, name\n'), /line 1: expected 22 fields, got 3/);
    assert.deepEqual(decodeThrottleReasons('0x0000000000000088'), ['hw_slowdown', 'hw_power_brake_slowdown']);
    assert.deepEqual(decodeThrottleReasons('[N/A]'), []);
  });

  it('the nvidia backend runs nvidia-smi, falls back on old drivers, and reports failures and hangs as errors', async (t) => {
    const { mkdtempSync, writeFileSync, copyFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'fake-smi-'));
    process.env.FAKE_NVIDIA_SMI_DIR = dir;
    t.after(() => delete process.env.FAKE_NVIDIA_SMI_DIR);
    const bin = join(SMI, 'bin/nvidia-smi');
    copyFileSync(join(SMI, '2xa100-old-driver-core.csv'), join(dir, 'query.csv'));
    writeFileSync(join(dir, 'mode'), 'old-driver');
    const backend = new NvidiaGpuBackend(bin, 2000);
    const old = await backend.snapshot();
    assert.equal(old.error, undefined);
    assert.equal(old.gpus.length, 2);
    writeFileSync(join(dir, 'mode'), 'fail');
    assert.match((await backend.snapshot()).error ?? '', /exited with 255: Unable to determine the device handle/);
    writeFileSync(join(dir, 'mode'), 'hang');
    const hung = await new NvidiaGpuBackend(bin, 300).snapshot();
    assert.match(hung.error ?? '', /timed out after 300 ms/);
    assert.match((await new NvidiaGpuBackend(join(dir, 'absent'), 300).snapshot()).error ?? '', /not found/);
  });
});

describe('kernel log XIDs', () => {
  it('parses syslog, /dev/kmsg and journalctl lines and skips the rest', () => {
    const syslog = read(join(KLOG, 'kern.log')).split('\n').map((l) => parseXidLine(l)).filter((x) => x !== undefined);
    assert.deepEqual(syslog.map((x) => [x.pciBusId, x.code]), [['0000:3a:00', 48], ['0000:3a:00', 63], ['0000:2a:00', 13], ['0000:db:00', 79]]);
    assert.match(syslog[0].message, /^pid=23113, name=python3, An uncorrectable double bit error/);
    const boot = Date.parse('2026-11-23T04:00:00Z');
    const kmsg = read(join(KLOG, 'kmsg.txt')).split('\n').map((l) => parseXidLine(l, boot)).filter((x) => x !== undefined);
    assert.deepEqual(kmsg.map((x) => x.code), [31, 79]);
    assert.equal(kmsg[1].at, new Date(boot + 5722100).toISOString()); // microseconds since boot
    const journal = read(join(KLOG, 'journal-short-iso.txt')).split('\n').map((l) => parseXidLine(l)).filter((x) => x !== undefined);
    assert.deepEqual(journal.map((x) => [x.code, x.at]), [[109, '2026-11-23T05:02:17.000Z'], [43, '2026-11-23T05:02:18.000Z']]);
  });

  it('maps kernel and nvidia-smi PCI ids to one form', () => {
    assert.equal(normalizePciBusId('00000000:3A:00.0'), '0000:3a:00');
    assert.equal(normalizePciBusId('PCI:0000:3a:00'), '0000:3a:00');
    assert.equal(normalizePciBusId('0001:B1:00.0'), '0001:b1:00');
  });

  it('keeps a bounded buffer of recent events and counts every event by GPU and code', () => {
    const log = new XidLog(3);
    for (let i = 0; i < 5; i++) log.record({ gpuIndex: 1, pciBusId: '0000:2a:00', code: 13, message: `m${i}`, at: new Date(1000 * i).toISOString() });
    log.record({ gpuIndex: 0, pciBusId: '0000:18:00', code: 79, message: 'off the bus', at: new Date(9000).toISOString() });
    assert.deepEqual(log.recent().map((e) => e.message), ['m3', 'm4', 'off the bus']);
    const c13 = log.summary().find((c) => c.code === 13)!;
    assert.equal(c13.count, 5);
    assert.equal(c13.firstAt, new Date(0).toISOString());
    assert.equal(c13.lastAt, new Date(4000).toISOString());
  });

  it('a burst of minor XIDs cannot push a fatal one out of what health is judged on', () => {
    const log = new XidLog(4);
    log.record({ gpuIndex: 0, pciBusId: '0000:18:00', code: 79, message: 'off the bus', at: new Date(0).toISOString() });
    for (let i = 0; i < 10; i++) log.record({ gpuIndex: 1, pciBusId: '0000:2a:00', code: 43, message: `m${i}`, at: new Date(1000 * i).toISOString() });
    assert.ok(!log.recent().some((e) => e.code === 79));
    assert.deepEqual(log.forHealth().map((e) => e.code), [79, 43, 43, 43, 43]);
  });
});

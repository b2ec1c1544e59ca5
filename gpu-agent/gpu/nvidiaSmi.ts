import { execFile } from 'node:child_process';
import type { GpuInfo } from './types.ts';

/** The fields the agent asks nvidia-smi for, in order (`nvidia-smi --help-query-gpu` documents them). */
export const QUERY_FIELDS = [
  'index',
  'uuid',
  'name',
  'pci.bus_id',
  'temperature.gpu',
  'power.draw',
  'power.limit',
  'utilization.gpu',
  'memory.used',
  'memory.total',
  'ecc.errors.corrected.volatile.total',
  'ecc.errors.uncorrected.volatile.total',
  'ecc.errors.corrected.aggregate.total',
  'ecc.errors.uncorrected.aggregate.total',
  'clocks_throttle_reasons.active',
  'retired_pages.single_bit_ecc.count',
  'retired_pages.double_bit.count',
  'retired_pages.pending',
  'remapped_rows.correctable',
  'remapped_rows.uncorrectable',
  'remapped_rows.pending',
  'remapped_rows.failure',
] as const;

/** Older drivers lack the memory-repair fields; the agent falls back to this prefix of QUERY_FIELDS. */
export const CORE_FIELD_COUNT = 15;

// nvmlClocksEventReasons bits (nvml.h); 0x1 (idle) is normal and not reported.
const THROTTLE_BITS: [number, string][] = [
  [0x2, 'applications_clocks_setting'],
  [0x4, 'sw_power_cap'],
  [0x8, 'hw_slowdown'],
  [0x10, 'sync_boost'],
  [0x20, 'sw_thermal_slowdown'],
  [0x40, 'hw_thermal_slowdown'],
  [0x80, 'hw_power_brake_slowdown'],
  [0x100, 'display_clock_setting'],
];

export function decodeThrottleReasons(raw: string): string[] {
  if (!/^0x[0-9a-fA-F]+$/.test(raw)) return [];
  const bits = BigInt(raw);
  return THROTTLE_BITS.filter(([bit]) => (bits & BigInt(bit)) !== 0n).map(([, name]) => name);
}

/** nvidia-smi prints `[N/A]`, `N/A` or `[Not Supported]` for what a GPU cannot report. */
function maybeNum(raw: string | undefined): number | null {
  if (raw === undefined || raw === '' || raw.startsWith('[') || raw === 'N/A') return null;
  const v = Number(raw);
  return Number.isFinite(v) ? v : null;
}
const num = (raw: string | undefined): number => maybeNum(raw) ?? 0;
const yes = (raw: string | undefined): boolean => raw === 'Yes';

/** Parses `--query-gpu=QUERY_FIELDS --format=csv,noheader,nounits` output (all fields or the core prefix). */
export function parseQueryGpuCsv(text: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const [lineNo, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    // GPU names contain no commas; every field is separated by ", ".
    const f = line.split(',').map((s) => s.trim());
    if (f.length !== QUERY_FIELDS.length && f.length !== CORE_FIELD_COUNT) {
      throw new Error(`nvidia-smi output line ${lineNo + 1}: expected ${QUERY_FIELDS.length} fields, got ${f.length}: ${line.slice(0, 120)}`);
    }
    const index = Number(f[0]);
    if (!Number.isInteger(index)) throw new Error(`nvidia-smi output line ${lineNo + 1}: index '${f[0]}' is not a number`);
    const full = f.length === QUERY_FIELDS.length;
    const sbe = maybeNum(f[15]);
    const dbe = maybeNum(f[16]);
    const remapC = maybeNum(f[18]);
    const remapU = maybeNum(f[19]);
    gpus.push({
      index,
      uuid: f[1],
      name: f[2],
      pciBusId: f[3],
      temperatureC: num(f[4]),
      powerDrawW: num(f[5]),
      powerLimitW: num(f[6]),
      utilizationPct: num(f[7]),
      memoryUsedMiB: num(f[8]),
      memoryTotalMiB: num(f[9]),
      eccCorrected: num(f[10]),
      eccUncorrected: num(f[11]),
      eccCorrectedAggregate: maybeNum(f[12]),
      eccUncorrectedAggregate: maybeNum(f[13]),
      throttleReasons: decodeThrottleReasons(f[14]),
      retiredPages: full && (sbe !== null || dbe !== null) ? { singleBit: sbe ?? 0, doubleBit: dbe ?? 0, pending: yes(f[17]) } : null,
      remappedRows: full && (remapC !== null || remapU !== null) ? { correctable: remapC ?? 0, uncorrectable: remapU ?? 0, pending: yes(f[20]), failure: yes(f[21]) } : null,
    });
  }
  return gpus;
}

export class NvidiaSmiError extends Error {}

/** Runs nvidia-smi with a hard timeout (a hung driver must not hang the agent); SIGKILL because a hung one ignores SIGTERM. */
export function runNvidiaSmi(bin: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const e = err as NodeJS.ErrnoException & { killed?: boolean };
      if (e.killed) return reject(new NvidiaSmiError(`${bin} timed out after ${timeoutMs} ms`));
      if (e.code === 'ENOENT') return reject(new NvidiaSmiError(`${bin} not found`));
      const out = `${stdout}\n${stderr}`.trim().split('\n').slice(0, 3).join(' | ');
      reject(new NvidiaSmiError(`${bin} exited with ${String(e.code)}: ${out}`));
    });
  });
}

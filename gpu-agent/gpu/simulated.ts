import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { GpuBackend, GpuInfo, GpuSnapshot, XidEvent } from './types.ts';

/** A fault injected into a simulated GPU (or, for `smi-hang`, into the whole node). */
export type SimulatedFault =
  | { kind: 'xid'; gpu: number; code: number; message?: string }
  | { kind: 'temperature'; gpu: number; celsius: number }
  | { kind: 'ecc'; gpu: number; uncorrected?: number; corrected?: number }
  | { kind: 'throttle'; gpu: number; reasons: string[] }
  | { kind: 'missing'; gpu: number }
  | { kind: 'smi-hang'; gpu: number };

export const SIMULATED_FAULT_KINDS = ['xid', 'temperature', 'ecc', 'throttle', 'missing', 'smi-hang'] as const;

const IDLE_C = 41;

/** In the agent's data dir: the faults injected as persistent, applied again when the agent starts. */
export const SIMULATED_FAULTS_FILE = 'sim-faults.json';

/** N virtual GPUs with controllable telemetry and fault injection, used by the dev fleet, tests and the fleet simulator. */
export class SimulatedGpuBackend implements GpuBackend {
  readonly name = 'simulated';
  private gpus: GpuInfo[];
  private missing = new Set<number>();
  private hung = false;
  /** Faults injected as persistent, in order: kept in `faultsFile`, applied again when the agent starts. */
  private persistent: SimulatedFault[] = [];

  /**
   * `onXid` receives injected XID events (the agent's XID log, as the kernel log watcher's would).
   * `faultsFile` (in the agent's data dir) keeps persistent faults; those found there are applied
   * at once, as a fault that outlives a reboot shows again when the node comes back.
   */
  constructor(
    readonly count: number,
    seed: string,
    private readonly onXid: (e: XidEvent) => void = () => {},
    readonly faultsFile?: string,
  ) {
    this.gpus = Array.from({ length: count }, (_, i) => {
      const h = createHash('sha256').update(`${seed}/${i}`).digest('hex');
      return {
        index: i,
        uuid: `GPU-${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`,
        name: 'NVIDIA H100 80GB HBM3 (simulated)',
        pciBusId: `00000000:${(0x18 + i * 0x10).toString(16).padStart(2, '0').toUpperCase()}:00.0`,
        temperatureC: IDLE_C,
        powerDrawW: 95,
        powerLimitW: 700,
        utilizationPct: 0,
        memoryUsedMiB: 0,
        memoryTotalMiB: 81559,
        eccCorrected: 0,
        eccUncorrected: 0,
        eccCorrectedAggregate: 0,
        eccUncorrectedAggregate: 0,
        throttleReasons: [],
        retiredPages: null,
        remappedRows: { correctable: 0, uncorrectable: 0, pending: false, failure: false },
      };
    });
    if (faultsFile && existsSync(faultsFile)) {
      let stored: SimulatedFault[];
      try {
        stored = JSON.parse(readFileSync(faultsFile, 'utf8')) as SimulatedFault[];
      } catch (err) {
        throw new Error(`persistent simulated faults in ${faultsFile} are unreadable (${(err as Error).message}); delete the file to start without them`);
      }
      for (const f of stored) this.inject(f, { persistent: true });
    }
  }

  /** Applies a fault; a `persistent` one is also stored, so it comes back after the agent restarts (a reboot). */
  inject(fault: SimulatedFault, opts: { persistent?: boolean } = {}): void {
    if (opts.persistent && !this.faultsFile) throw new Error('persistent faults need the agent to run with a data dir (--data-dir), where they are kept');
    this.apply(fault);
    if (!opts.persistent) return;
    this.persistent.push(fault);
    const tmp = `${this.faultsFile!}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.persistent));
    renameSync(tmp, this.faultsFile!);
  }

  private apply(fault: SimulatedFault): void {
    const gpu = this.gpus[fault.gpu];
    if (!gpu) throw new RangeError(`gpu: no simulated GPU ${fault.gpu} (this node has ${this.count})`);
    switch (fault.kind) {
      case 'xid':
        this.onXid({
          gpuIndex: gpu.index,
          pciBusId: gpu.pciBusId,
          code: fault.code,
          message: fault.message ?? `simulated Xid ${fault.code}`,
          at: new Date().toISOString(),
        });
        break;
      case 'temperature':
        gpu.temperatureC = fault.celsius;
        break;
      case 'ecc':
        gpu.eccUncorrected += fault.uncorrected ?? 0;
        gpu.eccCorrected += fault.corrected ?? 0;
        gpu.eccUncorrectedAggregate = (gpu.eccUncorrectedAggregate ?? 0) + (fault.uncorrected ?? 0);
        gpu.eccCorrectedAggregate = (gpu.eccCorrectedAggregate ?? 0) + (fault.corrected ?? 0);
        break;
      case 'throttle':
        gpu.throttleReasons = [...fault.reasons];
        break;
      case 'missing':
        this.missing.add(gpu.index);
        break;
      case 'smi-hang':
        this.hung = true;
        break;
    }
  }

  /** Clears every fault, the persistent ones too (their file goes). */
  clearFaults(): void {
    this.persistent = [];
    if (this.faultsFile) rmSync(this.faultsFile, { force: true });
    this.missing.clear();
    this.hung = false;
    for (const g of this.gpus) {
      g.temperatureC = IDLE_C;
      g.eccCorrected = 0;
      g.eccUncorrected = 0;
      g.throttleReasons = [];
    }
  }

  /** Reflects the node's running work in utilisation, so autoscalers and dashboards see load. */
  setLoad(busyFraction: number): void {
    for (const g of this.gpus) {
      g.utilizationPct = Math.round(Math.min(1, Math.max(0, busyFraction)) * 100);
      g.memoryUsedMiB = Math.round(g.memoryTotalMiB * 0.6 * busyFraction);
      g.powerDrawW = Math.round(95 + 500 * busyFraction);
    }
  }

  async snapshot(): Promise<GpuSnapshot> {
    // What a hung nvidia-smi looks like to the nvidia backend once its timeout kills it.
    if (this.hung) return { backend: this.name, gpus: [], error: 'nvidia-smi timed out (simulated hang)' };
    return {
      backend: this.name,
      gpus: this.gpus.filter((g) => !this.missing.has(g.index)).map((g) => ({ ...g, throttleReasons: [...g.throttleReasons] })),
    };
  }
}

/** What the agent knows about one GPU, whatever the backend. Counters a GPU does not report are null. */
export interface GpuInfo {
  index: number;
  uuid: string;
  name: string;
  /** As nvidia-smi prints it, e.g. 00000000:3B:00.0. */
  pciBusId: string;
  temperatureC: number;
  powerDrawW: number;
  powerLimitW: number;
  utilizationPct: number;
  memoryUsedMiB: number;
  memoryTotalMiB: number;
  /** Volatile (since the last driver load) ECC error counts. */
  eccCorrected: number;
  eccUncorrected: number;
  /** Lifetime ECC error counts. */
  eccCorrectedAggregate: number | null;
  eccUncorrectedAggregate: number | null;
  /** Active clock throttle (event) reasons other than idle, e.g. hw_thermal_slowdown. */
  throttleReasons: string[];
  retiredPages: { singleBit: number; doubleBit: number; pending: boolean } | null;
  remappedRows: { correctable: number; uncorrectable: number; pending: boolean; failure: boolean } | null;
}

/** One XID event reported by the driver for a GPU. */
export interface XidEvent {
  /** -1 when the PCI bus id matches no GPU the backend lists. */
  gpuIndex: number;
  pciBusId: string;
  code: number;
  message: string;
  at: string;
}

export interface GpuSnapshot {
  backend: string;
  gpus: GpuInfo[];
  /** Set when the backend itself failed (e.g. nvidia-smi timed out). */
  error?: string;
}

export interface GpuBackend {
  readonly name: string;
  snapshot(): Promise<GpuSnapshot>;
}

/** Kernel logs write `PCI:0000:3b:00`, nvidia-smi `00000000:3B:00.0`: both become `0000:3b:00`. */
export function normalizePciBusId(id: string): string {
  const m = /^(?:PCI:)?(?:([0-9a-fA-F]+):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})(?:\.[0-9a-fA-F])?$/.exec(id.trim());
  if (!m) return id.trim().toLowerCase();
  const domain = (m[1] ?? '0').toLowerCase().padStart(4, '0').slice(-4);
  return `${domain}:${m[2].toLowerCase().padStart(2, '0')}:${m[3].toLowerCase().padStart(2, '0')}`;
}

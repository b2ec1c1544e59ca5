/** What the agent knows about one GPU, whatever the backend. */
export interface GpuInfo {
  index: number;
  uuid: string;
  name: string;
  pciBusId: string;
  temperatureC: number;
  powerDrawW: number;
  powerLimitW: number;
  utilizationPct: number;
  memoryUsedMiB: number;
  memoryTotalMiB: number;
  eccCorrected: number;
  eccUncorrected: number;
}

/** One XID event reported by the driver for a GPU. */
export interface XidEvent {
  gpuIndex: number;
  pciBusId: string;
  code: number;
  message: string;
  at: string;
}

export interface GpuSnapshot {
  backend: string;
  gpus: GpuInfo[];
  xidEvents: XidEvent[];
  /** Set when the backend itself failed (e.g. nvidia-smi timed out). */
  error?: string;
}

export interface GpuBackend {
  readonly name: string;
  snapshot(): Promise<GpuSnapshot>;
}

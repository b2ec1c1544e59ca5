import { execFileSync } from 'node:child_process';
import { CORE_FIELD_COUNT, NvidiaSmiError, parseQueryGpuCsv, QUERY_FIELDS, runNvidiaSmi } from './nvidiaSmi.ts';
import type { GpuBackend, GpuSnapshot } from './types.ts';

/** Inventory and telemetry from `nvidia-smi --query-gpu`; concurrent callers share one run. */
export class NvidiaGpuBackend implements GpuBackend {
  readonly name = 'nvidia';
  private fields: readonly string[] = QUERY_FIELDS;
  private inflight?: Promise<GpuSnapshot>;

  constructor(private readonly bin: string, private readonly timeoutMs: number) {}

  snapshot(): Promise<GpuSnapshot> {
    this.inflight ??= this.probe().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async query(): Promise<string> {
    return runNvidiaSmi(this.bin, [`--query-gpu=${this.fields.join(',')}`, '--format=csv,noheader,nounits'], this.timeoutMs);
  }

  private async probe(): Promise<GpuSnapshot> {
    try {
      let out: string;
      try {
        out = await this.query();
      } catch (err) {
        // Drivers before row remapping (or on GPUs without it) reject those field names: ask for the core set.
        if (!(err instanceof NvidiaSmiError && /not a valid field/i.test(err.message)) || this.fields.length === CORE_FIELD_COUNT) throw err;
        this.fields = QUERY_FIELDS.slice(0, CORE_FIELD_COUNT);
        out = await this.query();
      }
      return { backend: this.name, gpus: parseQueryGpuCsv(out) };
    } catch (err) {
      return { backend: this.name, gpus: [], error: (err as Error).message };
    }
  }
}

/** True when `nvidia-smi -L` runs and lists at least one GPU (used by `--gpu-backend auto`). */
export function nvidiaSmiWorks(bin: string, timeoutMs: number): boolean {
  try {
    const out = execFileSync(bin, ['-L'], { timeout: timeoutMs, killSignal: 'SIGKILL', stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    return /^GPU \d+:/m.test(out);
  } catch {
    return false;
  }
}

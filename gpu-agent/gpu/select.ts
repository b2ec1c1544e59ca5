import { join } from 'node:path';
import type { AgentConfig } from '../config.ts';
import { NvidiaGpuBackend, nvidiaSmiWorks } from './nvidia.ts';
import { SIMULATED_FAULTS_FILE, SimulatedGpuBackend } from './simulated.ts';
import type { GpuBackend, XidEvent } from './types.ts';

/** Picks the GPU backend: nvidia when asked or when `auto` finds nvidia-smi working; simulated otherwise. */
export function selectGpuBackend(config: AgentConfig, onSimulatedXid: (e: XidEvent) => void): GpuBackend {
  const nvidia = config.gpuBackend === 'nvidia' || (config.gpuBackend === 'auto' && !config.gpusExplicit && nvidiaSmiWorks(config.nvidiaSmi, config.smiTimeoutMs));
  if (nvidia) return new NvidiaGpuBackend(config.nvidiaSmi, config.smiTimeoutMs);
  return new SimulatedGpuBackend(config.gpus, config.nodeId, onSimulatedXid, config.dataDir ? join(config.dataDir, SIMULATED_FAULTS_FILE) : undefined);
}

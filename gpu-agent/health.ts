import type { GpuSnapshot } from './gpu/types.ts';

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

export interface GpuHealth {
  index: number;
  status: HealthStatus;
  reasons: string[];
}

export interface HealthVerdict {
  status: HealthStatus;
  reasons: string[];
  gpus: GpuHealth[];
}

/** The thresholds that turn telemetry into a verdict. */
export interface HealthPolicy {
  version: string;
  fatalXids: number[];
  thermal: { degradedC: number; unhealthyC: number };
  ecc: { correctedDegradedAbove: number };
}

// Fatal XIDs: the union of Navarch's and the EKS node monitoring agent's fatal lists.
export const DEFAULT_HEALTH_POLICY: HealthPolicy = {
  version: '2026-11-23.1',
  fatalXids: [46, 48, 54, 61, 62, 63, 64, 69, 74, 79, 92, 94, 95, 110, 119, 120, 136, 140, 142, 143, 151, 155, 156, 158],
  thermal: { degradedC: 85, unhealthyC: 95 },
  ecc: { correctedDegradedAbove: 100 },
};

const rank: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2 };
const worse = (a: HealthStatus, b: HealthStatus): HealthStatus => (rank[a] >= rank[b] ? a : b);

export function evaluateHealth(snap: GpuSnapshot, expectedGpus: number, policy: HealthPolicy = DEFAULT_HEALTH_POLICY): HealthVerdict {
  const reasons: string[] = [];
  let status: HealthStatus = 'healthy';
  if (snap.error) {
    status = 'unhealthy';
    reasons.push(`gpu backend ${snap.backend} failed: ${snap.error}`);
  }
  if (snap.gpus.length < expectedGpus) {
    status = 'unhealthy';
    reasons.push(`expected ${expectedGpus} GPUs, found ${snap.gpus.length}`);
  }
  const gpus = snap.gpus.map((g): GpuHealth => {
    let s: HealthStatus = 'healthy';
    const r: string[] = [];
    for (const e of snap.xidEvents.filter((x) => x.gpuIndex === g.index)) {
      const fatal = policy.fatalXids.includes(e.code);
      s = worse(s, fatal ? 'unhealthy' : 'degraded');
      r.push(`xid ${e.code} (${fatal ? 'fatal' : 'degraded'}): ${e.message}`);
    }
    if (g.temperatureC >= policy.thermal.unhealthyC) {
      s = worse(s, 'unhealthy');
      r.push(`temperature ${g.temperatureC} C >= ${policy.thermal.unhealthyC} C`);
    } else if (g.temperatureC >= policy.thermal.degradedC) {
      s = worse(s, 'degraded');
      r.push(`temperature ${g.temperatureC} C >= ${policy.thermal.degradedC} C`);
    }
    if (g.eccUncorrected > 0) {
      s = worse(s, 'unhealthy');
      r.push(`${g.eccUncorrected} uncorrected ECC errors`);
    } else if (g.eccCorrected > policy.ecc.correctedDegradedAbove) {
      s = worse(s, 'degraded');
      r.push(`${g.eccCorrected} corrected ECC errors > ${policy.ecc.correctedDegradedAbove}`);
    }
    return { index: g.index, status: s, reasons: r };
  });
  for (const g of gpus) {
    status = worse(status, g.status);
    reasons.push(...g.reasons.map((x) => `gpu ${g.index}: ${x}`));
  }
  return { status, reasons, gpus };
}

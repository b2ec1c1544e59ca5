import type { GpuInfo, GpuSnapshot, XidEvent } from './gpu/types.ts';
import { classifyXid, DEFAULT_HEALTH_POLICY, type HealthPolicy } from './policy.ts';

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

export { DEFAULT_HEALTH_POLICY, type HealthPolicy };

export const HEALTH_RANK: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2 };
const worse = (a: HealthStatus, b: HealthStatus): HealthStatus => (HEALTH_RANK[a] >= HEALTH_RANK[b] ? a : b);

class Verdict {
  status: HealthStatus = 'healthy';
  reasons: string[] = [];
  add(status: HealthStatus, reason: string): void {
    this.status = worse(this.status, status);
    this.reasons.push(reason);
  }
}

function xidVerdict(v: Verdict, events: XidEvent[], policy: HealthPolicy, now: number): void {
  const windowStart = now - policy.xid.windowSeconds * 1000;
  let degradedInWindow = 0;
  for (const e of events) {
    const cls = classifyXid(policy, e.code);
    if (cls === 'fatal') v.add('unhealthy', `xid ${e.code} (fatal): ${e.message}`);
    else if (cls === 'degraded' && Date.parse(e.at) >= windowStart) {
      degradedInWindow++;
      v.add('degraded', `xid ${e.code} (degraded): ${e.message}`);
    }
  }
  if (degradedInWindow >= policy.xid.escalateAfter) {
    v.add('unhealthy', `${degradedInWindow} degraded XIDs within ${policy.xid.windowSeconds} s (escalates at ${policy.xid.escalateAfter})`);
  }
}

function gpuVerdict(g: GpuInfo, events: XidEvent[], policy: HealthPolicy, now: number): GpuHealth {
  const v = new Verdict();
  xidVerdict(v, events, policy, now);
  if (g.temperatureC >= policy.thermal.unhealthyC) v.add('unhealthy', `temperature ${g.temperatureC} C >= ${policy.thermal.unhealthyC} C`);
  else if (g.temperatureC >= policy.thermal.degradedC) v.add('degraded', `temperature ${g.temperatureC} C >= ${policy.thermal.degradedC} C`);
  if (g.eccUncorrected > policy.ecc.uncorrectedUnhealthyAbove) v.add('unhealthy', `${g.eccUncorrected} uncorrected ECC errors`);
  else if (g.eccCorrected > policy.ecc.correctedDegradedAbove) {
    v.add('degraded', `${g.eccCorrected} corrected ECC errors > ${policy.ecc.correctedDegradedAbove}`);
  }
  const throttled = g.throttleReasons.filter((r) => policy.throttle.degradedReasons.includes(r));
  if (throttled.length) v.add('degraded', `clocks throttled: ${throttled.join(', ')}`);
  if (policy.memory.remapFailureIsUnhealthy && g.remappedRows?.failure) v.add('unhealthy', 'row remapping failed');
  if (policy.memory.pendingIsDegraded && (g.remappedRows?.pending || g.retiredPages?.pending)) {
    v.add('degraded', `${g.remappedRows?.pending ? 'row remap' : 'page retirement'} pending: reset the GPU`);
  }
  return { index: g.index, status: v.status, reasons: v.reasons };
}

/** Turns one telemetry snapshot and the recent XID events into per-GPU and node verdicts. */
export function evaluateHealth(
  snap: GpuSnapshot,
  xids: XidEvent[],
  expectedGpus: number,
  policy: HealthPolicy = DEFAULT_HEALTH_POLICY,
  now = Date.now(),
): HealthVerdict {
  const node = new Verdict();
  if (snap.error) node.add('unhealthy', `gpu backend ${snap.backend} failed: ${snap.error}`);
  else if (snap.gpus.length < expectedGpus) node.add('unhealthy', `expected ${expectedGpus} GPUs, found ${snap.gpus.length}`);
  const gpus = snap.gpus.map((g) => gpuVerdict(g, xids.filter((x) => x.gpuIndex === g.index), policy, now));
  for (const g of gpus) for (const r of g.reasons) node.add(g.status, `gpu ${g.index}: ${r}`);
  // XIDs for a bus id no listed GPU has (e.g. one that fell off the bus) still count against the node.
  const orphan = new Verdict();
  xidVerdict(orphan, xids.filter((x) => x.gpuIndex < 0), policy, now);
  for (const r of orphan.reasons) node.add(orphan.status, `unknown gpu: ${r}`);
  return { status: node.status, reasons: node.reasons, gpus };
}

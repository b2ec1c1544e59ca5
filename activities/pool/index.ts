import type { NodeActivityDeps } from '../nodes.ts';
import { createLeaseActivities } from './lease.ts';
import { createProbeActivities } from './probe.ts';
import { createPoolServingActivities } from './serving.ts';

/** Activities of the fleetPool workflow (the node operations it reuses live in activities/nodes.ts). */
export function createPoolActivities(deps: NodeActivityDeps) {
  return { ...createProbeActivities(deps), ...createLeaseActivities(), ...createPoolServingActivities(deps) };
}

export type PoolActivities = ReturnType<typeof createPoolActivities>;

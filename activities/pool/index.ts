import type { NodeActivityDeps } from '../nodes.ts';
import { createLeaseActivities } from './lease.ts';
import { createProbeActivities } from './probe.ts';
import { createRemedyActivities } from './remedy.ts';
import { createPoolServingActivities } from './serving.ts';
import { createWatchActivities } from './watch.ts';

/** Activities of the fleetPool workflow (the node operations it reuses live in activities/nodes.ts). */
export function createPoolActivities(deps: NodeActivityDeps) {
  return { ...createProbeActivities(deps), ...createLeaseActivities(), ...createPoolServingActivities(deps), ...createWatchActivities(deps), ...createRemedyActivities(deps) };
}

export type PoolActivities = ReturnType<typeof createPoolActivities>;

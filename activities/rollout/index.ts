import type { NodeActivityDeps } from '../nodes.ts';
import { createRolloutModelActivities } from './model.ts';
import { createRolloutNodeActivities } from './nodes.ts';
import { createPoolMembershipActivities } from './poolMembership.ts';
import { createPrefetchActivities } from './prefetch.ts';

/** Activities of the rollingUpdate workflow (cordon, drain, provision, terminate and leases are reused from nodes and pool). */
export function createRolloutActivities(deps: NodeActivityDeps) {
  return { ...createRolloutNodeActivities(deps), ...createRolloutModelActivities(deps), ...createPoolMembershipActivities(), ...createPrefetchActivities(deps) };
}

export type RolloutActivities = ReturnType<typeof createRolloutActivities>;
export type { SmokeResult } from './model.ts';
export type { RolloutMember, RolloutMembers } from './nodes.ts';

import { createBackupActivities } from './backup/index.ts';
import { createNodeActivities, type NodeActivityDeps } from './nodes.ts';
import { createPoolActivities } from './pool/index.ts';
import { createRolloutActivities } from './rollout/index.ts';

/** All activities the control worker registers. */
export function createActivities(deps: NodeActivityDeps) {
  return { ...createNodeActivities(deps), ...createBackupActivities(deps), ...createPoolActivities(deps), ...createRolloutActivities(deps) };
}

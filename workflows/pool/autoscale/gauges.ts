import { metricMeter } from '@temporalio/workflow';
import type { PoolStatus } from '../api.ts';

/**
 * Prometheus gauges of the pool's size, set from the workflow through the SDK's metric meter (the
 * SDK drops them while replaying), exported by the worker's Temporal metrics on /metrics
 * (DRYDOCK_METRICS_ADDRESS): desired size, members, serving (active and healthy) and the bounds in force.
 */
export function publishSizeGauges(st: PoolStatus): void {
  // Created here, not at import: the meter exists only inside a workflow context (importing this module elsewhere must not throw).
  const desired = metricMeter.createGauge('drydock_pool_desired_nodes', 'int', 'nodes', 'The autoscaler\'s desired size of the pool');
  const actual = metricMeter.createGauge('drydock_pool_nodes', 'int', 'nodes', 'Members of the pool (any phase)');
  const serving = metricMeter.createGauge('drydock_pool_serving_nodes', 'int', 'nodes', 'Members that are active and healthy');
  const minBound = metricMeter.createGauge('drydock_pool_min_nodes', 'int', 'nodes', 'The minimum size in force (an open scheduled window\'s, else the pool\'s)');
  const maxBound = metricMeter.createGauge('drydock_pool_max_nodes', 'int', 'nodes', 'The maximum size in force');
  const tags = { pool: st.name };
  desired.set(st.desired, tags);
  actual.set(st.counts.members, tags);
  serving.set(st.nodes.filter((n) => n.phase === 'active' && n.health === 'healthy').length, tags);
  minBound.set(st.autoscaler.bounds?.minNodes ?? st.minNodes, tags);
  maxBound.set(st.autoscaler.bounds?.maxNodes ?? st.maxNodes, tags);
}

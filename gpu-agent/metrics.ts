import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { HEALTH_RANK, type HealthStatus } from './health.ts';
import type { GpuInfo } from './gpu/types.ts';
import type { XidEvent } from './gpu/types.ts';

/** The agent's Prometheus metrics, in a registry of its own (one per agent, so tests can run several). */
export class AgentMetrics {
  readonly registry = new Registry();
  private g = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers: [this.registry] });
  readonly temperature = this.g('drydock_gpu_temperature_celsius', 'GPU temperature', ['gpu', 'uuid']);
  readonly power = this.g('drydock_gpu_power_watts', 'GPU power draw', ['gpu', 'uuid']);
  readonly powerLimit = this.g('drydock_gpu_power_limit_watts', 'GPU power limit', ['gpu', 'uuid']);
  readonly utilization = this.g('drydock_gpu_utilization_percent', 'GPU utilisation', ['gpu', 'uuid']);
  readonly memUsed = this.g('drydock_gpu_memory_used_bytes', 'GPU memory used', ['gpu', 'uuid']);
  readonly memTotal = this.g('drydock_gpu_memory_total_bytes', 'GPU memory total', ['gpu', 'uuid']);
  readonly ecc = this.g('drydock_gpu_ecc_errors', 'Volatile ECC error count as the driver reports it', ['gpu', 'uuid', 'type']);
  readonly gpuHealth = this.g('drydock_gpu_health_status', 'GPU health: 0 healthy, 1 degraded, 2 unhealthy', ['gpu', 'uuid']);
  readonly nodeHealth = this.g('drydock_node_health_status', 'Node health: 0 healthy, 1 degraded, 2 unhealthy');
  readonly gpusPresent = this.g('drydock_gpus_present', 'GPUs the backend lists');
  readonly xids = new Counter({ name: 'drydock_gpu_xid_events_total', help: 'XID events seen, by GPU and code', labelNames: ['gpu', 'code'], registers: [this.registry] });
  readonly slotsBusy = this.g('drydock_slots_busy', 'Inference slots generating');
  readonly slotsTotal = this.g('drydock_slots_total', 'Inference slots of the serving model');
  readonly queueDepth = this.g('drydock_queue_depth', 'Inference requests waiting for a slot');
  readonly inFlight = this.g('drydock_work_in_flight', 'In-flight work items a drain waits for');
  readonly tokens = new Counter({ name: 'drydock_tokens_generated_total', help: 'Tokens generated', registers: [this.registry] });
  readonly latency = new Histogram({
    name: 'drydock_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames: ['route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  recordXid(e: XidEvent): void {
    this.xids.inc({ gpu: String(e.gpuIndex), code: String(e.code) });
  }

  /** Sets the gauges from one health evaluation. */
  observe(gpus: (GpuInfo & { status: HealthStatus })[], node: HealthStatus): void {
    for (const m of [this.temperature, this.power, this.powerLimit, this.utilization, this.memUsed, this.memTotal, this.ecc, this.gpuHealth]) m.reset();
    for (const g of gpus) {
      const l = { gpu: String(g.index), uuid: g.uuid };
      this.temperature.set(l, g.temperatureC);
      this.power.set(l, g.powerDrawW);
      this.powerLimit.set(l, g.powerLimitW);
      this.utilization.set(l, g.utilizationPct);
      this.memUsed.set(l, g.memoryUsedMiB * 1024 * 1024);
      this.memTotal.set(l, g.memoryTotalMiB * 1024 * 1024);
      this.ecc.set({ ...l, type: 'corrected' }, g.eccCorrected);
      this.ecc.set({ ...l, type: 'uncorrected' }, g.eccUncorrected);
      this.gpuHealth.set(l, HEALTH_RANK[g.status]);
    }
    this.gpusPresent.set(gpus.length);
    this.nodeHealth.set(HEALTH_RANK[node]);
  }
}

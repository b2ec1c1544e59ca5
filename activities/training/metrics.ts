import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LoadedBackend } from './backend.ts';

/** Prometheus series the trainer worker exports on /metrics. */
export class TrainerMetrics {
  readonly registry = new Registry();
  private readonly loss = new Gauge({ name: 'drydock_train_loss', help: 'Last inner-step training loss', labelNames: ['job'], registers: [this.registry] });
  private readonly steps = new Counter({ name: 'drydock_train_steps_total', help: 'Inner steps run by this trainer', labelNames: ['job'], registers: [this.registry] });
  private readonly rate = new Gauge({ name: 'drydock_train_samples_per_second', help: 'Samples/s of the last shard this trainer ran', labelNames: ['job'], registers: [this.registry] });
  private readonly accuracy = new Gauge({ name: 'drydock_train_accuracy', help: 'Last held-out accuracy this trainer evaluated', labelNames: ['job'], registers: [this.registry] });
  private readonly lastRound = new Gauge({ name: 'drydock_train_round', help: 'Last round this trainer aggregated', labelNames: ['job'], registers: [this.registry] });
  private readonly lr = new Gauge({ name: 'drydock_train_learning_rate', help: 'Inner optimizer learning rate of the last shard', labelNames: ['job'], registers: [this.registry] });
  private readonly gradNorm = new Gauge({ name: 'drydock_train_gradient_norm', help: 'Global L2 norm of the last inner step\'s gradients', labelNames: ['job'], registers: [this.registry] });
  private readonly batchTime = new Histogram({
    name: 'drydock_train_batch_seconds',
    help: 'Time of one inner step (forward, backward, update), averaged over the steps between two read-backs',
    labelNames: ['job'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });
  readonly backend = new Gauge({ name: 'drydock_trainer_backend', help: 'TensorFlow.js backend this trainer uses (1 = active)', labelNames: ['backend'], registers: [this.registry] });
  private readonly tfInfo = new Gauge({ name: 'drydock_trainer_tensorflow_info', help: 'Version of the native TensorFlow library (native backends only)', labelNames: ['version'], registers: [this.registry] });
  private readonly deviceMemory = new Gauge({ name: 'drydock_trainer_device_memory_bytes', help: 'Memory TensorFlow reports for each GPU it sees (its allocator\'s limit)', labelNames: ['device'], registers: [this.registry] });
  private tf?: LoadedBackend['tf'];

  constructor() {
    new Gauge({
      name: 'drydock_trainer_host_memory_bytes',
      help: 'Resident memory of the trainer process',
      registers: [this.registry],
      collect() {
        this.set(process.memoryUsage().rss);
      },
    });
    const tensors = () => this.tf?.memory().numBytes;
    new Gauge({
      name: 'drydock_trainer_tensor_bytes',
      help: 'Bytes of the tensors TensorFlow.js holds (in device memory on the native GPU backend)',
      registers: [this.registry],
      collect() {
        const bytes = tensors();
        if (bytes !== undefined) this.set(bytes);
      },
    });
  }

  /** Reports the backend, TensorFlow's version and GPUs, and samples tensor memory on every scrape. */
  watchBackend(lb: LoadedBackend): void {
    this.tf = lb.tf;
    this.backend.set({ backend: lb.best }, 1);
    if (lb.tensorflowVersion) this.tfInfo.set({ version: lb.tensorflowVersion }, 1);
    for (const d of lb.devices ?? []) if (d.type === 'GPU') this.deviceMemory.set({ device: d.name }, d.memoryBytes);
  }

  stepsDone(job: string, count: number, lastLoss: number, stepSeconds: number, lastGradNorm: number): void {
    this.loss.set({ job }, lastLoss);
    this.steps.inc({ job }, count);
    this.gradNorm.set({ job }, lastGradNorm);
    for (let i = 0; i < count; i++) this.batchTime.observe({ job }, stepSeconds);
  }
  shardStarted(job: string, lr: number): void {
    this.lr.set({ job }, lr);
  }
  shard(job: string, samplesPerSecond: number): void {
    this.rate.set({ job }, samplesPerSecond);
  }
  evaluated(job: string, accuracy: number): void {
    this.accuracy.set({ job }, accuracy);
  }
  round(job: string, round: number): void {
    this.lastRound.set({ job }, round);
  }
}

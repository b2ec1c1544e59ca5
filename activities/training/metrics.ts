import { Counter, Gauge, Registry } from 'prom-client';

/** Prometheus series the trainer worker exports on /metrics. */
export class TrainerMetrics {
  readonly registry = new Registry();
  private readonly loss = new Gauge({ name: 'drydock_train_loss', help: 'Last inner-step training loss', labelNames: ['job'], registers: [this.registry] });
  private readonly steps = new Counter({ name: 'drydock_train_steps_total', help: 'Inner steps run by this trainer', labelNames: ['job'], registers: [this.registry] });
  private readonly rate = new Gauge({ name: 'drydock_train_samples_per_second', help: 'Samples/s of the last shard this trainer ran', labelNames: ['job'], registers: [this.registry] });
  private readonly accuracy = new Gauge({ name: 'drydock_train_accuracy', help: 'Last held-out accuracy this trainer evaluated', labelNames: ['job'], registers: [this.registry] });
  private readonly lastRound = new Gauge({ name: 'drydock_train_round', help: 'Last round this trainer aggregated', labelNames: ['job'], registers: [this.registry] });
  readonly backend = new Gauge({ name: 'drydock_trainer_backend', help: 'TensorFlow.js backend this trainer uses (1 = active)', labelNames: ['backend'], registers: [this.registry] });

  stepsDone(job: string, count: number, lastLoss: number): void {
    this.loss.set({ job }, lastLoss);
    this.steps.inc({ job }, count);
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

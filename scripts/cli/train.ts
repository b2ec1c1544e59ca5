import { readFileSync, writeFileSync } from 'node:fs';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { InvalidArgumentError, type Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { lossCurvePng, lossCurveSvg, lossCurveText, type CurvePoint } from '../../activities/training/lossCurve.ts';
import { parseTrainingJobInput, trainingJobWorkflowId, type TrainingJobInput } from '../../workflows/inputs/trainingJob.ts';
import type { RoundMetrics, TrainingJobResult, TrainingProgress } from '../../workflows/trainingJob.ts';
import { badInput, checkedInput, globals, output, withClient } from './runtime.ts';
import { watchWorkflow, type Snapshot } from './watch.ts';

function positiveInt(v: string): number {
  if (!/^[1-9]\d*$/.test(v)) throw new InvalidArgumentError('expected a whole number above 0');
  return Number(v);
}

interface StartFlags {
  spec?: string;
  name?: string;
  workers?: number;
  rounds?: number;
  innerSteps?: number;
  batchSize?: number;
  model?: string;
  checkpoint?: string;
  wait?: boolean;
}

/** The job input from --spec (YAML or JSON) with flags on top, checked by the workflow's own parser. */
function jobInput(flags: StartFlags): TrainingJobInput {
  let input: Record<string, unknown> = {};
  if (flags.spec) {
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(flags.spec, 'utf8'));
    } catch (err) {
      throw badInput(`--spec: cannot read ${flags.spec} as YAML or JSON: ${(err as Error).message}`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw badInput(`--spec: ${flags.spec} must hold one object (the trainingJob input)`);
    input = doc as Record<string, unknown>;
  }
  const set = (k: string, v: unknown) => v !== undefined && (input[k] = v);
  set('name', flags.name);
  set('workers', flags.workers);
  set('rounds', flags.rounds);
  set('innerSteps', flags.innerSteps);
  set('batchSize', flags.batchSize);
  set('model', flags.model);
  if (flags.checkpoint) input.checkpoint = { ...(input.checkpoint as object | undefined), uri: flags.checkpoint };
  checkedInput(() => parseTrainingJobInput(input));
  return input as unknown as TrainingJobInput;
}

function snapshotOf(p: TrainingProgress): Snapshot {
  const total = Math.max(1, (p.rounds ?? p.round) - p.startRound);
  const m = p.metrics[p.metrics.length - 1];
  const stats = m ? ` loss ${m.loss.toFixed(4)}${m.accuracy !== undefined ? ` acc ${(m.accuracy * 100).toFixed(1)}%` : ''} on ${m.workers} workers` : '';
  return { done: Math.min(total, p.round - p.startRound), total, label: `${p.phase}${p.paused ? ' (paused)' : ''} round ${p.round}/${p.rounds ?? '?'}${stats}` };
}

function watchTraining(handle: WorkflowHandle): Promise<TrainingJobResult> {
  return watchWorkflow<TrainingJobResult>(
    handle,
    'rounds',
    async () => snapshotOf(await handle.query<TrainingProgress>('progress')),
    (r) => {
      const total = Math.max(1, r.rounds - r.startRound);
      return { done: total, total, label: `done: loss ${r.loss.toFixed(4)}${r.accuracy !== undefined ? `, accuracy ${(r.accuracy * 100).toFixed(1)}%` : ''}` };
    },
  );
}

function curvePoints(metrics: RoundMetrics[]): CurvePoint[] {
  return metrics.map((m) => ({ round: m.round, loss: m.loss, ...(m.accuracy !== undefined ? { accuracy: m.accuracy } : {}) }));
}

/** The finished job and its loss and accuracy curve, one row per round. */
function summary(r: TrainingJobResult): string {
  return [
    `trained ${r.name}: rounds ${r.startRound + 1}-${r.rounds}, loss ${r.loss.toFixed(4)}${r.accuracy !== undefined ? `, held-out accuracy ${(r.accuracy * 100).toFixed(1)}%` : ''}`,
    `  checkpoint ${r.finalCheckpoint}`,
    `  backends ${r.backends.join(', ')}`,
    lossCurveText(curvePoints(r.metrics)),
  ].join('\n');
}

/** A handle on train/<name> that exists, or exit 2 saying so. */
async function existingJob(client: Client, name: string): Promise<WorkflowHandle> {
  const handle = client.workflow.getHandle(trainingJobWorkflowId(name));
  try {
    await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw badInput(`no training job '${name}' (workflow ${handle.workflowId}); start one with 'drydock train start'`);
    throw err;
  }
  return handle;
}

export function registerTrainCommands(program: Command): void {
  const train = program.command('train').description('distributed training jobs (workflow trainingJob, id train/<name>)');

  train
    .command('start')
    .description('start a training job from --spec and/or flags')
    .option('--spec <file>', 'the trainingJob input as YAML or JSON')
    .option('--name <name>', 'job name')
    .option('--workers <n>', 'shards per round', positiveInt)
    .option('--rounds <n>', 'train until this round', positiveInt)
    .option('--inner-steps <n>', 'inner optimizer steps per shard per round', positiveInt)
    .option('--batch-size <n>', 'batch size', positiveInt)
    .option('--model <model>', 'mlp or cnn')
    .option('--checkpoint <uri>', 'checkpoint store: file:///dir or s3://bucket/prefix')
    .option('--wait', 'wait for the end with a progress bar of rounds; exit 1 if the job fails')
    .action(async (flags: StartFlags, cmd: Command) => {
      const o = globals(cmd);
      const input = jobInput(flags);
      await withClient(o, async (client) => {
        let handle;
        try {
          handle = await client.workflow.start('trainingJob', {
            taskQueue: o.taskQueue,
            workflowId: trainingJobWorkflowId(input.name),
            args: [input],
            staticSummary: `train ${input.name}`,
            staticDetails: `Started by the drydock CLI: ${input.workers ?? 'default'} workers, ${input.rounds ?? 'default'} rounds.`,
          });
        } catch (err) {
          if (err instanceof WorkflowExecutionAlreadyStartedError) throw badInput(`training job '${input.name}' is already running; follow it with 'drydock train watch ${input.name}'`);
          throw err;
        }
        const started = { workflowId: handle.workflowId, runId: handle.firstExecutionRunId };
        if (!flags.wait) {
          output(o, { ...started, status: 'RUNNING' }, () => `started ${started.workflowId} (run ${started.runId})`);
          return;
        }
        const result = await watchTraining(handle);
        output(o, { ...started, status: 'COMPLETED', result }, () => summary(result));
      });
    });

  train
    .command('status')
    .description('phase, rounds done, last loss and accuracy, last checkpoint')
    .argument('<name>', 'job name')
    .action(async (name: string, _opts, cmd: Command) => {
      const o = globals(cmd);
      const { desc, progress } = await withClient(o, async (client) => {
        const handle = await existingJob(client, name);
        const desc = await handle.describe();
        return { desc, progress: await handle.query<TrainingProgress>('progress') };
      });
      const last = progress.metrics[progress.metrics.length - 1];
      output(o, { workflowId: desc.workflowId, status: desc.status.name, progress }, () =>
        [
          `${desc.workflowId}: ${desc.status.name}, ${snapshotOf(progress).label}`,
          last ? `  last round: ${last.samplesPerSecond.toFixed(0)} samples/s, ${last.roundSeconds.toFixed(1)} s, backends ${last.backends.join(', ')}` : '',
          progress.lastCheckpoint ? `  checkpoint ${progress.lastCheckpoint}` : '',
          progress.error ? `  error: ${progress.error}` : '',
        ]
          .filter(Boolean)
          .join('\n'),
      );
    });

  train
    .command('watch')
    .description('follow a running job until it ends; exit 1 if it fails')
    .argument('<name>', 'job name')
    .action(async (name: string, _opts, cmd: Command) => {
      const o = globals(cmd);
      await withClient(o, async (client) => {
        const handle = await existingJob(client, name);
        const result = await watchTraining(handle);
        output(o, { workflowId: handle.workflowId, status: 'COMPLETED', result }, () => summary(result));
      });
    });

  train
    .command('curve')
    .description('the loss and held-out accuracy curve of a running or finished job: text, or --svg / --png files')
    .argument('<name>', 'job name')
    .option('--svg <file>', 'write an SVG chart')
    .option('--png <file>', 'write a PNG chart')
    .action(async (name: string, flags: { svg?: string; png?: string }, cmd: Command) => {
      const o = globals(cmd);
      const metrics = await withClient(o, async (client) => (await (await existingJob(client, name)).query<TrainingProgress>('progress')).metrics);
      const points = curvePoints(metrics);
      if (flags.svg) writeFileSync(flags.svg, lossCurveSvg(points, trainingJobWorkflowId(name)));
      if (flags.png) writeFileSync(flags.png, lossCurvePng(points));
      output(o, { workflowId: trainingJobWorkflowId(name), metrics }, () => lossCurveText(points));
    });

  train
    .command('cancel')
    .description('cancel a job; the last checkpoint stays in the store and a new job can resumeFrom it')
    .argument('<name>', 'job name')
    .action(async (name: string, _opts, cmd: Command) => {
      const o = globals(cmd);
      const workflowId = await withClient(o, async (client) => {
        const handle = await existingJob(client, name);
        await handle.cancel();
        return handle.workflowId;
      });
      output(o, { workflowId, status: 'CANCEL_REQUESTED' }, () => `cancellation requested for ${workflowId}`);
    });
}

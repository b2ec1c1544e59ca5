import { writeFileSync } from 'node:fs';
import type { Client, WorkflowExecutionDescription, WorkflowHandle } from '@temporalio/client';
import type { Command } from 'commander';
import { lossCurvePng, lossCurveSvg, lossCurveText, type CurvePoint } from '../../activities/training/lossCurve.ts';
import { parseTrainingJobInput, type TrainingJobInput } from '../../workflows/inputs/trainingJob.ts';
import { trainingJobWorkflowId } from '../../workflows/common/ids.ts';
import type { RoundMetrics, TrainingJobResult, TrainingProgress } from '../../workflows/trainingJob.ts';
import { positiveWholeNumber } from './flags.ts';
import { existingWorkflow } from './handles.ts';
import { checkedInput, globals, output, withClient } from './runtime.ts';
import { assignDefined, readSpecFile } from './spec.ts';
import { runWorkflow } from './start.ts';
import { frameView, watchWorkflow, type Frame } from './watch.ts';

export interface StartFlags {
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
export function jobInput(flags: StartFlags): TrainingJobInput {
  const input = flags.spec ? readSpecFile(flags.spec, '--spec', 'the trainingJob input') : {};
  assignDefined(input, { name: flags.name, workers: flags.workers, rounds: flags.rounds, innerSteps: flags.innerSteps, batchSize: flags.batchSize, model: flags.model });
  if (flags.checkpoint) input.checkpoint = { ...(input.checkpoint as object | undefined), uri: flags.checkpoint };
  checkedInput(() => parseTrainingJobInput(input));
  return input as unknown as TrainingJobInput;
}

function progressFrame(p: TrainingProgress): Frame {
  const total = Math.max(1, (p.rounds ?? p.round) - p.startRound);
  const m = p.metrics[p.metrics.length - 1];
  const stats = m ? ` loss ${m.loss.toFixed(4)}${m.accuracy !== undefined ? ` acc ${(m.accuracy * 100).toFixed(1)}%` : ''} on ${m.workers} workers` : '';
  return { done: Math.min(total, p.round - p.startRound), total, label: `${p.phase}${p.paused ? ' (paused)' : ''} round ${p.round}/${p.rounds ?? '?'}${stats}` };
}

function watchTraining(handle: WorkflowHandle): Promise<TrainingJobResult> {
  const view = frameView<TrainingProgress, TrainingJobResult>(
    'rounds',
    () => handle.query<TrainingProgress>('progress'),
    progressFrame,
    (r) => {
      const total = Math.max(1, r.rounds - r.startRound);
      return { done: total, total, label: `done: loss ${r.loss.toFixed(4)}${r.accuracy !== undefined ? `, accuracy ${(r.accuracy * 100).toFixed(1)}%` : ''}` };
    },
  );
  return watchWorkflow(handle, view);
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

/** A handle on train/<name> that exists, with its description, or exit 2 saying so. */
function existingJob(client: Client, name: string): Promise<{ handle: WorkflowHandle; desc: WorkflowExecutionDescription }> {
  const workflowId = trainingJobWorkflowId(name);
  return existingWorkflow(client, workflowId, `no training job '${name}' (workflow ${workflowId}); start one with 'drydock train start'`);
}

export function registerTrainCommands(program: Command): void {
  const train = program.command('train').description('distributed training jobs (workflow trainingJob, id train/<name>)');

  train
    .command('start')
    .description('start a training job from --spec and/or flags')
    .option('--spec <file>', 'the trainingJob input as YAML or JSON')
    .option('--name <name>', 'job name')
    .option('--workers <n>', 'shards per round', positiveWholeNumber)
    .option('--rounds <n>', 'train until this round', positiveWholeNumber)
    .option('--inner-steps <n>', 'inner optimizer steps per shard per round', positiveWholeNumber)
    .option('--batch-size <n>', 'batch size', positiveWholeNumber)
    .option('--model <model>', 'mlp or cnn')
    .option('--checkpoint <uri>', 'checkpoint store: file:///dir or s3://bucket/prefix')
    .option('--wait', 'wait for the end with a progress bar of rounds; exit 1 if the job fails')
    .action(async (flags: StartFlags, cmd: Command) => {
      const o = globals(cmd);
      const input = jobInput(flags);
      await runWorkflow(
        o,
        {
          type: 'trainingJob',
          workflowId: trainingJobWorkflowId(input.name),
          input,
          summary: `train ${input.name}`,
          details: `Started by the drydock CLI: ${input.workers ?? 'default'} workers, ${input.rounds ?? 'default'} rounds.`,
          alreadyStarted: `training job '${input.name}' is already running; follow it with 'drydock train watch ${input.name}'`,
        },
        { wait: flags.wait ? watchTraining : undefined, resultText: summary },
      );
    });

  train
    .command('status')
    .description('phase, rounds done, last loss and accuracy, last checkpoint')
    .argument('<name>', 'job name')
    .action(async (name: string, _opts, cmd: Command) => {
      const o = globals(cmd);
      const { desc, progress } = await withClient(o, async (client) => {
        const { handle, desc } = await existingJob(client, name);
        return { desc, progress: await handle.query<TrainingProgress>('progress') };
      });
      const last = progress.metrics[progress.metrics.length - 1];
      output(o, { workflowId: desc.workflowId, status: desc.status.name, progress }, () =>
        [
          `${desc.workflowId}: ${desc.status.name}, ${progressFrame(progress).label}`,
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
        const { handle } = await existingJob(client, name);
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
      const metrics = await withClient(o, async (client) => (await (await existingJob(client, name)).handle.query<TrainingProgress>('progress')).metrics);
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
        const { handle } = await existingJob(client, name);
        await handle.cancel();
        return handle.workflowId;
      });
      output(o, { workflowId, status: 'CANCEL_REQUESTED' }, () => `cancellation requested for ${workflowId}`);
    });
}

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { DRYDOCK_TRAIN_LOSS } from '../../workflows/trainingJob.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { workflowBundle } from '../../scripts/lib/bundle.ts';
import { runCli } from '../helpers/cli.ts';
import { startDevServer } from '../../scripts/lib/temporal.ts';
import { inProcessVersioning, spawnTrainer, type TrainerProcess } from '../../scripts/lib/workers.ts';

/** `drydock train …` against a real dev server, a workflow worker and one real trainer process. */
const TQ = 'train-cli';
const TRAINER_TQ = 'train-cli-trainers';


describe('drydock train: start --wait, status, watch, cancel, with CI exit codes', () => {
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  let trainer: TrainerProcess;
  let dir: string;
  // The CLI's JSON, checked field by field.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const cli = (args: string[]) => runCli<Record<string, any>>(args, { TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: 'default', DRYDOCK_TASK_QUEUE: TQ }, 180_000);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'drydock-train-cli-'));
    env = await startDevServer({ extraSearchAttributes: [DRYDOCK_TRAIN_LOSS] });
    worker = await Worker.create({ connection: env.nativeConnection, taskQueue: TQ, workflowBundle: { codePath: await workflowBundle() }, workerDeploymentOptions: inProcessVersioning().workerDeploymentOptions });
    running = worker.run();
    await inProcessVersioning().makeCurrent(env.client);
    trainer = await spawnTrainer(env.address, TRAINER_TQ);
  });
  after(async () => {
    await trainer?.kill();
    worker?.shutdown();
    await running;
    await env?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('bad input exits 2 naming the field; an unknown job exits 2', async () => {
    const r = await cli(['--json', 'train', 'start', '--name', 'cli-bad', '--checkpoint', `file://${dir}`, '--workers', '65']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.json().message, /^workers: must be between 1 and 64/);
    const missing = await cli(['train', 'status', 'no-such-job']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no training job 'no-such-job'/);
  });

  it('start --wait trains from a spec file with flags on top, prints round progress off a TTY, and exits 0', async () => {
    const spec = join(dir, 'job.yaml');
    writeFileSync(spec, `name: ignored\nmodel: mlp\nrounds: 5\ninnerSteps: 4\nbatchSize: 16\ntrainerQueue: ${TRAINER_TQ}\ncheckpoint:\n  uri: file://${dir}\n`);
    const r = await cli(['--json', 'train', 'start', '--spec', spec, '--name', 'cli-mlp', '--workers', '1', '--rounds', '2', '--wait']);
    assert.equal(r.code, 0, `${r.stderr}\ntrainer: ${trainer.output().slice(-2000)}`);
    const out = r.json();
    assert.equal(out.workflowId, 'train/cli-mlp');
    assert.equal(out.status, 'COMPLETED');
    assert.equal(out.result.rounds, 2, 'the --rounds flag wins over the spec');
    assert.equal(out.result.metrics.length, 2);
    assert.ok(Number.isFinite(out.result.loss));
    const lines = r.stderr.trim().split('\n');
    assert.match(lines[lines.length - 1], /^\S+Z train\/cli-mlp: done: loss \d+\.\d+.* \(2\/2 rounds\)$/);
  });

  it('status and watch report a finished job; watch exits 0 with its result', async () => {
    const status = await cli(['--json', 'train', 'status', 'cli-mlp']);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(status.json().status, 'COMPLETED');
    assert.equal(status.json().progress.round, 2);
    assert.equal(status.json().progress.phase, 'done');
    const human = await cli(['train', 'status', 'cli-mlp']);
    assert.match(human.stdout, /^train\/cli-mlp: COMPLETED, done round 2\/2 loss/);
    const watch = await cli(['--json', 'train', 'watch', 'cli-mlp']);
    assert.equal(watch.code, 0, watch.stderr);
    assert.equal(watch.json().result.rounds, 2);
    // Without --json, watch ends with the loss and accuracy curve: one bar per round.
    const drawn = await cli(['train', 'watch', 'cli-mlp']);
    assert.equal(drawn.code, 0, drawn.stderr);
    assert.match(drawn.stdout, /^trained cli-mlp: rounds 1-2/);
    assert.match(drawn.stdout, /\nround 1 │ █+ \d+\.\d{4}  acc \d+\.\d%\nround 2 │ █+ \d+\.\d{4}  acc \d+\.\d%\n$/);
    const svg = join(dir, 'curve.svg');
    const curve = await cli(['train', 'curve', 'cli-mlp', '--svg', svg]);
    assert.equal(curve.code, 0, curve.stderr);
    assert.match(curve.stdout, /^round 1 │ █+ \d+\.\d{4}  acc \d+\.\d%\nround 2 │ /);
    assert.match(readFileSync(svg, 'utf8'), /^<svg [\s\S]*held-out accuracy[\s\S]*<\/svg>$/);
  });

  it('cancel stops a running job, and watching it then exits 1', async () => {
    const start = await cli(['--json', 'train', 'start', '--name', 'cli-long', '--checkpoint', `file://${dir}`, '--workers', '1', '--rounds', '500', '--inner-steps', '4', '--batch-size', '16']);
    assert.equal(start.code, 0, start.stderr);
    assert.equal(start.json().status, 'RUNNING');
    // The trainer queue is set through the spec only, so this job's shards wait on the default queue
    // with no trainer: it stays running, which is what this test needs.
    await waitFor(async () => (await cli(['--json', 'train', 'status', 'cli-long'])).json().status === 'RUNNING', 30_000, 'the job to run');
    const cancel = await cli(['--json', 'train', 'cancel', 'cli-long']);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.equal(cancel.json().status, 'CANCEL_REQUESTED');
    const watch = await cli(['--json', 'train', 'watch', 'cli-long']);
    assert.equal(watch.code, 1, watch.stderr);
    assert.equal(watch.json().status, 'CANCELLED');
    assert.equal(watch.json().workflowId, 'train/cli-long');
    assert.match(watch.stderr, /train\/cli-long was cancelled/);
  });
});

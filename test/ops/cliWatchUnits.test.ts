import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, RetryState, TerminatedFailure, TimeoutFailure } from '@temporalio/common';
import { createProgress, type ProgressStream } from '../../scripts/cli/progress.ts';
import { EXIT, workflowFailure } from '../../scripts/cli/runtime.ts';
import { follow, WAITING_FOR_WORKER, type Frame, type PollView } from '../../scripts/cli/watch.ts';

/**
 * The CLI's one watch loop, without a server: what a CI log (no TTY) shows while a workflow runs,
 * when the loop stops, and how a closed workflow maps to an exit code. The loop on a real workflow
 * is exercised by the rollout, train, pool and backup CLI tests.
 */

/** A stream that keeps what is written, as a CI log would. */
function log(isTTY = false): { stream: ProgressStream; text: () => string; lines: () => string[] } {
  const stream = Object.assign(new PassThrough(), { isTTY });
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  // The timestamp a line starts with varies; what follows it is what people read.
  return { stream, text: () => text, lines: () => text.split('\n').filter(Boolean).map((l) => l.replace(/^\d{4}-\d\d-\d\dT\S+Z /, '')) };
}

/** A poll that answers `answers` in turn (an Error is thrown), and closes the watch after the last. */
function scripted<S>(answers: (S | Error)[]): { poll: () => Promise<S>; closed: Promise<string>; polls: () => number } {
  let polls = 0;
  let close!: (v: string) => void;
  const closed = new Promise<string>((resolve) => (close = resolve));
  return {
    polls: () => polls,
    closed,
    poll: async () => {
      const a = answers[Math.min(polls, answers.length - 1)];
      polls += 1;
      if (polls >= answers.length) close('result');
      if (a instanceof Error) throw a;
      return a;
    },
  };
}

const phaseView = (poll: () => Promise<{ phase: string; done: number }>): PollView<{ phase: string; done: number }> => ({
  unit: 'nodes',
  poll,
  frames: (s, prev) => (prev?.phase === s.phase && prev.done === s.done ? [] : [{ done: s.done, total: 2, label: s.phase }]),
});

describe('drydock watch loop off a terminal: a line per change', () => {
  it('draws each change once, then what the closed workflow ends with, and returns its result', async () => {
    const out = log();
    const s = scripted([
      { phase: 'planning', done: 0 },
      { phase: 'planning', done: 0 },
      { phase: 'progressing', done: 1 },
    ]);
    const closing = (value: string, last: { phase: string } | undefined): Frame[] => [{ done: 2, total: 2, label: `${value} after ${last?.phase}` }];
    const value = await follow(phaseView(s.poll), s.closed, closing, { title: 'rollout/p1/r1', intervalMs: 1, stream: out.stream });
    assert.equal(value, 'result');
    assert.deepEqual(out.lines(), ['rollout/p1/r1: planning (0/2 nodes)', 'rollout/p1/r1: progressing (1/2 nodes)', 'rollout/p1/r1: result after progressing (2/2 nodes)']);
    assert.equal(s.polls(), 3, 'no poll after the workflow closed');
  });

  it('the same frame drawn twice is one line (views may redraw every poll)', async () => {
    const out = log();
    const s = scripted([1, 1, 1]);
    await follow({ unit: 'rounds', poll: s.poll, frames: (n) => [{ done: n, total: 5, label: 'training' }] }, s.closed, () => [], { title: 'train/j', intervalMs: 1, stream: out.stream });
    assert.deepEqual(out.lines(), ['train/j: training (1/5 rounds)']);
  });

  it('a poll nobody answers shows a waiting line at the last known position, and the watch goes on', async () => {
    const out = log();
    const s = scripted<{ phase: string; done: number }>([{ phase: 'progressing', done: 1 }, new Error('no poller'), { phase: 'analyzing', done: 1 }]);
    await follow(phaseView(s.poll), s.closed, () => [], { title: 'rollout/p1/r1', intervalMs: 1, stream: out.stream });
    assert.deepEqual(out.lines(), ['rollout/p1/r1: progressing (1/2 nodes)', `rollout/p1/r1: ${WAITING_FOR_WORKER} (1/2 nodes)`, 'rollout/p1/r1: analyzing (1/2 nodes)']);
  });

  it('a Temporal server that is gone (gRPC UNAVAILABLE) ends the watch with that error, for exit 3', async () => {
    const out = log();
    const gone = Object.assign(new Error('14 UNAVAILABLE: No connection established'), { code: 14 });
    // Closes on its own later, so a loop that swallowed the error would end without it.
    const closesLater = sleep(1_000).then(() => 'closed');
    let polls = 0;
    const view = phaseView(async () => {
      polls += 1;
      if (polls > 1) throw gone;
      return { phase: 'progressing', done: 0 };
    });
    await assert.rejects(follow(view, closesLater, () => [], { title: 'rollout/p1/r1', intervalMs: 1, stream: out.stream }), (err) => err === gone);
    assert.equal(polls, 2);
    assert.deepEqual(out.lines(), ['rollout/p1/r1: progressing (0/2 nodes)']);
  });
});

describe('drydock progress on a terminal', () => {
  it('draws no bar until the total is known (cli-progress would draw 0/0 as a full bar)', () => {
    const out = log(true);
    const progress = createProgress('rollout/p1/r1', 'nodes', out.stream);
    progress.update(0, 0, 'planning');
    assert.equal(out.text(), '');
    progress.update(1, 4, 'progressing');
    progress.stop();
    assert.match(out.text(), /rollout\/p1\/r1 [█░]+ 1\/4 nodes \| progressing/);
  });
});

describe('drydock exit codes for a closed workflow', () => {
  const failed = (cause: Error) => new WorkflowFailedError('Workflow execution failed', cause, RetryState.NON_RETRYABLE_FAILURE);

  it('a failure exits 1 naming its type; input the workflow rejected exits 2', () => {
    const f = workflowFailure(failed(ApplicationFailure.create({ type: 'ReplaceFailed', message: 'no capacity', nonRetryable: true })), 'replace/p1/n1');
    assert.equal(f.exitCode, EXIT.workflowFailed);
    assert.equal(f.message, 'replace/p1/n1 failed (ReplaceFailed): no capacity');
    assert.deepEqual(f.details, { status: 'FAILED', workflowId: 'replace/p1/n1', error: { type: 'ReplaceFailed', message: 'no capacity' } });
    const bad = workflowFailure(failed(ApplicationFailure.create({ type: 'InvalidArgument', message: 'workers: must be between 1 and 64, got 65', nonRetryable: true })), 'train/j');
    assert.equal(bad.exitCode, EXIT.badInput);
    assert.equal(bad.message, 'train/j rejected its input: workers: must be between 1 and 64, got 65');
  });

  it('terminated and timed-out runs exit 1 with their status for --json', () => {
    const terminated = workflowFailure(failed(new TerminatedFailure('by an operator')), 'backup/b/t');
    assert.equal(terminated.exitCode, EXIT.workflowFailed);
    assert.equal(terminated.message, 'backup/b/t was terminated: by an operator');
    assert.equal((terminated.details as { status: string }).status, 'TERMINATED');
    const timedOut = workflowFailure(failed(new TimeoutFailure('timed out', undefined, 'START_TO_CLOSE')), 'backup/b/t');
    assert.equal(timedOut.message, 'backup/b/t was timed out: timed out');
    assert.equal((timedOut.details as { status: string }).status, 'TIMED_OUT');
  });
});

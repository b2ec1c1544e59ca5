import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, RetryState } from '@temporalio/common';
import type { RolloutResult, RolloutStatus } from '../../workflows/rollout/api.ts';
import { checkMaxUnavailable, countOrPercent, rolloutInput, rolloutRef } from '../../scripts/cli/rollout/input.ts';
import { resultText, rolloutTable, startedText, unansweredStatusText } from '../../scripts/cli/rollout/render.ts';
import { rolloutFailure } from '../../scripts/cli/rollout/workflow.ts';
import { EXIT } from '../../scripts/cli/runtime.ts';
import { assertBadInput as badInput, progressingRollout } from './cliTestKit.ts';

/**
 * The pure parts of `drydock rollout`, without a server: which rollout a command names, the value
 * of set-max-unavailable, what start, status and list print, and how a finished rollout maps to
 * an exit code. (Flags → input and the watch's change lines: rolloutCli.test.ts.)
 */

const status: RolloutStatus = {
  ...progressingRollout,
  phase: 'rolled-back',
  reason: 'analysis of batch 1 failed',
  step: 1,
  counts: { total: 2, pending: 0, inProgress: 0, done: 0, failed: 0, rolledBack: 1 },
  nodes: [
    { id: 'n1', state: 'rolled-back', direction: 'rollback', batch: 0 },
    { id: 'n2', state: 'pending', direction: 'forward', batch: 1 },
  ],
  analyses: [{ batch: 0, ok: false, checks: 3, failures: 3, maxLatencyMs: 41.6, meanLatencyMs: 30.2, reason: "no 'xyzzy' in the output", at: '2026-11-23T09:00:10.000Z' }],
  finishedAt: '2026-11-23T09:00:42.000Z',
};

describe('drydock rollout: which rollout a command names', () => {
  it('takes an id with --pool, or the full workflow id rollout/<pool>/<id>', () => {
    assert.deepEqual(rolloutRef('r1', 'p1'), { pool: 'p1', id: 'r1', workflowId: 'rollout/p1/r1' });
    assert.deepEqual(rolloutRef('rollout/p1/r1', undefined), { pool: 'p1', id: 'r1', workflowId: 'rollout/p1/r1' });
    assert.deepEqual(rolloutRef('rollout/p1/r1', 'p1'), { pool: 'p1', id: 'r1', workflowId: 'rollout/p1/r1' }, 'a --pool that agrees is fine');
  });

  it('exits 2 naming the flag or field: no pool, a pool that disagrees with the workflow id, a bad pool name or id', async () => {
    await badInput(() => rolloutRef('r1', undefined), /^pool: is required \(--pool, or give the workflow id rollout\/<pool>\/<id>\)$/);
    await badInput(() => rolloutRef('rollout/p1/r1', 'p2'), /^--pool: 'p2' does not match the workflow id rollout\/p1\/r1$/);
    await badInput(() => rolloutRef('r1', 'Bad_Pool'), /^pool: 'Bad_Pool' is not valid: /);
    await badInput(() => rolloutRef('bad id', 'p1'), /^id: 'bad id' is not a rollout id/);
    await badInput(() => rolloutRef('rollout/p1/a/b', undefined), /^id: 'a\/b' is not a rollout id/);
  });
});

describe('drydock rollout set-max-unavailable: the value is checked before connecting', () => {
  it('a count is a number, a percent stays a string', () => {
    assert.equal(checkMaxUnavailable('3'), 3);
    assert.equal(checkMaxUnavailable(' 25% '), '25%');
    assert.equal(countOrPercent(' 7 '), 7);
    assert.equal(countOrPercent('half'), 'half', 'anything else goes to the parser, which names the field');
  });

  it('what the workflow would refuse exits 2 naming maxUnavailable', async () => {
    await badInput(() => checkMaxUnavailable('0%'), /^maxUnavailable: expected a percent/);
    await badInput(() => checkMaxUnavailable('0'), /^maxUnavailable: /);
    await badInput(() => checkMaxUnavailable('half'), /^maxUnavailable: .*got 'half'/);
  });
});

describe('drydock rollout start: flags the spec does not set', () => {
  it('blue-green flags and a spec-less analysis make the input the workflow gets', async () => {
    const { input, id } = await rolloutInput({ pool: 'p1', model: '/m/x.gguf', sha256: 'ab'.repeat(32), id: 'bg', strategy: 'blueGreen', maxSurge: '50%', maxErrorRate: 0.1 });
    assert.equal(id, 'bg');
    assert.deepEqual(input, { pool: 'p1', strategy: 'blueGreen', maxSurge: '50%', analysis: { maxErrorRate: 0.1 }, target: { model: { uri: '/m/x.gguf', sha256: 'ab'.repeat(32) } } });
  });

  it('--pause-before-switch off leaves the field out, so the workflow default holds', async () => {
    const { input } = await rolloutInput({ pool: 'p1', model: '/m/x.gguf', sha256: 'ab'.repeat(32), pauseBeforeSwitch: false });
    assert.equal('pauseBeforeSwitch' in input, false);
  });
});

describe('drydock rollout: what start, status, list and --wait print', () => {
  it('start says how to follow the rollout and where the Web UI shows it', () => {
    const ref = { pool: 'p1', id: 'r1', workflowId: 'rollout/p1/r1' };
    assert.equal(
      startedText(ref, 'run-1', undefined, 'http://localhost:8233/namespaces/default/workflows/rollout%2Fp1%2Fr1/run-1'),
      'started rollout/p1/r1 (run run-1)\n  follow it: drydock rollout status r1 --pool p1\n  Web UI:    http://localhost:8233/namespaces/default/workflows/rollout%2Fp1%2Fr1/run-1',
    );
    assert.match(startedText(ref, 'run-1', 'prod', 'namespace prod, workflow id rollout/p1/r1'), /follow it: drydock rollout status r1 --pool p1 --namespace prod\n {2}Web UI: {4}namespace prod/);
  });

  it('the result line gives the outcome, the nodes, the model and the time taken, then each analysis', () => {
    const r: RolloutResult = { outcome: 'rolled-back', status };
    assert.equal(
      resultText('rollout/p1/r1', r),
      "rollout/p1/r1 rolled-back: 0/2 nodes on /models/new.gguf in 42 s\n  analysis of batch 1 FAILED: 3 checks, 3 failed, latency max 42 ms mean 30 ms (no 'xyzzy' in the output)",
    );
  });

  it('status without a worker says what Temporal knows and why there is no more', () => {
    assert.equal(unansweredStatusText('rollout/p1/r1', 'RUNNING', 'progressing'), 'rollout/p1/r1: RUNNING, progressing (no drydock worker answered the status query)');
    assert.equal(unansweredStatusText('rollout/p1/r1', 'RUNNING', undefined), 'rollout/p1/r1: RUNNING (no drydock worker answered the status query)');
  });

  it('list is a table with one row per rollout, or says there are none', () => {
    assert.equal(rolloutTable([], 'p1'), 'no rollouts recorded for pool p1');
    assert.equal(rolloutTable([], undefined), 'no rollouts recorded');
    const table = rolloutTable(
      [
        { workflowId: 'rollout/p1/b', id: 'b', pool: 'p1', status: 'RUNNING', phase: 'paused', startTime: '2026-11-23T10:00:00.000Z' },
        { workflowId: 'rollout/p1/a', id: 'a', pool: 'p1', status: 'FAILED', startTime: '2026-11-23T09:00:00.000Z' },
      ],
      'p1',
    ).split('\n');
    assert.equal(table.length, 3);
    assert.match(table[0], /^ID +POOL +STATUS +PHASE +STARTED$/);
    assert.match(table[1], /^b +p1 +RUNNING +paused +2026-11-23T10:00:00\.000Z$/);
    assert.match(table[2], /^a +p1 +FAILED +2026-11-23T09:00:00\.000Z$/, 'no phase recorded: the column stays empty');
    assert.equal(table[1].indexOf('RUNNING'), table[0].indexOf('STATUS'), 'columns line up');
  });
});

describe('drydock rollout --wait: how a closed rollout maps to an exit code', () => {
  const failed = (cause: Error) => new WorkflowFailedError('Workflow execution failed', cause, RetryState.NON_RETRYABLE_FAILURE);

  it('rolled back: exit 1 with the rollout reason, the RolloutResult in the --json details', () => {
    const result: RolloutResult = { outcome: 'rolled-back', status };
    const f = rolloutFailure(failed(ApplicationFailure.create({ type: 'RolloutRolledBack', message: 'rolled back', details: [result], nonRetryable: true })), 'rollout/p1/r1');
    assert.equal(f.error.exitCode, EXIT.workflowFailed);
    assert.equal(f.error.message, 'rollout/p1/r1 rolled back: analysis of batch 1 failed');
    assert.deepEqual(f.result, result);
    assert.deepEqual(f.error.details, { status: 'FAILED', workflowId: 'rollout/p1/r1', error: { type: 'RolloutRolledBack', message: 'rolled back' }, result });
  });

  it('aborted without a result: exit 1 with the failure message', () => {
    const f = rolloutFailure(failed(ApplicationFailure.create({ type: 'RolloutAborted', message: 'aborted by an operator', nonRetryable: true })), 'rollout/p1/r1');
    assert.equal(f.error.exitCode, EXIT.workflowFailed);
    assert.equal(f.error.message, 'rollout/p1/r1 was aborted: aborted by an operator');
    assert.equal(f.result, undefined);
  });

  it('input the workflow rejected exits 2; a cancelled rollout exits 1 as CANCELLED', () => {
    const rejected = rolloutFailure(failed(ApplicationFailure.create({ type: 'InvalidArgument', message: 'pool: is required', nonRetryable: true })), 'rollout/p1/r1');
    assert.equal(rejected.error.exitCode, EXIT.badInput);
    assert.equal(rejected.error.message, 'rollout/p1/r1 rejected its input: pool: is required');
    const cancelled = rolloutFailure(failed(new CancelledFailure('cancelled')), 'rollout/p1/r1');
    assert.equal(cancelled.error.exitCode, EXIT.workflowFailed);
    assert.equal((cancelled.error.details as { status: string }).status, 'CANCELLED');
    assert.equal(cancelled.error.message, 'rollout/p1/r1 was cancelled: cancelled');
  });
});

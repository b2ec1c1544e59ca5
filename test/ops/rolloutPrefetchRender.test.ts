import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderRolloutStatus } from '../../scripts/cli/rollout/render.ts';
import type { RolloutStatus } from '../../workflows/rollout/api.ts';
import { rolloutDetails } from '../../workflows/rollout/state.ts';

const status = (): RolloutStatus => ({
  id: 'r1',
  pool: 'p',
  strategy: 'rolling',
  phase: 'progressing',
  target: { uri: 's3://acme/m.gguf', sha256: 'a'.repeat(64) },
  step: 0,
  steps: 2,
  batches: [['n1']],
  maxUnavailable: 1,
  maxDisrupted: 1,
  poolBudget: true,
  counts: { total: 3, pending: 2, inProgress: 1, done: 0, failed: 0, rolledBack: 0 },
  nodes: [
    { id: 'n1', state: 'swapping', direction: 'forward', batch: 0, prefetch: { state: 'ready', bytes: 4 * 2 ** 30, seconds: 12.5, resumedFromBytes: 2 ** 30 } },
    { id: 'n2', state: 'pending', direction: 'forward', prefetch: { state: 'ready', bytes: 4 * 2 ** 30, seconds: 9 } },
    { id: 'n3', state: 'pending', direction: 'forward', prefetch: { state: 'prefetching' } },
  ],
  analyses: [],
  events: [],
  startedAt: '2026-12-03T07:00:00.000Z',
});

describe('rollout status with prefetch', () => {
  it('shows prefetching (with live progress), ready to swap and swapping per node', () => {
    const text = renderRolloutStatus(status(), 'RUNNING', new Map([['n3', { bytes: 2 ** 30, totalBytes: 4 * 2 ** 30, bytesPerSecond: 100 * 2 ** 20, etaSeconds: 30.5 }]]));
    assert.match(text, /n1 +batch 1 +swapping +downloaded in 12\.5 s \(resumed at 1024 MiB\)/);
    assert.match(text, /n2 +ready to swap +downloaded in 9 s/);
    assert.match(text, /n3 +prefetching +downloading 1024 MiB of 4096 MiB \(25 %\) at 100 MiB\/s, ETA 31 s/);
    const ui = rolloutDetails(status());
    assert.match(ui, /- prefetching: n3/);
    assert.match(ui, /- ready to swap: n2/);
    assert.match(ui, /- swapping: n1/);
  });
});

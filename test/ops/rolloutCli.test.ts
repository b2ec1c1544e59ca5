import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import { ROLLOUT_ID } from '../../workflows/inputs/rollingUpdate.ts';
import type { RolloutStatus } from '../../workflows/rollout/api.ts';
import { rolloutInput } from '../../scripts/cli/rollout/input.ts';
import { defaultRolloutId } from '../../scripts/cli/rollout/model.ts';
import { renderRolloutStatus, rolloutChanges } from '../../scripts/cli/rollout/render.ts';
import { runCli } from '../helpers/cli.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { assertBadInput, progressingRollout } from './cliTestKit.ts';
import { allServing, rolloutHarness } from '../rollout/helpers.ts';

/**
 * `drydock rollout …`: input checks that need no workflow (exit 2 naming the field), the watch's
 * change lines, and `start --wait` end to end on real agents serving tiny GGUF models.
 */

describe('drydock rollout start: input from flags and --spec, checked before anything starts', () => {
  let dir: string;
  let model: string;
  let modelSha: string;
  // Nothing listens on port 1: a command that gets as far as connecting exits 3.
  const cli = (args: string[]) => runCli<{ message: string }>(['--address', '127.0.0.1:1', ...args], {}, 60_000);
  const rejects = (flags: Parameters<typeof rolloutInput>[0], message: RegExp) => assertBadInput(() => rolloutInput(flags), message);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'drydock-rollout-cli-'));
    model = join(dir, 'tiny llama Q4.gguf');
    const bytes = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31) % 251));
    writeFileSync(model, bytes);
    modelSha = createHash('sha256').update(bytes).digest('hex');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('bad flags exit 2 naming the field: missing --pool, bad --max-unavailable, missing model file', async () => {
    const noPool = await cli(['--json', 'rollout', 'start', '--model', model]);
    assert.equal(noPool.code, 2, noPool.stderr);
    assert.match(noPool.json().message, /^pool: is required \(--pool\)/);

    const badMax = await cli(['--json', 'rollout', 'start', '--pool', 'p1', '--model', model, '--max-unavailable', 'half']);
    assert.equal(badMax.code, 2, badMax.stderr);
    assert.match(badMax.json().message, /^maxUnavailable: expected a percent like "25%".*got 'half' \(from --max-unavailable\)$/);

    const missing = await cli(['rollout', 'start', '--pool', 'p1', '--model', join(dir, 'nope.gguf')]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /--model: cannot read .*nope\.gguf to compute its sha256 \(ENOENT\); give --sha256/);

    const badNumber = await cli(['rollout', 'start', '--pool', 'p1', '--model', model, '--analysis-seconds', 'soon']);
    assert.equal(badNumber.code, 2);
    assert.match(badNumber.stderr, /--analysis-seconds <s>' argument 'soon' is invalid/);

    const badValue = await cli(['rollout', 'set-max-unavailable', 'r1', '0%', '--pool', 'p1']);
    assert.equal(badValue.code, 2, 'checked before connecting');
    assert.match(badValue.stderr, /maxUnavailable: expected a percent/);
    const noPoolForUpdate = await cli(['rollout', 'pause', 'r1']);
    assert.equal(noPoolForUpdate.code, 2);
    assert.match(noPoolForUpdate.stderr, /pool: is required \(--pool, or give the workflow id rollout\/<pool>\/<id>\)/);
  });

  it('good input gets as far as connecting: exit 3 when Temporal cannot be reached', async () => {
    const r = await cli(['rollout', 'start', '--pool', 'p1', '--model', model, '--wait']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /cannot reach Temporal at 127\.0\.0\.1:1/);
  });

  it('more bad input names the field, and the flag or spec that set it', async () => {
    await rejects({ pool: 'p1', model, strategy: 'canary' }, /^strategy: expected 'rolling' or 'blueGreen', got "canary" \(from --strategy\)$/);
    await rejects({ pool: 'p1', model, steps: '[{"batch": 1}, {"pause": {"minutes": 5}}]' }, /^steps\[1\]\.pause\.minutes: unknown field .*\(from --steps\)$/);
    await rejects({ pool: 'p1', model, steps: 'batch 1' }, /^--steps: not JSON/);
    await rejects({ pool: 'p1', model, sha256: 'abc' }, /^target\.model\.sha256: .*64 hex digits \(from --sha256\)$/);
    await rejects({ pool: 'p1' }, /^target\.model\.uri: is required \(--model FILE/);
    await rejects({ pool: 'p1', model, id: '-bad id' }, /^--id: '-bad id' is not valid/);
    await rejects({ pool: 'p1', model, maxErrorRate: 5 }, /^analysis\.maxErrorRate: must be between 0 and 1, got 5 \(from --max-error-rate\)$/);
    const spec = join(dir, 'bad.json');
    writeFileSync(spec, JSON.stringify({ pool: 'p1', target: { model: { uri: model, sha256: modelSha } }, analysis: { failureLimit: -1 } }));
    await rejects({ spec }, new RegExp(`^analysis\\.failureLimit: must be between 0 and 10000, got -1 \\(in ${spec.replace(/[.]/g, '\\.')}\\)$`));
    await rejects({ spec: join(dir, 'absent.json') }, /^--spec: cannot read/);
  });

  it('computes the sha256 of the model file and makes its path absolute', async () => {
    const { input, id } = await rolloutInput({ pool: 'p1', model: relative(process.cwd(), model) });
    assert.deepEqual(input.target.model, { uri: model, sha256: modelSha });
    assert.match(id, /^tiny-llama-Q4-\d{8}T\d{6}Z$/);
    const given = await rolloutInput({ pool: 'p1', model: '/models/on-the-nodes-only.gguf', sha256: 'AB'.repeat(32), id: 'r1' });
    assert.deepEqual(given.input.target.model, { uri: '/models/on-the-nodes-only.gguf', sha256: 'AB'.repeat(32) }, 'no local file is read when --sha256 is given');
    assert.equal(given.id, 'r1');
    const uri = await rolloutInput({ pool: 'p1', model: `file://${model.replace(/ /g, '%20')}` });
    assert.equal(uri.input.target.model.uri, model);
  });

  it('--spec gives the full input and flags override its fields', async () => {
    const spec = join(dir, 'rollout.json');
    writeFileSync(
      spec,
      JSON.stringify({
        pool: 'from-spec',
        target: { model: { uri: '/models/old.gguf', sha256: '0'.repeat(64) } },
        maxUnavailable: 2,
        steps: [{ batch: 1 }, { pause: {} }],
        analysis: { prompt: 'Say hi.', expect: 'hi', intervalSeconds: 10 },
        onFailure: 'pause',
      }),
    );
    const same = await rolloutInput({ spec });
    assert.deepEqual(same.input.target.model, { uri: '/models/old.gguf', sha256: '0'.repeat(64) }, 'the spec alone is used as written');
    assert.match(same.id, /^old-\d{8}T\d{6}Z$/);

    const { input } = await rolloutInput({ spec, pool: 'p2', model, maxUnavailable: '25%', expect: 'hello', analysisSeconds: 0, onFailure: 'rollback' });
    assert.deepEqual(input, {
      pool: 'p2',
      target: { model: { uri: model, sha256: modelSha } },
      maxUnavailable: '25%',
      steps: [{ batch: 1 }, { pause: {} }],
      analysis: { prompt: 'Say hi.', expect: 'hello', intervalSeconds: 0 },
      onFailure: 'rollback',
    });
    const blueGreen = await rolloutInput({ pool: 'p2', model, strategy: 'blueGreen', maxSurge: '2', scaleDownDelay: 30, pauseBeforeSwitch: true, maxLatencyMs: 500, prompt: 'Hi' });
    assert.deepEqual(
      { ...blueGreen.input, target: undefined },
      { pool: 'p2', target: undefined, strategy: 'blueGreen', maxSurge: 2, scaleDownDelaySeconds: 30, pauseBeforeSwitch: true, analysis: { prompt: 'Hi', maxLatencyMs: 500 } },
    );
  });

  it('default ids are unique per second, readable and valid rollout ids', () => {
    const at = new Date('2026-11-23T09:30:05.123Z');
    assert.equal(defaultRolloutId('/models/Llama-3.1-8B.Q4_K_M.gguf', at), 'Llama-3.1-8B.Q4_K_M-20261123T093005Z');
    assert.equal(defaultRolloutId('/m/__(weird) name!.bin', at), 'weird-name-20261123T093005Z');
    assert.equal(defaultRolloutId('/m/___.gguf', at), 'rollout-20261123T093005Z');
    const long = defaultRolloutId(`/m/${'x'.repeat(200)}.gguf`, at);
    assert.equal(long.length, 64);
    for (const id of [long, defaultRolloutId('/m/ümlaut.gguf', at)]) assert.match(id, ROLLOUT_ID);
  });
});

describe('drydock rollout --wait: lines only when something changes', () => {
  const base = progressingRollout;

  it('reports phase changes, nodes finishing or failing and new analyses, and nothing else', () => {
    assert.deepEqual(rolloutChanges(undefined, base), ['progressing']);
    assert.deepEqual(rolloutChanges(base, { ...base, nodes: [{ ...base.nodes[0], state: 'swapping' }, base.nodes[1]] }), [], 'steps in between are not worth a line');
    const done: RolloutStatus = { ...base, phase: 'analyzing', nodes: [{ ...base.nodes[0], state: 'done' }, base.nodes[1]], counts: { ...base.counts, inProgress: 0, done: 1 } };
    assert.deepEqual(rolloutChanges(base, done), ['progressing: node n1 done', 'analyzing'], 'what happened while progressing, then where it stands');
    assert.deepEqual(rolloutChanges(done, done), []);
    const analysed: RolloutStatus = {
      ...done,
      phase: 'rolling-back',
      reason: 'analysis of batch 1 failed',
      analyses: [{ batch: 0, ok: false, checks: 3, failures: 3, maxLatencyMs: 41.6, meanLatencyMs: 30.2, reason: "no 'xyzzy' in the output", at: '2026-11-23T09:00:10.000Z' }],
    };
    assert.deepEqual(rolloutChanges(done, analysed), [
      "analyzing: analysis of batch 1 FAILED: 3 checks, 3 failed, latency max 42 ms mean 30 ms (no 'xyzzy' in the output)",
      'rolling-back: analysis of batch 1 failed',
    ]);
    const paused: RolloutStatus = { ...done, phase: 'paused', reason: 'paused by an operator' };
    assert.deepEqual(rolloutChanges(done, paused), ['paused: paused by an operator']);
  });

  it('status renders phase, nodes, batches and analyses on one screen', () => {
    const text = renderRolloutStatus({ ...base, analyses: [{ batch: 0, ok: true, checks: 2, failures: 0, maxLatencyMs: 12, meanLatencyMs: 10, at: 'x' }] }, 'RUNNING');
    assert.match(text, /^rollout\/p1\/r1: RUNNING, progressing\n/);
    assert.match(text, /rolling to \/models\/new\.gguf \(sha256 aaaaaaaaaaaa…\), step 1\/2, maxUnavailable 1/);
    assert.match(text, /nodes: 0\/2 done, 1 in progress, 1 pending, 0 failed, 0 rolled back/);
    assert.match(text, /batches: 1: n1 \| 2: n2/);
    assert.match(text, /\n {2}n1 +batch 1 +draining\n/);
    assert.match(text, /analysis of batch 1 passed: 2 checks, 0 failed/);
  });
});

describe('drydock rollout start --wait on real agents serving tiny GGUF models', () => {
  const TQ = 'rollout-cli';
  const POOL = 'rcli';
  const NODES = 2;
  const spec: FleetPoolSpec = {
    name: POOL,
    minNodes: 1,
    maxNodes: 4,
    health: { probeIntervalSeconds: 1, unhealthyAfter: 3, unreachableAfterSeconds: 30, drainTimeoutSeconds: 20 },
    disruption: { maxUnavailable: 1, minHealthy: 1 },
  };
  const h = rolloutHarness({ taskQueue: TQ, spec, nodes: NODES });
  // The CLI's JSON, checked field by field.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const cli = (args: string[]) => runCli<Record<string, any>>(args, { TEMPORAL_ADDRESS: h.env.address, TEMPORAL_NAMESPACE: 'default', DRYDOCK_TASK_QUEUE: TQ }, 240_000);

  it('rolls model B across the pool: a line per change off a TTY, every node done, exit 0', async () => {
    const { b } = h.models;
    // No --sha256: the CLI reads the model file (the agents run on this machine) for it.
    const r = await cli(['rollout', 'start', '--pool', POOL, '--model', b.path, '--id', 'to-b', '--analysis-seconds', '0', '--max-latency-ms', '120000', '--wait']);
    assert.equal(r.code, 0, `${r.stderr}\nworker: ${h.worker.output().slice(-2000)}`);
    assert.match(r.stdout, new RegExp(`^rollout/${POOL}/to-b succeeded: ${NODES}/${NODES} nodes on ${b.path.replace(/[.]/g, '\\.')} in \\d+ s\n`));
    assert.match(r.stderr, new RegExp(`^started rollout/${POOL}/to-b \\(run \\S+\\)\n  follow it: drydock rollout status to-b --pool ${POOL}\n  Web UI: +http://localhost:\\d+/namespaces/default/workflows/rollout%2F${POOL}%2Fto-b/`));
    for (const id of h.fleet.nodeIds) assert.match(r.stderr, new RegExp(`Z rollout/${POOL}/to-b: [a-z-]+: node ${id} done \\([12]/${NODES} nodes\\)\n`));
    assert.match(r.stderr, new RegExp(`Z rollout/${POOL}/to-b: succeeded \\(${NODES}/${NODES} nodes\\)\n$`));
    assert.deepEqual(Object.values(await h.served()), Array(NODES).fill(b.sha256));
    await allServing(h);

    const status = await cli(['--json', 'rollout', 'status', 'to-b', '--pool', POOL]);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(status.json().status, 'COMPLETED');
    assert.equal(status.json().rollout.phase, 'succeeded');
    assert.equal(status.json().rollout.target.sha256, b.sha256);
    const human = await cli(['rollout', 'status', `rollout/${POOL}/to-b`]);
    assert.match(human.stdout, new RegExp(`^rollout/${POOL}/to-b: COMPLETED, succeeded\n.*\n  nodes: ${NODES}/${NODES} done`));
    const again = await cli(['rollout', 'start', '--pool', POOL, '--model', b.path, '--id', 'to-b']);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /--id: rollout 'to-b' of pool rcli exists already/);
  });

  it('updates: resume at a pause step is rejected by the workflow (exit 2 with its message); promote continues', async () => {
    const { a } = h.models;
    const start = await cli(['--json', 'rollout', 'start', '--pool', POOL, '--model', a.path, '--sha256', a.sha256, '--id', 'stepped', '--analysis-seconds', '0', '--max-latency-ms', '120000', '--steps', '[{"batch":1},{"pause":{}}]']);
    assert.equal(start.code, 0, start.stderr);
    assert.deepEqual({ ...start.json(), runId: undefined }, { workflowId: `rollout/${POOL}/stepped`, id: 'stepped', pool: POOL, runId: undefined, status: 'RUNNING' });
    await waitFor(async () => (await cli(['--json', 'rollout', 'status', 'stepped', '--pool', POOL])).json().rollout?.phase === 'paused', 180_000, 'the pause step');
    const resume = await cli(['rollout', 'resume', 'stepped', '--pool', POOL]);
    assert.equal(resume.code, 2, resume.stderr);
    assert.match(resume.stderr, /^drydock: resume: phase: /);
    const promote = await cli(['--json', 'rollout', 'promote', 'stepped', '--pool', POOL]);
    assert.equal(promote.code, 0, promote.stderr);
    assert.equal(promote.json().update, 'promote');
    await waitFor(async () => (await cli(['--json', 'rollout', 'status', 'stepped', '--pool', POOL])).json().status === 'COMPLETED', 180_000, 'the rollout to finish');
    assert.deepEqual(Object.values(await h.served()), Array(NODES).fill(a.sha256));
    const late = await cli(['rollout', 'pause', 'stepped', '--pool', POOL]);
    assert.equal(late.code, 2);
    assert.match(late.stderr, /pause: rollout 'stepped' in pool rcli is completed, not running/);
  });

  it('rolls back when the analysis never sees the expected text: exit 1 with the reason, the RolloutResult in --json', async () => {
    const { c, a } = h.models;
    const r = await cli(['--json', 'rollout', 'start', '--pool', POOL, '--model', c.path, '--id', 'never', '--analysis-seconds', '0', '--max-latency-ms', '120000', '--expect', 'never-generated-text', '--wait']);
    assert.equal(r.code, 1, r.stderr);
    const out = r.json();
    assert.equal(out.status, 'FAILED');
    assert.equal(out.error.type, 'RolloutRolledBack');
    assert.equal(out.result.outcome, 'rolled-back');
    assert.equal(out.result.status.phase, 'rolled-back');
    assert.match(r.stderr, new RegExp(`drydock: rollout/${POOL}/never rolled back: .*smoke test failed`));
    assert.deepEqual(Object.values(await h.served()), Array(NODES).fill(a.sha256), 'back on the model before the rollout');

    const list = await cli(['--json', 'rollout', 'list', '--pool', POOL]);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      list.json().rollouts.map((x: { id: string; status: string; phase: string }) => [x.id, x.status, x.phase]),
      [
        ['never', 'FAILED', 'rolled-back'],
        ['stepped', 'COMPLETED', 'succeeded'],
        ['to-b', 'COMPLETED', 'succeeded'],
      ],
    );
  });
});

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { holds, parseCondition } from '../../scripts/sim/expr.ts';
import { parseScenario, ScenarioError } from '../../scripts/sim/scenario.ts';

const DIR = 'scripts/sim/scenarios';
const fleet = 'fleet:\n  pools: [{ name: demo, nodes: 3 }]\n';
const pool = '  - start: pool\n    input: { name: demo, minNodes: 3, maxNodes: 3 }\n';
const bad = (text: string, message: RegExp) => assert.throws(() => parseScenario(text), (err: unknown) => err instanceof ScenarioError && message.test(err.message));

describe('scenario files', () => {
  it('every shipped scenario parses', () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 4);
    for (const f of files) {
      const s = parseScenario(readFileSync(join(DIR, f), 'utf8'), { work: '/tmp/w' });
      assert.equal(`${s.name}.yaml`, f, 'a scenario is named after its file');
    }
  });

  it('reads steps with their defaults and lines', () => {
    const s = parseScenario(`name: ok\n${fleet}steps:\n${pool}  - inject: xid\n    rack: 0\n  - kill: control\n  - wait: pool.demo.counts.healthy >= 3\n`);
    assert.equal(s.steps.length, 4);
    assert.deepEqual(s.steps[1], { index: 1, line: 7, label: 'inject xid on rack 0 of demo', action: 'inject', fault: 'xid', target: { pool: 'demo', rack: 0 }, code: 79, gpu: 0, celsius: 96, persistent: false, seconds: undefined });
    assert.equal(s.steps[2].action === 'kill' && s.steps[2].restart, true);
    assert.equal(s.steps[3].action === 'wait' && s.steps[3].timeoutSeconds, 60);
  });

  it('names the step, its line and the field of what is wrong', () => {
    bad('name: x\nsteps: [1]\n', /^scenario\.fleet: expected a mapping/);
    bad(`name: Bad_Name\n${fleet}steps:\n${pool}`, /^scenario\.name: expected lowercase/);
    bad(`name: x\n${fleet}steps:\n${pool}  - inject: lightning\n`, /^steps\[1\] \(line 7\) \(inject\)\.inject: expected one of xid, thermal/);
    bad(`name: x\n${fleet}steps:\n${pool}  - inject: xid\n    rack: -1\n`, /^steps\[1\] \(line 7\) \(inject\)\.rack: must be between 0 and 10000, got -1/);
    bad(`name: x\n${fleet}steps:\n${pool}  - inject: xid\n    rack: 0\n    node: 1\n`, /\.rack: give one of node, nodes, rack or zone, not node and rack/);
    bad(`name: x\n${fleet}steps:\n${pool}  - wait: pool.demo.counts.healthy == 3\n    timeout: 5\n`, /^steps\[1\] \(line 7\) \(wait\)\.timeout: unknown field for a 'wait' step \(allowed: wait, timeoutSeconds\)/);
    bad(`name: x\n${fleet}steps:\n${pool}  - wait: backup.nightly.phase == Completed\n`, /\.wait: condition .*no backup 'nightly' started by an earlier step/);
    bad(`name: x\n${fleet}steps:\n${pool}  - assert: fleet.demo.size == 3\n`, /\.assert: condition .*'fleet' is not a namespace/);
    bad(`name: x\n${fleet}steps:\n${pool}  - assert: provider.demo.nodes == 3\n`, /provider\.demo has \.live, \.running/);
    bad(`name: x\n${fleet}steps:\n  - start: pool\n    input: { name: demo, minNodes: 5, maxNodes: 3 }\n`, /^steps\[0\] \(line 5\) \(start\)\.input: not a valid pool input: .*maxNodes/);
    bad(`name: x\n${fleet}steps:\n  - start: pool\n    input: { name: other, minNodes: 1, maxNodes: 1 }\n`, /\.input\.name: no pool 'other' in the fleet/);
    bad(`name: x\n${fleet}steps:\n  - start: training\n    input: { name: t }\n`, /\.start: a training job needs trainers/);
    bad(`name: x\n${fleet}steps:\n${pool}  - kill: control\n    restart: true\n`, /^steps\[1\] \(line 7\): expected exactly one action .*got kill and restart/);
    bad(`name: x\n${fleet}steps:\n${pool}  - kill: scheduler\n`, /\(kill\)\.kill: expected one of control, trainer/);
    bad(`name: x\n${fleet}steps:\n${pool}  - inject: capacity\n    rack: 1\n`, /\.rack: unknown field for a provider fault \('capacity'\)/);
    bad(`name: x\n${fleet}steps:\n${pool}  - update: resumeRemediation\n    target: rollout.r1\n`, /\.target: no workflow labelled 'rollout\.r1'/);
    bad(`name: x\n${fleet}steps: [\n`, /^not valid YAML/);
  });

  it('conditions compare numbers, booleans and words', () => {
    const c = (t: string) => parseCondition(t, ['pool.demo']);
    assert.equal(holds(c('pool.demo.counts.healthy >= 3'), 3), true);
    assert.equal(holds(c('pool.demo.counts.healthy >= 3'), 2), false);
    assert.equal(holds(c('pool.demo.counts.healthy >= 3'), undefined), false);
    assert.equal(holds(c('pool.demo.phase == breaker-open'), 'breaker-open'), true);
    assert.equal(holds(c("pool.demo.phase != 'running'"), 'running'), false);
    assert.equal(holds(c('pool.demo.breaker.open == true'), true), true);
    assert.equal(holds(c('pool.demo.breaker.open'), false), false);
  });
});

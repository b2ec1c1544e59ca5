import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { backupInput } from '../../scripts/cli/backup/input.ts';
import { age, bytes, storeTable, workflowTable } from '../../scripts/cli/backup/render.ts';
import { checkPoolName, decimalNumber, isoDate, positiveNumber, positiveWholeNumber, wholeNumber } from '../../scripts/cli/flags.ts';
import { main } from '../../scripts/cli/main.ts';
import { readPoolSpec } from '../../scripts/cli/poolManager.ts';
import { EXIT } from '../../scripts/cli/runtime.ts';
import { assignDefined, readSpecFile } from '../../scripts/cli/spec.ts';
import { jobInput } from '../../scripts/cli/train.ts';
import { webUiUrl } from '../../scripts/cli/webUi.ts';
import { assertBadInput as badInput } from './cliTestKit.ts';

/**
 * What the CLI checks before it connects, without a server: spec files, flag values, the backup
 * and training inputs built from --spec and flags (exit 2 naming the flag or field), the Web UI
 * link, and the backup tables.
 */

let dir: string;
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
before(() => (dir = mkdtempSync(join(tmpdir(), 'drydock-cli-units-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('drydock --spec and -f files', () => {
  it('read YAML or JSON into one object', () => {
    assert.deepEqual(readSpecFile(file('a.yaml', 'name: a\nrounds: 3\n'), '--spec', 'the trainingJob input'), { name: 'a', rounds: 3 });
    assert.deepEqual(readSpecFile(file('a.json', '{"name":"a","sources":[]}'), '--spec', 'x'), { name: 'a', sources: [] });
  });

  it('exit 2 naming the flag and the file: missing, not YAML, not one object', async () => {
    const missing = join(dir, 'absent.yaml');
    await badInput(() => readSpecFile(missing, '--spec', 'x'), new RegExp(`^--spec: cannot read ${missing}: ENOENT`));
    await badInput(() => readSpecFile(file('bad.yaml', 'a: [\n'), '-f', 'x'), /^-f: .*bad\.yaml is not valid YAML or JSON: /);
    await badInput(() => readSpecFile(file('list.json', '[1,2]'), '--spec', 'the backup input'), /^--spec: .*list\.json must hold one object \(the backup input\)$/);
    await badInput(() => readSpecFile(file('empty.yaml', ''), '--spec', 'the backup input'), /must hold one object/);
  });

  it('a pool spec is checked by the workflow parser, naming the field', async () => {
    await badInput(() => readPoolSpec(file('pool.yaml', 'name: p1\nminNodes: 3\nmaxNodes: 2\n')), /^maxNodes: must be >= minNodes \(3\), got 2/);
    assert.equal(readPoolSpec(file('ok.yaml', 'name: p1\nminNodes: 1\nmaxNodes: 2\n')).name, 'p1');
  });

  it('flags override the fields they set and leave the others', () => {
    const spec: Record<string, unknown> = { name: 'a', rounds: 3, model: 'mlp' };
    assignDefined(spec, { name: 'b', rounds: undefined, workers: 2 });
    assert.deepEqual(spec, { name: 'b', rounds: 3, model: 'mlp', workers: 2 });
  });
});

describe('drydock flag values', () => {
  it('parse what they promise and refuse the rest with a reason commander prints', () => {
    assert.equal(wholeNumber('0'), 0);
    assert.equal(positiveWholeNumber('12'), 12);
    assert.equal(decimalNumber('0.05'), 0.05);
    assert.equal(positiveNumber('1.5'), 1.5);
    assert.equal(isoDate('2026-01-01T00:00:00Z').toISOString(), '2026-01-01T00:00:00.000Z');
    for (const [parse, v, reason] of [
      [wholeNumber, '1.5', /whole number/],
      [wholeNumber, '-1', /whole number/],
      [positiveWholeNumber, '0', /above 0/],
      [decimalNumber, '5%', /number such as 0\.05/],
      [positiveNumber, '0', /above 0/],
      [isoDate, 'yesterday', /'yesterday' is not a date/],
    ] as const) {
      assert.throws(() => (parse as (v: string) => unknown)(v), (err: unknown) => err instanceof InvalidArgumentError && reason.test(err.message), `${parse.name}(${v})`);
    }
  });

  it('a bad value exits 2 before anything connects (nothing listens on port 1: a command that got that far would exit 3)', async () => {
    const unreachable = ['node', 'drydock', '--address', '127.0.0.1:1'];
    assert.equal(await main([...unreachable, 'pool', 'status', 'p1', '--limit', 'x']), EXIT.badInput);
    assert.equal(await main([...unreachable, 'train', 'start', '--name', 'j', '--rounds', '0']), EXIT.badInput);
    assert.equal(await main([...unreachable, 'backup', 'schedule', 'backfill', 'x', '--from', 'yesterday', '--to', 'now']), EXIT.badInput);
  });

  it('pool names are checked as the workflows check them', async () => {
    checkPoolName('gpu-a100');
    await badInput(() => checkPoolName('Bad_Pool'), /^pool: 'Bad_Pool' is not valid: /);
  });
});

describe('drydock backup run: the input from --spec and flags', () => {
  it('--source name=path, --dest, retention flags and --no-verify make the backup input', () => {
    const input = backupInput({ name: 'nightly', source: ['models=/srv/models', 'cfg=/etc/drydock'], dest: 's3://drydock-backups/p', keepLast: 3, verify: false });
    assert.deepEqual(input, {
      name: 'nightly',
      destination: 's3://drydock-backups/p',
      sources: [
        { type: 'files', name: 'models', path: '/srv/models' },
        { type: 'files', name: 'cfg', path: '/etc/drydock' },
      ],
      retention: { keepLast: 3 },
      verify: false,
    });
  });

  it('flags override the spec; retention flags merge into its retention', () => {
    const spec = file('backup.yaml', 'name: spec\ndestination: file:///backups\nsources:\n  - { type: files, name: m, path: /m }\nretention: { keepLast: 5, maxAgeDays: 30 }\n');
    const input = backupInput({ spec, name: 'flag', keepLast: 2 });
    assert.equal(input.name, 'flag');
    assert.deepEqual(input.retention, { keepLast: 2, maxAgeDays: 30 });
    assert.equal(input.destination, 'file:///backups');
  });

  it('exit 2 naming the flag or field', async () => {
    await badInput(() => backupInput({ name: 'b', source: ['no-equals'], dest: 'file:///x' }), /^--source: 'no-equals' must be name=\/absolute\/path$/);
    await badInput(() => backupInput({ name: 'b', source: ['m=relative/dir'], dest: 'file:///x' }), /^sources\[0\]\.path: 'relative\/dir' must be an absolute path$/);
    await badInput(() => backupInput({ name: 'b', source: ['m=/x'], dest: 'gs://b/x' }), /^destination: unknown scheme/);
    await badInput(() => backupInput({ source: ['m=/x'], dest: 'file:///x' }), /^name: is required/);
  });
});

describe('drydock train start: the input from --spec and flags', () => {
  it('flags win over the spec; --checkpoint sets only the checkpoint uri', () => {
    const spec = file('job.yaml', 'name: from-spec\nmodel: mlp\nrounds: 5\ncheckpoint:\n  uri: file:///a\n  everyRounds: 2\n');
    const input = jobInput({ spec, name: 'j', rounds: 2, checkpoint: 'file:///b' });
    assert.equal(input.name, 'j');
    assert.equal(input.rounds, 2);
    assert.equal(input.model, 'mlp');
    assert.deepEqual(input.checkpoint, { uri: 'file:///b', everyRounds: 2 });
  });

  it('exit 2 naming the field the workflow would refuse', async () => {
    await badInput(() => jobInput({ name: 'j', checkpoint: 'file:///b', workers: 65 }), /^workers: must be between 1 and 64/);
    await badInput(() => jobInput({ spec: file('list.yaml', '- 1\n') }), /^--spec: .* must hold one object \(the trainingJob input\)$/);
  });
});

describe('drydock Web UI links', () => {
  it('point at the dev server UI (port + 1000) on this machine, at Temporal Cloud, and nowhere else', () => {
    const path = '/namespaces/default/workflows/rollout%2Fp1%2Fr1/run-1';
    assert.equal(webUiUrl('localhost:7233', 'default', 'rollout/p1/r1', 'run-1'), `http://localhost:8233${path}`);
    assert.equal(webUiUrl('127.0.0.1:40123', 'default', 'rollout/p1/r1', 'run-1'), `http://localhost:41123${path}`);
    assert.equal(webUiUrl('[::1]:7233', 'default', 'rollout/p1/r1', 'run-1'), `http://localhost:8233${path}`);
    assert.equal(webUiUrl('localhost', 'default', 'rollout/p1/r1', 'run-1'), `http://localhost:8233${path}`, 'the default port');
    assert.equal(webUiUrl('prod.a1b2c.tmprl.cloud:7233', 'prod.a1b2c', 'train/j'), 'https://cloud.temporal.io/namespaces/prod.a1b2c/workflows/train%2Fj');
    assert.equal(webUiUrl('temporal.internal:7233', 'default', 'train/j'), undefined, "another server's UI address is unknown");
  });
});

describe('drydock backup list tables', () => {
  const now = Date.parse('2026-11-23T12:00:00Z');

  it('sizes and ages read at a glance', () => {
    assert.deepEqual([bytes(0), bytes(1023), bytes(1536), bytes(5 * 1024 ** 3)], ['0 B', '1023 B', '1.5 KiB', '5.0 GiB']);
    assert.deepEqual([age('2026-11-23T11:55:00Z', now), age('2026-11-23T09:30:00Z', now), age('2026-11-20T12:00:00Z', now)], ['5m', '2.5h', '3.0d']);
  });

  it('a store table has a row per backup with phase, verification, files, size and age; empty says so', () => {
    assert.equal(storeTable('file:///b', [], now), 'no backups in file:///b');
    const rows = storeTable(
      'file:///b',
      [{ backupId: 'n/20261123T110000Z', name: 'n', phase: 'Completed', verified: false, files: 12, bytes: 2048, snapshots: 1, createdAt: '2026-11-23T11:00:00Z' }],
      now,
    ).split('\n');
    assert.match(rows[0], /^BACKUP +PHASE +VERIFIED +FILES +SIZE +SNAPS +AGE$/);
    assert.match(rows[1], /^n\/20261123T110000Z +Completed +NO +12 +2\.0 KiB +1 +1\.0h$/, 'a failed verification stands out');
    assert.equal(workflowTable([], now), 'no backup workflows recorded');
    assert.match(workflowTable([{ workflowId: 'backup/n/t', status: 'RUNNING', phase: 'InProgress', startTime: '2026-11-23T11:58:00Z' }], now), /^backup\/n\/t +RUNNING +InProgress +2m$/);
  });
});

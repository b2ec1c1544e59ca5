import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { join } from 'node:path';
import { workflowBundle } from '../../scripts/lib/bundle.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { startDevServer } from '../../scripts/lib/temporal.ts';
import type { DeploymentReport } from '../../scripts/lib/versioning.ts';
import { setCurrentVersion } from '../../scripts/lib/versioning.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { deploymentOptions, loadWorkerVersion } from '../../workers/versioning.ts';
import * as workflows from '../../workflows/index.ts';
import { cliUserEnv, runCli } from '../helpers/cli.ts';

describe('worker versioning settings', () => {
  it('defaults to deployment drydock and the package version plus the commit; DRYDOCK_* override', () => {
    assert.match(loadWorkerVersion({}).buildId, /^0\.1\.0-[0-9a-f]{12}(-dirty\.[0-9a-f]{8})?$/);
    assert.equal(loadWorkerVersion({}).deploymentName, 'drydock');
    assert.deepEqual(loadWorkerVersion({ DRYDOCK_DEPLOYMENT: 'fleet-a', DRYDOCK_BUILD_ID: '2.0.0-abc' }), { deploymentName: 'fleet-a', buildId: '2.0.0-abc' });
    assert.throws(() => loadWorkerVersion({ DRYDOCK_BUILD_ID: 'has space' }), /DRYDOCK_BUILD_ID: 'has space' is not a usable build id/);
    assert.throws(() => loadWorkerVersion({ DRYDOCK_DEPLOYMENT: 'a.b' }), /DRYDOCK_DEPLOYMENT: 'a.b'/);
    assert.throws(() => loadWorkerVersion({}, () => undefined), /DRYDOCK_BUILD_ID: not set, and this is not a git checkout/);
  });

  it('a control worker with an unusable build id exits 2 naming DRYDOCK_BUILD_ID', async () => {
    const r = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'workers/control.ts')], { cwd: REPO_ROOT, timeout: 60_000, env: { ...cliUserEnv, DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: 'a'.repeat(32), DRYDOCK_BUILD_ID: 'bad:id', TEMPORAL_ADDRESS: '127.0.0.1:1' } }, (err, so, se) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: so + se }),
      ),
    );
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /control worker: DRYDOCK_BUILD_ID: 'bad:id' is not a usable build id/);
  });

  it('every workflow type declares its versioning behaviour: the ones that finish are pinned, fleetPool auto-upgrades', () => {
    const behaviour = Object.fromEntries(Object.entries(workflows).map(([name, fn]) => [name, (fn as { workflowDefinitionOptions?: { versioningBehavior?: string } }).workflowDefinitionOptions?.versioningBehavior]));
    assert.deepEqual(behaviour, { replaceNode: 'PINNED', trainingJob: 'PINNED', backup: 'PINNED', restore: 'PINNED', fleetPool: 'AUTO_UPGRADE', verifyBackup: 'PINNED', rollingUpdate: 'PINNED' });
  });
});

describe('drydock workers status on a real dev server', () => {
  let env: TestWorkflowEnvironment;
  before(async () => (env = await startDevServer()));
  after(async () => env?.teardown());

  it('shows the current version, a pinned workflow still open on the old one, and that old version draining', async () => {
    const A = { deploymentName: 'drydock', buildId: 'test-a' };
    const B = { deploymentName: 'drydock', buildId: 'test-b' };
    const bundle = { codePath: await workflowBundle() };
    const workerA = await Worker.create({ connection: env.nativeConnection, taskQueue: 'ver', workflowBundle: bundle, workerDeploymentOptions: deploymentOptions(A) });
    const workerB = await Worker.create({ connection: env.nativeConnection, taskQueue: 'ver', workflowBundle: bundle, workerDeploymentOptions: deploymentOptions(B) });
    const status = async () => {
      const r = await runCli<DeploymentReport>(['--json', '--address', env.address, 'workers', 'status'], {}, 60_000);
      assert.equal(r.code, 0, r.stderr);
      return r.json();
    };
    await workerA.runUntil(async () => {
      await setCurrentVersion(env.client, A);
      // A training job with no trainer polling its queue stays open, pinned to A.
      const job = await env.client.workflow.start('trainingJob', { taskQueue: 'ver', workflowId: 'train/pinned', args: [{ name: 'pinned', workers: 1, rounds: 1, innerSteps: 1, checkpoint: { uri: 'file:///tmp/drydock-ver-ckpt' }, trainerQueue: 'nobody' }] });
      await waitFor(async () => (await job.describe()).raw.workflowExecutionInfo?.versioningInfo?.deploymentVersion?.buildId === 'test-a', 30_000, 'the job to run on A');
      await workerB.runUntil(async () => {
        await setCurrentVersion(env.client, B);
        await waitFor(async () => (await status()).versions.find((v) => v.buildId === 'test-a')?.openPinned.length === 1, 30_000, 'visibility to show the pinned job');
        const r = await status();
        assert.equal(r.current, 'test-b');
        const a = r.versions.find((v) => v.buildId === 'test-a')!;
        assert.deepEqual(a.openPinned, [{ workflowId: 'train/pinned', type: 'trainingJob' }]);
        assert.equal(a.current, false);
        await waitFor(async () => (await status()).versions.find((v) => v.buildId === 'test-a')?.drainage === 'draining', 30_000, 'A to report draining');
        const human = await runCli(['--address', env.address, 'workers', 'status'], {}, 60_000);
        assert.match(human.stdout, /deployment drydock: current test-b/);
        assert.match(human.stdout, /test-a {2}draining {2}1 pinned workflow\(s\) open/);
        assert.match(human.stdout, /trainingJob {2}train\/pinned/);
        await job.terminate('test done');
        await waitFor(async () => (await status()).versions.find((v) => v.buildId === 'test-a')?.drainage === 'drained', 60_000, 'A to report drained');
      });
    });
  });

  it('exits 2 naming the deployment when none polled', async () => {
    const r = await runCli(['--address', env.address, 'workers', 'status', '--deployment', 'nope'], {}, 60_000);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /deployment 'nope': no worker of it has polled/);
  });
});

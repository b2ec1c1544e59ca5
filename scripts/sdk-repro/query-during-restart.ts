/**
 * Reproduces, with no drydock code, the TS SDK 1.24 bug behind the chaos soak's workflow task
 * failures (docs/operations.md, "Known SDK limit"): a query sent while no worker runs reaches the
 * restarted worker before the workflow task that became pending meanwhile (a timer fired); the
 * worker applies that task's events on the previous task's time and in their own activation, then
 * completes the real task with the commands it made then. A replay of the history decides at
 * another time (clockLoop), or orders an update that came with the task before them (updateLoop),
 * and fails with a nondeterminism error.
 *
 *   node --import tsx scripts/sdk-repro/query-during-restart.ts [clockLoop|updateLoop]
 *
 * Prints, per workflow, whether its history replays; exits 1 when one does not (the bug is there).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { NativeConnection, Worker } from '@temporalio/worker';
import { startDevServer } from '../lib/temporal.ts';

const WORKFLOWS = fileURLToPath(new URL('./workflows.ts', import.meta.url));

if (process.argv[2] === '--worker') {
  const connection = await NativeConnection.connect({ address: process.argv[3] });
  const worker = await Worker.create({ connection, taskQueue: 'sdk-repro', workflowsPath: WORKFLOWS, activities: { tick: async () => {} } });
  console.log('READY');
  await worker.run();
} else {
  const types = process.argv[2] ? [process.argv[2]] : ['clockLoop', 'updateLoop'];
  const env = await startDevServer();
  const startWorker = () =>
    new Promise<ChildProcess>((resolve) => {
      const c = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--worker', env.address], { stdio: ['ignore', 'pipe', 'ignore'] });
      c.stdout!.on('data', (d) => String(d).includes('READY') && resolve(c));
    });
  let broken = 0;
  try {
    for (const type of types) {
      let worker = await startWorker();
      const handle = await env.client.workflow.start(type, { taskQueue: 'sdk-repro', workflowId: `sdk-repro-${type}-${Date.now()}` });
      await sleep(2500);
      worker.kill('SIGKILL');
      // A dashboard polls through the outage; the timer fires while no worker runs.
      let polling = true;
      const poller = (async () => {
        while (polling) {
          await handle.query('count').catch(() => {});
          await sleep(300);
        }
      })();
      await sleep(2500);
      const update = type === 'updateLoop' ? handle.executeUpdate('bump').catch(() => {}) : undefined;
      await sleep(500);
      worker = await startWorker();
      await update;
      await handle.result().catch(() => {});
      polling = false;
      await poller;
      worker.kill('SIGKILL');
      try {
        await Worker.runReplayHistory({ workflowsPath: WORKFLOWS }, await handle.fetchHistory());
        console.log(`${type}: replays`);
      } catch (err) {
        broken++;
        console.log(`${type}: does NOT replay: ${String((err as Error).message).match(/\[TMPRL1100\][^"]*/)?.[0] ?? (err as Error).message}`);
      }
    }
  } finally {
    await env.teardown();
  }
  process.exit(broken ? 1 : 0);
}

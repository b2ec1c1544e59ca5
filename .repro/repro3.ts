import { Worker } from '@temporalio/worker';
import { spawn } from 'node:child_process';
import { startDevServer } from '/work/main/scripts/lib/temporal.ts';
const env = await startDevServer();
const client = env.client;
const startWorker = () => new Promise<ReturnType<typeof spawn>>((res) => {
  const c = spawn('node', ['--import', 'tsx', new URL('./worker.ts', import.meta.url).pathname, env.address], { stdio: ['ignore', 'pipe', 'ignore'] });
  c.stdout!.on('data', (d) => { if (String(d).includes('READY')) res(c); });
});
let c = await startWorker();
const h = await client.workflow.start('loop', { taskQueue: 'r', workflowId: `r-${Date.now()}` });
await new Promise((r) => setTimeout(r, 2500));
c.kill('SIGKILL');
let polling = true;
const poller = (async () => { while (polling) { await h.query('q').catch(() => {}); await new Promise((r) => setTimeout(r, 300)); } })();
await new Promise((r) => setTimeout(r, 2500)); // the timer fires while no worker runs
const upd = h.executeUpdate('bump').then((v) => console.log('update', v), (e) => console.log('update err', String(e).slice(0, 100)));
await new Promise((r) => setTimeout(r, 500));
c = await startWorker();
await upd;
try { await h.result(); } catch (e) { console.log('result err', String(e)); }
polling = false; await poller;
c.kill('SIGKILL');
const hist = await h.fetchHistory();
console.log('events', hist.events?.length, 'wft failures', hist.events?.filter((e) => e.workflowTaskFailedEventAttributes).length);
try { await Worker.runReplayHistory({ workflowsPath: new URL('./workflows.ts', import.meta.url).pathname }, hist); console.log('REPLAY OK'); }
catch (e) { console.log('REPLAY FAILED', String(e).slice(0, 400)); }
await env.teardown();

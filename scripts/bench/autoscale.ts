/**
 * Queue autoscaling on a step of load: the real fleetPool workflow and control worker over the
 * fleet simulator with simulated inference (every node a real gpu-agent, 4 slots, a model loaded at
 * boot). A closed loop of `clients` concurrent requests starts at once (the step), runs for
 * `hold` seconds, then stops.
 *
 *   node --import tsx scripts/bench/autoscale.ts [--nodes 2] [--clients 16] [--probe 1]
 *     [--up-after 5] [--down-after 10] [--boot 2] [--swap 1] [--generation-ms 1500] [--hold 40]
 *
 * Prints the time from the step to the scale-up decision (against upAfterSeconds: the goal is
 * within one probe interval of the delay), from the decision to the first new node serving, broken
 * down into provision (the workflow's request to the simulator's instance), boot and model load
 * (measured by the simulator), and drydock's overhead on top (goal ≤ 1 s), and the time from the
 * load's end to the scale-down decision (against downAfterSeconds) and to the last node's exit.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import type { PoolStatus } from '../../workflows/pool/api.ts';
import { inferenceLoad } from '../lib/inferenceLoad.ts';
import { startDevServer } from '../lib/temporal.ts';
import { waitFor } from '../lib/waitFor.ts';
import { startSimFleet, waitPoolAdopted } from './simFleet.ts';

const { values: a } = parseArgs({
  options: {
    nodes: { type: 'string', default: '2' },
    clients: { type: 'string', default: '16' },
    probe: { type: 'string', default: '1' },
    'up-after': { type: 'string', default: '5' },
    'down-after': { type: 'string', default: '10' },
    boot: { type: 'string', default: '2' },
    swap: { type: 'string', default: '1' },
    'generation-ms': { type: 'string', default: '1500' },
    hold: { type: 'string', default: '40' },
  },
});
const N = Number(a.nodes);
const POOL = 'bench-autoscale';
const TQ = 'bench-autoscale';
const token = randomBytes(24).toString('hex');
const MODEL = '/models/bench.gguf';

const env = await startDevServer();
const fleet = await startSimFleet({
  address: env.address,
  taskQueue: TQ,
  pool: POOL,
  nodes: N,
  token,
  simArgs: ['--inference', '--boot-seconds', a.boot!, '--swap-seconds', a.swap!, '--drain-seconds', '0', '--generation-ms', a['generation-ms']!, '--initial-model', MODEL],
  beforeWorker: (sim) => waitFor(async () => (await sim.timings(POOL)).filter((t) => t.swaps.some((s) => s.ok)).length === N, 60_000, 'initial models to load'),
});
const stop = async () => {
  for (const p of fleet.procs) p.kill('SIGKILL');
  await env.teardown();
};

try {
  const upAfter = Number(a['up-after']);
  const downAfter = Number(a['down-after']);
  const probe = Number(a.probe);
  const spec: FleetPoolSpec = {
    name: POOL,
    minNodes: N,
    maxNodes: N + 4,
    health: { probeIntervalSeconds: probe, drainTimeoutSeconds: 30 },
    autoscaling: { type: 'queue', targetQueuePerNode: 1, targetSlotUtilization: 1, upAfterSeconds: upAfter, downAfterSeconds: downAfter, maxStep: 2 },
    disruption: { maxUnavailable: 2, minHealthy: 0 },
  };
  const pool = await env.client.workflow.start('fleetPool', { taskQueue: TQ, workflowId: `pool/${POOL}`, args: [spec] });
  await waitPoolAdopted(pool, N);
  const status = () => pool.query<PoolStatus>('status');

  // The step: `clients` concurrent requests (scripts/lib/inferenceLoad.ts) over the simulator's running nodes.
  const stepAt = Date.now();
  const load = inferenceLoad({ clients: Number(a.clients), token, nodes: async () => (await fleet.sim.list(POOL)).filter((n) => n.agentUrl).map((n) => ({ id: n.id, url: n.agentUrl! })) });

  await waitFor(async () => (await status()).counts.members > N && (await status()).counts.provisioning === 0, 120_000, 'the first new node to join');
  let s = await status();
  const ev = (re: RegExp) => s.events.find((e) => re.test(e.message));
  const decision = ev(/^autoscaler queue: up/)!;
  const provisioning = ev(/^scaling up: provisioning/)!;
  const joined = ev(/^joined the pool \(scale-up\)/)!;
  const timings = await fleet.sim.timings(POOL);
  const node = (await fleet.sim.describe(joined.nodeId!))!;
  const swap = timings.find((t) => t.nodeId === joined.nodeId)!.swaps.find((x) => x.ok)!;
  const createdAt = Date.parse(node.createdAt!);
  const t = {
    decision: (Date.parse(decision.at) - stepAt) / 1000,
    provision: (createdAt - Date.parse(provisioning.at)) / 1000,
    boot: (swap.startedAt - createdAt) / 1000,
    load: swap.ms / 1000,
    joined: (Date.parse(joined.at) - Date.parse(decision.at)) / 1000,
  };
  const overhead = t.joined - (t.provision + t.boot + t.load);

  await sleep(Math.max(0, Number(a.hold) * 1000 - (Date.now() - stepAt)));
  const peak = (await status()).counts.members;
  const endAt = Date.now();
  const { ok, failed } = await load.stop();
  await waitFor(async () => (s = await status()).counts.members === N && s.leases.length === 0, 180_000, 'the pool back at its min');
  const downDecision = s.events.find((e) => /^autoscaler queue: down/.test(e.message) && Date.parse(e.at) >= endAt)!;
  const lastOut = [...s.events].reverse().find((e) => /^scaled down/.test(e.message))!;

  const r = (x: number) => x.toFixed(2);
  console.log(`autoscale bench: ${N} nodes, ${a.clients} clients, probe ${probe} s, upAfter ${upAfter} s, downAfter ${downAfter} s; ${ok} requests answered, ${failed} failed; peak ${peak} nodes`);
  console.log(`step → scale-up decision      ${r(t.decision)} s  (${r(t.decision / upAfter)}× upAfterSeconds; ${r(t.decision - upAfter)} s past the delay, goal ≤ ${probe} s)`);
  console.log(`decision → first new node serving ${r(t.joined)} s = provision ${r(t.provision)} + boot ${r(t.boot)} + model load ${r(t.load)} + drydock ${r(overhead)} s  (${r(t.joined / (t.provision + t.boot + t.load))}× provision+boot+load; goal overhead ≤ 1 s)`);
  console.log(`load end → scale-down decision ${r((Date.parse(downDecision.at) - endAt) / 1000)} s  (${r((Date.parse(downDecision.at) - endAt) / 1000 / downAfter)}× downAfterSeconds); → last node out ${r((Date.parse(lastOut.at) - endAt) / 1000)} s`);
  console.log(`decision inputs: ${decision.message}`);
  console.log(`down: ${downDecision.message}`);
  await pool.terminate('bench over');
} finally {
  await stop();
}
process.exit(0);

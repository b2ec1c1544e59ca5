/**
 * Health probe cost: milliseconds per GET /health with 8 simulated GPUs, and with the nvidia backend
 * over the fake nvidia-smi (test/fixtures/nvidia-smi/bin, 8 GPUs), against GET /livez on the same
 * agent as the HTTP floor. Run: node --import tsx scripts/bench/agent-health.ts [--requests N]
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadAgentConfig } from '../../gpu-agent/config.ts';
import { createAgent } from '../../gpu-agent/server.ts';
import { REPO_ROOT } from '../lib/paths.ts';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '200' } } });
const N = Number(values.requests);
const TOKEN = 'bench-token-0123456789abcdef';

async function msPer(url: string, n: number): Promise<number> {
  const headers = { authorization: `Bearer ${TOKEN}` };
  for (let i = 0; i < 10; i++) await (await fetch(url, { headers })).arrayBuffer(); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const res = await fetch(url, { headers });
    if (!res.ok) throw new Error(`${url}: ${res.status}`);
    await res.arrayBuffer();
  }
  return (performance.now() - t0) / n;
}

async function measure(argv: string[], n: number) {
  const agent = createAgent(loadAgentConfig(argv, { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN }));
  await new Promise<void>((r) => agent.server.listen(0, '127.0.0.1', r));
  await agent.started;
  const base = `http://127.0.0.1:${(agent.server.address() as AddressInfo).port}`;
  const livez = await msPer(`${base}/livez`, n);
  const health = await msPer(`${base}/health`, n);
  await agent.close();
  return { livez, health, backend: agent.gpu.name };
}

const sim = await measure(['--gpus', '8', '--gpu-backend', 'simulated'], N);

const dir = mkdtempSync(join(tmpdir(), 'bench-smi-'));
copyFileSync(join(REPO_ROOT, 'test/fixtures/nvidia-smi/8xh100-ecc-throttle.csv'), join(dir, 'query.csv'));
process.env.FAKE_NVIDIA_SMI_DIR = dir;
// The llama.cpp cross-check is not part of a probe; keep it out of the timing by letting it finish first.
const nv = await measure(['--gpu-backend', 'nvidia', '--nvidia-smi', join(REPO_ROOT, 'test/fixtures/nvidia-smi/bin/nvidia-smi'), '--kernel-log', 'none'], Math.max(20, Math.round(N / 4)));
rmSync(dir, { recursive: true, force: true });

const f = (x: number) => x.toFixed(3);
console.log(`GET /health cost (${N} sequential requests; nvidia: ${Math.max(20, Math.round(N / 4))})`);
console.log(`  simulated, 8 GPUs : ${f(sim.health)} ms/probe  (/livez floor ${f(sim.livez)} ms, ratio health/livez ${(sim.health / sim.livez).toFixed(2)})`);
console.log(`  nvidia, fake smi  : ${f(nv.health)} ms/probe  (/livez floor ${f(nv.livez)} ms, ratio health/livez ${(nv.health / nv.livez).toFixed(2)})`);
console.log(`  nvidia / simulated: ${(nv.health / sim.health).toFixed(1)}x (the fake is a bash script; cost is dominated by starting nvidia-smi)`);
process.exit(0);

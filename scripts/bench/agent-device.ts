/**
 * Runs the agent on whatever this machine has (a real GPU node: nvidia-smi and /dev/kmsg) and prints
 * what it reports, the /health probe cost against /livez, and optionally whether a test XID line
 * written to /dev/kmsg (root only) reaches /health mapped to GPU 0.
 * Run: node --import tsx scripts/bench/agent-device.ts [--out DIR] [--inject-xid] [-- agent flags...]
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { loadAgentConfig } from '../../gpu-agent/config.ts';
import { createAgent } from '../../gpu-agent/server.ts';

const { values, positionals } = parseArgs({ options: { out: { type: 'string' }, 'inject-xid': { type: 'boolean' } }, allowPositionals: true });
const TOKEN = 'device-probe-token-0123456789';
const agent = createAgent(loadAgentConfig(positionals, { ...process.env, DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN }));
await new Promise<void>((r) => agent.server.listen(0, '127.0.0.1', r));
await agent.started;
const base = `http://127.0.0.1:${(agent.server.address() as AddressInfo).port}`;
const headers = { authorization: `Bearer ${TOKEN}` };
const get = async (p: string) => (await fetch(`${base}${p}`, { headers })).text();
const out = (name: string, text: string) => {
  if (values.out) {
    mkdirSync(values.out, { recursive: true });
    writeFileSync(join(values.out, name), text);
  }
};

const health = await get('/health');
out('agent-health.json', health);
console.log(`/health:\n${health}`);
const metrics = await get('/metrics');
out('agent-metrics.txt', metrics);
console.log(`/metrics (drydock_gpu_*):\n${metrics.split('\n').filter((l) => l.startsWith('drydock_gpu_') || l.startsWith('drydock_node')).join('\n')}`);

const msPer = async (p: string, n: number) => {
  await get(p);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await get(p);
  return (performance.now() - t0) / n;
};
const h = await msPer('/health', 50);
const l = await msPer('/livez', 50);
console.log(`probe cost: /health ${h.toFixed(2)} ms, /livez ${l.toFixed(3)} ms, ratio ${(h / l).toFixed(1)}`);

if (values['inject-xid']) {
  const gpu0 = (JSON.parse(health) as { gpus: { pciBusId: string }[] }).gpus[0];
  const bus = gpu0.pciBusId.replace(/^0000/, '').replace(/\.\d$/, '').toLowerCase();
  // Xid 43 is "ignored" by the default policy: the node stays healthy, the event is still recorded.
  appendFileSync('/dev/kmsg', `NVRM: Xid (PCI:${bus}): 43, pid=1, name=drydock-probe, test line written by scripts/bench/agent-device.ts\n`);
  let seen = '';
  for (let i = 0; i < 30 && !seen; i++) {
    await sleep(100);
    const hh = JSON.parse(await get('/health')) as { recentXids: unknown[] };
    if (hh.recentXids.length) seen = JSON.stringify(hh.recentXids);
  }
  console.log(`xid via /dev/kmsg: ${seen || 'not seen within 3 s'}`);
  out('agent-xid.txt', seen);
}
await agent.close();
process.exit(0);

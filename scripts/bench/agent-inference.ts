/**
 * Inference overhead: tokens/s through the agent's HTTP API (the agent as its own process, requests
 * from this one) vs node-llama-cpp called directly in this process, with the same model, prompts,
 * slots (context sequences), threads and greedy decoding. Goal: ratio >= 0.95.
 * Run: node --import tsx scripts/bench/agent-inference.ts [--model PATH --sha256 HEX] [--requests 16 --max-tokens 128 --slots 4 --threads 1 --rounds 3]
 * Without --model it writes a small llama-architecture GGUF (random weights) to a temp dir.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { getLlama, LlamaCompletion, LlamaLogLevel } from 'node-llama-cpp';
import type { AddressInfo } from 'node:net';
import { REPO_ROOT } from '../lib/paths.ts';
import { loadAgentConfig } from '../../gpu-agent/config.ts';
import { createAgent } from '../../gpu-agent/server.ts';
import { writeTinyLlama } from '../lib/tinyLlama.ts';
import { waitFor } from '../lib/waitFor.ts';

const { values: v } = parseArgs({
  options: {
    model: { type: 'string' }, sha256: { type: 'string' }, requests: { type: 'string', default: '16' }, 'max-tokens': { type: 'string', default: '128' },
    slots: { type: 'string', default: '4' }, threads: { type: 'string', default: '1' }, rounds: { type: 'string', default: '3' },
  },
});
const REQUESTS = Number(v.requests);
const MAX_TOKENS = Number(v['max-tokens']);
const SLOTS = Number(v.slots);
const THREADS = Number(v.threads);
const ROUNDS = Number(v.rounds);
const TOKEN = 'bench-token-0123456789abcdef';
const PROMPTS = Array.from({ length: REQUESTS }, (_, i) => `the fleet node ${i} says hello to the gpu and the dock`);

const dir = mkdtempSync(join(tmpdir(), 'bench-inference-'));
const model = v.model
  ? { path: v.model, sha256: v.sha256 ?? '' }
  : writeTinyLlama(join(dir, 'bench.gguf'), { embedding: 256, layers: 4, heads: 8, feedForward: 512, name: 'bench' });

/** Runs `fn` over all prompts with at most SLOTS at a time; returns tokens/s. */
async function throughput(fn: (prompt: string) => Promise<number>): Promise<{ tps: number; tokens: number; seconds: number }> {
  let next = 0;
  let tokens = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: SLOTS }, async () => {
    while (next < PROMPTS.length) tokens += await fn(PROMPTS[next++]);
  }));
  const seconds = (performance.now() - t0) / 1000;
  return { tps: tokens / seconds, tokens, seconds };
}

async function direct() {
  const llama = await getLlama({ gpu: 'auto', build: 'never', logLevel: LlamaLogLevel.error, maxThreads: THREADS });
  const m = await llama.loadModel({ modelPath: model.path, gpuLayers: 'auto' });
  const ctx = await m.createContext({ sequences: SLOTS, contextSize: Math.min(2048, m.trainContextSize) * SLOTS, threads: THREADS });
  const free = Array.from({ length: SLOTS }, () => ctx.getSequence());
  const run = () => throughput(async (prompt) => {
    const seq = free.pop()!;
    try {
      await seq.clearHistory();
      const c = new LlamaCompletion({ contextSequence: seq, autoDisposeSequence: false });
      let n = 0;
      await c.generateCompletionWithMeta(prompt, { maxTokens: MAX_TOKENS, onToken: (t) => (n += t.length) });
      c.dispose({ disposeSequence: false });
      return n;
    } finally {
      free.push(seq);
    }
  });
  return { run, gpu: llama.gpu, close: () => m.dispose() };
}

/** Requests to an agent at `base`, SLOTS at a time. */
function httpRunner(base: string) {
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  return () => throughput(async (prompt) => {
    const res = await fetch(`${base}/v1/completions`, { method: 'POST', headers, body: JSON.stringify({ prompt, max_tokens: MAX_TOKENS }) });
    const body = (await res.json()) as { usage: { completion_tokens: number }; error?: unknown };
    if (!res.ok) throw new Error(JSON.stringify(body.error));
    return body.usage.completion_tokens;
  });
}

/** The agent in this process: separates the agent's own overhead from two processes sharing the CPU. */
async function agentInProcess() {
  const agent = createAgent(loadAgentConfig(['--gpu-backend', 'simulated', '--gpus', '1', '--model', model.path, '--model-sha256', model.sha256,
    '--slots', String(SLOTS), '--threads', String(THREADS), '--queue-size', String(REQUESTS)], { DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN }));
  await new Promise<void>((r) => agent.server.listen(0, '127.0.0.1', r));
  await agent.started;
  return { run: httpRunner(`http://127.0.0.1:${(agent.server.address() as AddressInfo).port}`), close: () => agent.close() };
}

async function viaAgent() {
  const dataDir = join(dir, 'agent');
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'gpu-agent/main.ts'), '--gpu-backend', 'simulated', '--gpus', '1', '--port', '0',
    '--data-dir', dataDir, '--model', model.path, '--model-sha256', model.sha256, '--slots', String(SLOTS), '--threads', String(THREADS),
    '--queue-size', String(REQUESTS)], { cwd: REPO_ROOT, env: { ...process.env, DRYDOCK_AGENT_AUTH: 'shared-token', DRYDOCK_AGENT_TOKEN: TOKEN }, stdio: 'inherit' });
  await waitFor(() => existsSync(join(dataDir, 'agent.json')), 120_000, 'the agent to write agent.json');
  const { port } = JSON.parse(readFileSync(join(dataDir, 'agent.json'), 'utf8')) as { port: number };
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${base}/ready`, { headers: { authorization: `Bearer ${TOKEN}` } })).status === 200, 120_000, 'the agent to load its model', 200);
  return { run: httpRunner(base), close: () => child.kill('SIGTERM') };
}

// Rounds alternate, so drifting load on a shared machine hits each alike. The in-process agent
// runs last, alone, so its llama.cpp threads do not share the CPU with the others' idle ones.
const agent = await viaAgent();
const d = await direct();
await d.run(); // warm-up
await agent.run();
const dr: { tps: number }[] = [];
const ar: { tps: number }[] = [];
for (let r = 0; r < ROUNDS; r++) {
  dr.push(await d.run());
  ar.push(await agent.run());
}
agent.close();
const inproc = await agentInProcess();
await inproc.run(); // warm-up
const ir: { tps: number }[] = [];
const dr2: { tps: number }[] = [];
for (let r = 0; r < ROUNDS; r++) {
  ir.push(await inproc.run());
  dr2.push(await d.run());
}
await inproc.close();
await d.close();

const best = (rs: { tps: number }[]) => Math.max(...rs.map((r) => r.tps));
const f = (x: number) => x.toFixed(1);
const line = (name: string, rs: { tps: number }[]) => console.log(`  ${name.padEnd(30)}: ${rs.map((r) => f(r.tps)).join(', ')} tokens/s (best ${f(best(rs))})`);
console.log(`inference: ${REQUESTS} requests x ${MAX_TOKENS} tokens, ${SLOTS} slots, ${THREADS} thread(s), llama.cpp gpu=${d.gpu}, model ${model.path}`);
line('direct node-llama-cpp', dr);
line('agent HTTP API (own process)', ar);
line('direct node-llama-cpp, again', dr2);
line('agent HTTP API (this process)', ir);
console.log(`  ratio agent/direct, own process : ${(best(ar) / best(dr)).toFixed(3)} (best of ${ROUNDS} rounds each; goal >= 0.95)`);
console.log(`  ratio agent/direct, same process: ${(best(ir) / best(dr2)).toFixed(3)}`);
rmSync(dir, { recursive: true, force: true });
process.exit(0);

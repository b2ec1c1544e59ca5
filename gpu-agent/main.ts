import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentConfigError, loadAgentConfig } from './config.ts';
import { agentAlive } from './dataDirLock.ts';
import { createAgent } from './server.ts';

/** One agent per data dir: a second start exits quietly instead of serving the same node twice. */
function takeLock(dataDir: string): boolean {
  mkdirSync(dataDir, { recursive: true });
  const lock = join(dataDir, 'agent.lock');
  try {
    writeFileSync(lock, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    const holder = Number(readFileSync(lock, 'utf8'));
    if (holder && holder !== process.pid && agentAlive(holder, dataDir)) return false;
    writeFileSync(lock, String(process.pid));
    return true;
  }
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadAgentConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof AgentConfigError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`gpu-agent: ${(err as Error).message}`);
      process.exit(2);
    }
    throw err;
  }
  const { dataDir } = config;
  if (dataDir && !takeLock(dataDir)) {
    console.error(`gpu-agent: another agent already serves ${dataDir}; exiting`);
    process.exit(0);
  }
  // Simulates an instance booting before its agent answers.
  if (config.bootDelaySeconds > 0) await sleep(config.bootDelaySeconds * 1000);

  let agent;
  try {
    agent = createAgent(config);
  } catch (err) {
    // e.g. --kernel-log kmsg without permission to read /dev/kmsg
    console.error(`gpu-agent: ${(err as Error).message}`);
    process.exit(2);
  }
  await new Promise<void>((resolve, reject) => {
    agent.server.once('error', reject);
    agent.server.listen(config.port, config.host, resolve);
  });
  const address = agent.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const scheme = config.tls ? 'https' : 'http';
  if (dataDir) {
    const tmp = join(dataDir, 'agent.json.tmp');
    writeFileSync(tmp, JSON.stringify({ pid: process.pid, port, host: config.host, scheme, startedAt: new Date().toISOString() }));
    renameSync(tmp, join(dataDir, 'agent.json'));
  }
  console.log(`gpu-agent ${config.nodeId} (pool ${config.pool}) listening on ${scheme}://${config.host}:${port} (gpu backend ${agent.gpu.name}, policy ${config.policy.version}; ${agent.guard.describe()}${config.allowFaultInjection && agent.gpu.name === 'simulated' ? '; fault injection on' : ''})`);
  // SIGHUP re-reads the tokens file (it is also re-read when it changes).
  process.on('SIGHUP', () => agent.guard.tokens.reload());

  const shutdown = async (signal: string) => {
    console.log(`gpu-agent ${config.nodeId}: ${signal}, shutting down`);
    await agent.close();
    if (dataDir) {
      for (const f of ['agent.json', 'agent.lock']) if (existsSync(join(dataDir, f))) rmSync(join(dataDir, f), { force: true });
    }
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

void main();

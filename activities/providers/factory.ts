import type { AgentAuth } from '../agentAuth.ts';
import { LocalAgentBootHook, PrivateIpAgent, type AgentLocator } from './bootHook.ts';
import { entryName, POOL_DEFAULTS, type AgentSettings, type PoolConfig, type ProviderConfig } from './config.ts';
import { LocalProvider } from './local.ts';
import { MultiProvider } from './multi.ts';
import { ProviderConfigError, type Provider } from './types.ts';

function locator(agent: AgentSettings | undefined, auth: AgentAuth): AgentLocator {
  if (agent?.bootHook) {
    const { type: _type, ...opts } = agent.bootHook;
    return new LocalAgentBootHook(opts, auth);
  }
  return new PrivateIpAgent(agent?.port, auth, agent?.tls ?? false);
}

/**
 * A provider whose module loads on first use: the AWS SDK and the GCE client take seconds to import,
 * and every worker (and every test that starts one) would pay that even with only local pools.
 */
function lazy(name: string, load: () => Promise<Provider>): Provider {
  let loaded: Promise<Provider> | undefined;
  const get = () => (loaded ??= load());
  return {
    name,
    provision: async (spec, key) => (await get()).provision(spec, key),
    terminate: async (id) => (await get()).terminate(id),
    describe: async (id) => (await get()).describe(id),
    list: async (pool) => (await get()).list(pool),
    snapshot: async (req) => (await get()).snapshot(req),
    listSnapshots: async (filter) => (await get()).listSnapshots(filter),
    deleteSnapshot: async (id) => (await get()).deleteSnapshot(id),
    createDiskFromSnapshot: async (req) => {
      const p = await get();
      if (!p.createDiskFromSnapshot) throw new ProviderConfigError(`${name}: this provider cannot make disks from snapshots`);
      return p.createDiskFromSnapshot(req);
    },
    instanceHealth: async (id) => (await get()).instanceHealth?.(id),
    reboot: async (id, key) => (await get()).reboot(id, key),
  };
}

function build(cfg: ProviderConfig, label: string, auth: AgentAuth): Provider {
  switch (cfg.type) {
    case 'local': {
      const { type: _type, name: _name, ...opts } = cfg;
      return new LocalProvider(opts, auth);
    }
    case 'aws-ec2': {
      const { type: _type, name: _name, agent, ...opts } = cfg;
      return lazy(cfg.type, async () => new (await import('./aws.ts')).AwsEc2Provider(opts, locator(agent, auth), label));
    }
    case 'gce': {
      const { type: _type, name: _name, agent, ...opts } = cfg;
      return lazy(cfg.type, async () => new (await import('./gce.ts')).GceProvider(opts, locator(agent, auth), label));
    }
  }
}

/** The provider of a pool: its one entry, or a MultiProvider over all of them. */
export function providerForPool(pool: PoolConfig, auth: AgentAuth): Provider {
  const entries = pool.providers ?? [pool.provider];
  if (entries.length === 1) return build(entries[0], `pool ${pool.name}`, auth);
  return new MultiProvider(
    entries.map((cfg) => ({
      name: entryName(cfg),
      provider: build(cfg, `pool ${pool.name} entry ${entryName(cfg)}`, auth),
      price: pool.prices?.[entryName(cfg)],
    })),
    pool.strategy ?? POOL_DEFAULTS.strategy,
  );
}

import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { LocalProvider, type LocalProviderOptions } from './providers/local.ts';
import type { Provider } from './providers/types.ts';

export type ProviderConfig = { type: 'local' } & LocalProviderOptions;

/** A pool as the control worker knows it: which provider holds its nodes and what they are. */
export interface PoolConfig {
  name: string;
  instanceType: string;
  provider: ProviderConfig;
}

export class UnknownPoolError extends Error {
  constructor(readonly pool: string, known: string[]) {
    super(`unknown pool '${pool}' (known pools: ${known.join(', ') || 'none'}); add it to the pools file the worker loads (DRYDOCK_POOLS_FILE)`);
  }
}

/** Pools the worker serves, loaded from a YAML or JSON file: `{ pools: [ {name, instanceType, provider} ] }`. */
export class PoolRegistry {
  private readonly providers = new Map<string, Provider>();

  constructor(private readonly pools: PoolConfig[], private readonly agentToken: string) {
    for (const p of pools) this.providers.set(p.name, this.makeProvider(p.provider));
  }

  static fromFile(path: string, agentToken: string): PoolRegistry {
    const doc = parseYaml(readFileSync(path, 'utf8')) as { pools?: PoolConfig[] };
    if (!Array.isArray(doc?.pools)) throw new Error(`${path}: expected a top-level 'pools' list`);
    doc.pools.forEach((p, i) => {
      if (typeof p?.name !== 'string' || !p.name) throw new Error(`${path}: pools[${i}].name: expected a non-empty string`);
      if (p.provider?.type !== 'local') throw new Error(`${path}: pools[${i}].provider.type: expected 'local'`);
      if (typeof p.provider.stateDir !== 'string') throw new Error(`${path}: pools[${i}].provider.stateDir: expected a path`);
    });
    return new PoolRegistry(doc.pools, agentToken);
  }

  private makeProvider(cfg: ProviderConfig): Provider {
    return new LocalProvider(cfg, this.agentToken);
  }

  names(): string[] {
    return this.pools.map((p) => p.name);
  }

  get(name: string): { config: PoolConfig; provider: Provider } {
    const config = this.pools.find((p) => p.name === name);
    if (!config) throw new UnknownPoolError(name, this.names());
    return { config, provider: this.providers.get(name)! };
  }
}

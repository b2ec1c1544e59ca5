import { readFileSync } from 'node:fs';
import type { AgentAuth } from './agentAuth.ts';
import { parse as parseYaml } from 'yaml';
import { parsePoolsDocument, PoolsFileError, type PoolConfig } from './providers/config.ts';
import { providerForPool } from './providers/factory.ts';
import type { Provider } from './providers/types.ts';

export type { PoolConfig, ProviderConfig } from './providers/config.ts';
export { PoolsFileError };

export class UnknownPoolError extends Error {
  constructor(readonly pool: string, known: string[]) {
    super(`unknown pool '${pool}' (known pools: ${known.join(', ') || 'none'}); add it to the pools file the worker loads (DRYDOCK_POOLS_FILE)`);
  }
}

/**
 * Pools the worker serves, loaded from a YAML or JSON file: `{ pools: [ {name, instanceType,
 * provider | providers + strategy} ] }` (see docs/providers.md). Bad files fail at start with
 * the field named.
 */
export class PoolRegistry {
  private readonly providers = new Map<string, Provider>();

  /** `auth`: how workers reach the pools' agents, and what each new node is given. */
  constructor(private readonly pools: PoolConfig[], readonly auth: AgentAuth) {
    for (const p of pools) this.providers.set(p.name, providerForPool(p, auth));
  }

  static fromFile(path: string, auth: AgentAuth): PoolRegistry {
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new PoolsFileError(`${path}: cannot read the pools file: ${(err as Error).message}`);
    }
    return new PoolRegistry(parsePoolsDocument(doc, path), auth);
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

import type { AgentAuth } from '../../activities/agentAuth.ts';
import { PoolRegistry, UnknownPoolError, type PoolConfig } from '../../activities/pools.ts';
import { nodeIdFor } from '../../activities/providers/naming.ts';
import { notRebootable } from '../../activities/providers/errors.ts';
import { CapacityError, ProviderConfigError, type NodeInstance, type NodeSpec, type Provider, type Snapshot } from '../../activities/providers/types.ts';
import { SimClient } from './client.ts';

/** A Provider backed by the fleet simulator's control API (provision / terminate / reboot / describe / list). */
export class SimProvider implements Provider {
  readonly name = 'fleet-sim';
  private readonly sim: SimClient;
  /** `token`: the simulator API's; `auth`: what each new node is handed (its own control tokens, per-node mode). */
  constructor(url: string, token: string, private readonly auth?: AgentAuth) {
    this.sim = new SimClient(url, token);
  }

  async provision(spec: NodeSpec, idempotencyKey: string): Promise<NodeInstance> {
    const controlTokens = this.auth?.mode === 'per-node' ? this.auth.tokensFor(spec.pool, nodeIdFor(spec.pool, idempotencyKey)) : undefined;
    try {
      return await this.sim.provision(spec.pool, idempotencyKey, { instanceType: spec.instanceType, controlTokens });
    } catch (err) {
      if ((err as { status?: number }).status === 503) throw new CapacityError(this.name, (err as Error).message);
      throw err;
    }
  }
  terminate(id: string): Promise<void> {
    return this.sim.terminate(id);
  }
  async reboot(id: string, idempotencyKey?: string): Promise<void> {
    try {
      await this.sim.call('POST', '/reboot', { id, key: idempotencyKey });
    } catch (err) {
      if ((err as { status?: number }).status === 409) throw notRebootable(this.name, id, (err as Error).message);
      throw err;
    }
  }
  describe(id: string): Promise<NodeInstance | undefined> {
    return this.sim.describe(id);
  }
  list(pool: string): Promise<NodeInstance[]> {
    return this.sim.list(pool);
  }
  snapshot(): Promise<Snapshot> {
    throw new ProviderConfigError('fleet-sim: snapshots are not simulated');
  }
  async listSnapshots(): Promise<Snapshot[]> {
    return [];
  }
  async deleteSnapshot(): Promise<void> {}
}

/** A pools registry whose pools (`pool`: one name, or several comma-separated) are served by the simulator (the worker's pools file has no sim provider type). */
export class SimPoolRegistry extends PoolRegistry {
  private readonly sim: SimProvider;
  private readonly simPools: string[];
  /** `token`: the simulator API's; `auth`: how the worker reaches the agents and what new nodes get. */
  constructor(pool: string, url: string, token: string, auth: AgentAuth) {
    super([], auth);
    this.simPools = pool.split(',').map((p) => p.trim()).filter(Boolean);
    this.sim = new SimProvider(url, token, auth);
  }
  override names(): string[] {
    return [...this.simPools];
  }
  override get(name: string): { config: PoolConfig; provider: SimProvider } {
    if (!this.simPools.includes(name)) throw new UnknownPoolError(name, this.simPools);
    // The provider config is never read for this pool: the registry hands out the simulator directly.
    return { config: { name, instanceType: 'sim.h100x2', provider: { type: 'local' } as unknown as PoolConfig['provider'] }, provider: this.sim };
  }
}

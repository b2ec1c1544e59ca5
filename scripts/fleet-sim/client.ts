import type { NodeInstance } from '../../activities/providers/types.ts';
import type { NodeTimings, ProviderFault, SimFault } from './simulator.ts';

/** The fleet simulator's control API (scripts/fleet-sim/simulator.ts `serve`), over HTTP with the agents' token. */
export class SimClient {
  constructor(readonly url: string, private readonly token: string) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const out = (await res.json()) as T & { error?: string };
    if (!res.ok) throw Object.assign(new Error(`fleet-sim ${path}: ${res.status} ${out.error}`), { status: res.status });
    return out;
  }

  /** `bootSeconds` overrides the simulator's boot time for this node (0: running at once). */
  /** `controlTokens`: the node's own control token(s), as user data hands them over (none: shared-token mode). */
  provision(pool: string, key: string, opts: { instanceType?: string; bootSeconds?: number; controlTokens?: string[] } = {}): Promise<NodeInstance> {
    return this.call('POST', '/provision', { pool, key, ...opts });
  }
  /** `n` nodes keyed `initial/<i>`, running at once, 50 requests at a time. */
  async provisionInitial(pool: string, n: number): Promise<void> {
    for (let i = 0; i < n; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => this.provision(pool, `initial/${i + j}`, { bootSeconds: 0 })));
    }
  }
  async terminate(id: string): Promise<void> {
    await this.call('POST', '/terminate', { id });
  }
  async describe(id: string): Promise<NodeInstance | undefined> {
    return (await this.call<NodeInstance | null>('GET', `/describe?id=${encodeURIComponent(id)}`)) ?? undefined;
  }
  list(pool: string): Promise<NodeInstance[]> {
    return this.call('GET', `/list?pool=${encodeURIComponent(pool)}`);
  }
  /** Ids of the pool's nodes in rack `rack`. */
  rack(pool: string, rack: number): Promise<string[]> {
    return this.call('GET', `/rack?pool=${encodeURIComponent(pool)}&rack=${rack}`);
  }
  async fault(id: string, fault: SimFault): Promise<void> {
    await this.call('POST', '/fault', { id, fault });
  }
  /** Simulated provider trouble: no capacity for new instances, or every call throttled (429). */
  async providerFault(fault: ProviderFault): Promise<void> {
    await this.call('POST', '/provider-fault', fault);
  }
  async providerRecover(kind?: ProviderFault['kind']): Promise<void> {
    await this.call('POST', '/provider-recover', kind ? { kind } : {});
  }
  timings(pool: string): Promise<NodeTimings[]> {
    return this.call('GET', `/timings?pool=${encodeURIComponent(pool)}`);
  }
}

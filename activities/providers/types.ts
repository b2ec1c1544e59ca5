/** Where a node is in its life at the provider. */
export type InstanceState = 'provisioning' | 'running' | 'terminating' | 'terminated';

/** Tags every drydock instance carries, so a worker can reconcile by listing. */
export const TAG_POOL = 'drydock-pool';
export const TAG_NODE = 'drydock-node';
export const TAG_MANAGED = 'drydock-managed';

export interface NodeSpec {
  pool: string;
  instanceType: string;
}

export interface NodeInstance {
  id: string;
  pool: string;
  provider: string;
  instanceType: string;
  state: InstanceState;
  /** Base URL of the node's gpu-agent, once it answers. */
  agentUrl?: string;
  tags: Record<string, string>;
  createdAt: string;
}

/**
 * A cloud (or local) provider. `provision` must be idempotent on its key: calling it again
 * with the same key returns the same instance and never creates a second one.
 */
export interface Provider {
  readonly name: string;
  provision(spec: NodeSpec, idempotencyKey: string): Promise<NodeInstance>;
  terminate(id: string): Promise<void>;
  describe(id: string): Promise<NodeInstance | undefined>;
  list(pool: string): Promise<NodeInstance[]>;
}

/** Thrown for errors that retrying will not fix; activities turn it into a non-retryable failure. */
export class ProviderConfigError extends Error {}

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before } from 'node:test';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { AgentHealth } from '../../activities/agentClient.ts';
import { rollingUpdateWorkflowId } from '../../workflows/common/ids.ts';
import type { RollingUpdateInput } from '../../workflows/inputs/rollingUpdate.ts';
import type { RolloutResult, RolloutStatus } from '../../workflows/rollout/api.ts';
import { writeTinyLlama } from '../../scripts/lib/tinyLlama.ts';
import { waitQuery } from '../../scripts/lib/waitFor.ts';
export { rejectsNaming } from '../helpers/failures.ts';
import { poolHarness, type PoolHarness, type PoolHarnessOptions } from '../pool/helpers.ts';

export interface TinyModel {
  path: string;
  sha256: string;
}

export interface RolloutHarness extends PoolHarness {
  /** Model A (every node serves it at the start), B and C. */
  models: { a: TinyModel; b: TinyModel; c: TinyModel };
  start(id: string, input: Omit<RollingUpdateInput, 'pool'>): Promise<WorkflowHandle>;
  agent(nodeId: string, method: string, path: string, body?: unknown): Promise<Response>;
  health(nodeId: string): Promise<AgentHealth>;
  /** sha256 served by every live member of the pool, by node. */
  served(): Promise<Record<string, string | null>>;
  /** Loads `model` on every member not serving it yet (test set-up, straight through the agents). */
  loadEverywhere(model: TinyModel): Promise<void>;
}

/**
 * A pool harness (dev server, real agents, control worker, pool workflow) whose agents serve
 * tiny GGUF model A, with models B and C written beside it.
 */
export function rolloutHarness(o: PoolHarnessOptions): RolloutHarness {
  const h = poolHarness(o) as RolloutHarness;
  before(async () => {
    const dir = h.fleet.dir;
    h.models = {
      a: writeTinyLlama(join(dir, 'models', 'tiny-a.gguf'), { seed: 1, name: 'tiny-a' }),
      b: writeTinyLlama(join(dir, 'models', 'tiny-b.gguf'), { seed: 2, name: 'tiny-b' }),
      c: writeTinyLlama(join(dir, 'models', 'tiny-c.gguf'), { seed: 3, name: 'tiny-c' }),
    };
    await h.loadEverywhere(h.models.a);
  });
  h.start = (id, input) =>
    h.env.client.workflow.start('rollingUpdate', { taskQueue: o.taskQueue, workflowId: rollingUpdateWorkflowId(o.spec.name, id), args: [{ pool: o.spec.name, ...input }] });
  h.agent = async (nodeId, method, path, body) => {
    const url = (await h.fleet.provider.describe(nodeId))?.agentUrl;
    if (!url) throw new Error(`node ${nodeId} has no agent`);
    return fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${h.fleet.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  };
  h.health = async (nodeId) => (await (await h.agent(nodeId, 'GET', '/health')).json()) as AgentHealth;
  h.served = async () => {
    const out: Record<string, string | null> = {};
    for (const n of await h.fleet.provider.list(o.spec.name)) out[n.id] = (await h.health(n.id)).model?.sha256 ?? null;
    return out;
  };
  h.loadEverywhere = async (model) => {
    await Promise.all(
      (await h.fleet.provider.list(o.spec.name)).map(async (n) => {
        if ((await h.health(n.id)).model?.sha256 === model.sha256) return;
        const res = await h.agent(n.id, 'PUT', '/model', { uri: model.path, sha256: model.sha256 });
        assert.equal(res.status, 200, `loading ${model.path} on ${n.id}: ${await res.text()}`);
      }),
    );
  };
  return h;
}

export const rolloutStatus = (handle: WorkflowHandle): Promise<RolloutStatus> => handle.query<RolloutStatus>('status');

/** Polls the rollout's status query until `check` holds. */
export function waitRollout(handle: WorkflowHandle, check: (s: RolloutStatus) => boolean, what: string, timeoutMs = 120_000): Promise<RolloutStatus> {
  return waitQuery<RolloutStatus>(handle, 'status', check, what, timeoutMs, undefined, 10);
}

/** The rollout failed with `type` (RolloutRolledBack, RolloutAborted, …); returns its result details. */
export async function failsWith(handle: WorkflowHandle, type: string): Promise<RolloutResult> {
  let details: RolloutResult | undefined;
  await assert.rejects(handle.result(), (err: unknown) => {
    assert.ok(err instanceof WorkflowFailedError, String(err));
    const cause = err.cause;
    assert.ok(cause instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(cause)}`);
    assert.equal(cause.type, type, cause.message);
    details = cause.details?.[0] as RolloutResult;
    return true;
  });
  return details!;
}

/** No member is cordoned or draining: the agents all take traffic. */
export async function allServing(h: RolloutHarness): Promise<void> {
  for (const n of await h.fleet.provider.list(h.fleet.pool)) {
    const res = await h.agent(n.id, 'GET', '/ready');
    assert.equal(res.status, 200, `${n.id} is not ready: ${await res.text()}`);
  }
}

import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import { parseFleetPoolSpec, type FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import type { PoolNode } from '../../workflows/pool/api.ts';
import { freshRun, type PoolContext, type PoolWork } from '../../workflows/pool/context.ts';
import { freshState, pushEvent } from '../../workflows/pool/state.ts';

/** A side task the pool's state transitions asked for (the workflow runs them as activities and children). */
export interface WorkCall {
  kind: keyof PoolWork;
  nodeId?: string;
  holder?: string;
  reason?: string;
  key?: string;
}

export interface UnitPool {
  ctx: PoolContext;
  /** Every side task asked for, in order. */
  work: WorkCall[];
  /** Moves the pool's clock on. */
  advance(ms: number): void;
  /** The pool's event messages, oldest first. */
  events(): string[];
}

export const START = Date.parse('2026-01-01T00:00:00Z');

/**
 * A pool context with no Temporal server: the pool's handlers, validators and steps run on it
 * as they do in the workflow; side tasks are recorded instead of run. `nodes` start active and
 * healthy (override per node), seen by the last probe, and the pool is initialized with desired = their count.
 */
export function unitPool(o: { spec?: Partial<FleetPoolSpec>; nodes?: (string | (Partial<PoolNode> & { id: string }))[] } = {}): UnitPool {
  const spec: FleetPoolSpec = { name: 'gpu', minNodes: 1, maxNodes: 10, ...o.spec };
  const state = freshState(spec);
  let clock = START;
  const work: WorkCall[] = [];
  const ctx: PoolContext = {
    pool: spec.name,
    state,
    cfg: parseFleetPoolSpec(spec),
    run: freshRun(),
    work: {
      replace: (_c, node, l, reason) => void work.push({ kind: 'replace', nodeId: node.id, holder: l.holder, reason }),
      scaleDown: (_c, node, l) => void work.push({ kind: 'scaleDown', nodeId: node.id, holder: l.holder }),
      cordon: (_c, node, l) => void work.push({ kind: 'cordon', nodeId: node.id, holder: l.holder }),
      uncordon: (_c, nodeId) => void work.push({ kind: 'uncordon', nodeId }),
      provision: (_c, key) => void work.push({ kind: 'provision', key }),
      converge: (_c, node, l) => void work.push({ kind: 'converge', nodeId: node.id, holder: l.holder }),
    },
    now: () => clock,
    event: (message, nodeId) => pushEvent(state, clock, message, nodeId),
  };
  for (const n of o.nodes ?? []) {
    const node: PoolNode = { phase: 'active', health: 'healthy', badProbes: 0, joinedAt: START - 60_000, ...(typeof n === 'string' ? { id: n } : n) };
    state.nodes[node.id] = node;
    if (node.health !== 'unknown') state.view[node.id] = node.health;
  }
  if (o.nodes) {
    state.initialized = true;
    state.autoscaler.desired = Math.max(spec.minNodes, o.nodes.length);
    state.lastProbe = { at: START - 1000, probed: o.nodes.length, tookMs: 5, full: true };
  }
  return { ctx, work, advance: (ms) => void (clock += ms), events: () => state.events.map((e) => e.message) };
}

/** `fn` fails with a non-retryable InvalidArgument whose message starts with `<field>: ` (and matches `message`). */
export function assertInvalid(fn: () => unknown, field: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    assert.equal(err.type, 'InvalidArgument');
    assert.equal(err.nonRetryable, true);
    assert.ok(err.message.startsWith(`${field}: `), `expected field ${field}, got: ${err.message}`);
    if (message) assert.match(err.message, message);
    return true;
  });
}

import { invalidArgument } from '../common/errors.ts';
import { fleetPoolWorkflowId, replaceNodeWorkflowId } from '../common/ids.ts';
import { parseFleetPoolSpec } from '../inputs/fleetPool.ts';
import { NODE_ID, NODE_ID_HELP } from '../inputs/validate.ts';
import type { PoolNode } from './api.ts';
import * as budget from './budget.ts';
import type { PoolContext } from './context.ts';
import { isOutsideReplacement } from './disruption.ts';

/**
 * The pool's update validators: each throws an `InvalidArgument` naming the field, so a bad
 * update is rejected before it reaches history. They read the state and change nothing.
 */

const HOLDER = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;
/** Holder prefixes of the pool's own leases. */
const RESERVED = /^(replace|scale-down|cordon|converge)\//;

function objectArg(v: unknown, field = 'input'): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalidArgument(field, 'expected a JSON object');
  return v as Record<string, unknown>;
}

function requireMember(ctx: PoolContext, nodeId: unknown): PoolNode {
  if (typeof nodeId !== 'string' || !NODE_ID.test(nodeId)) throw invalidArgument('nodeId', `expected a node id (${NODE_ID_HELP})`);
  const n = ctx.state.nodes[nodeId];
  if (!n) throw invalidArgument('nodeId', `'${nodeId}' is not a member of pool '${ctx.pool}' (members: ${Object.keys(ctx.state.nodes).slice(0, 10).join(', ') || 'none'})`);
  return n;
}

function reasonArg(o: Record<string, unknown>): void {
  if (o.reason !== undefined && (typeof o.reason !== 'string' || o.reason.length > 500)) throw invalidArgument('reason', 'expected a string of at most 500 characters');
}

/** A claim holder: another workflow's id, never one of the pool's own. */
function holderArg(o: Record<string, unknown>): string {
  if (typeof o.holder !== 'string' || !HOLDER.test(o.holder)) throw invalidArgument('holder', "expected the caller's workflow id (letters, digits, . _ : / -, at most 200)");
  if (RESERVED.test(o.holder)) throw invalidArgument('holder', `'${o.holder}' is reserved for the pool's own work`);
  return o.holder;
}

function idList(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || v.length > 1000 || !v.every((id) => typeof id === 'string' && NODE_ID.test(id))) throw invalidArgument(field, `expected a list of node ids (${NODE_ID_HELP}), at most 1000`);
  return v as string[];
}

export function applySpec(ctx: PoolContext, spec: unknown): void {
  const next = parseFleetPoolSpec(spec);
  if (next.name !== ctx.pool) throw invalidArgument('name', `is '${ctx.pool}' for this pool; a spec for '${next.name}' belongs to workflow ${fleetPoolWorkflowId(next.name)}`);
}

export function resize(ctx: PoolContext, r: unknown): void {
  const o = objectArg(r);
  for (const k of Object.keys(o)) if (!['minNodes', 'maxNodes', 'desiredNodes'].includes(k)) throw invalidArgument(k, 'unknown field (allowed: minNodes, maxNodes, desiredNodes)');
  parseFleetPoolSpec({ ...ctx.state.spec, ...o });
}

export function pauseRemediation(r: unknown): void {
  if (r === undefined) return;
  reasonArg(objectArg(r));
}

export function cordonNode(ctx: PoolContext, r: unknown): void {
  const n = requireMember(ctx, objectArg(r).nodeId);
  if (n.phase !== 'active') throw invalidArgument('nodeId', `'${n.id}' is ${n.phase}; only an active node can be cordoned`);
}

export function uncordonNode(ctx: PoolContext, r: unknown): void {
  const n = requireMember(ctx, objectArg(r).nodeId);
  const holder = `cordon/${n.id}`;
  if (!budget.leaseOf(ctx.state.budget, holder) && !budget.queuePosition(ctx.state.budget, holder)) {
    throw invalidArgument('nodeId', `'${n.id}' was not cordoned through this pool (phase ${n.phase})`);
  }
}

export function replaceNode(ctx: PoolContext, r: unknown): void {
  const o = objectArg(r);
  const n = requireMember(ctx, o.nodeId);
  if (n.phase === 'replacing' || n.phase === 'leaving') throw invalidArgument('nodeId', `'${n.id}' is already ${n.phase}`);
  if (budget.queuePosition(ctx.state.budget, replaceNodeWorkflowId(ctx.pool, n.id))) throw invalidArgument('nodeId', `'${n.id}' is already queued for replacement`);
  reasonArg(o);
  if (o.force !== undefined && typeof o.force !== 'boolean') throw invalidArgument('force', 'expected true or false');
}

export function acquireLease(ctx: PoolContext, r: unknown): void {
  const b = ctx.state.budget;
  const o = objectArg(r);
  if (typeof o.holder !== 'string' || !HOLDER.test(o.holder)) throw invalidArgument('holder', 'expected an id such as the caller\'s workflow id (letters, digits, . _ : / -, at most 200)');
  const held = budget.leaseOf(b, o.holder);
  if (isOutsideReplacement(ctx, o.holder)) {
    const n = requireMember(ctx, o.nodeId);
    const expected = replaceNodeWorkflowId(ctx.pool, n.id);
    if (o.holder !== expected) throw invalidArgument('holder', `must be '${expected}' for node ${n.id}`);
    if (held && held.kind !== 'external') throw invalidArgument('holder', `the pool itself is already replacing ${n.id}`);
    if (!held && n.phase !== 'active' && n.phase !== 'cordoned') throw invalidArgument('nodeId', `'${n.id}' is ${n.phase}`);
  } else {
    if (RESERVED.test(o.holder)) throw invalidArgument('holder', `'${o.holder}' is reserved for the pool's own leases`);
    const any = held ?? b.queue.find((q) => q.holder === o.holder);
    if (any && any.kind !== 'external') throw invalidArgument('holder', `'${o.holder}' is held by the pool itself`);
    if (o.nodeId !== undefined) requireMember(ctx, o.nodeId);
  }
  if (o.ttlSeconds !== undefined && !(Number.isInteger(o.ttlSeconds) && (o.ttlSeconds as number) >= 1 && (o.ttlSeconds as number) <= 86_400)) {
    throw invalidArgument('ttlSeconds', 'expected a whole number of seconds between 1 and 86400');
  }
}

export function releaseLease(ctx: PoolContext, r: unknown): void {
  const b = ctx.state.budget;
  const o = objectArg(r);
  if (typeof o.holder !== 'string' || !HOLDER.test(o.holder)) throw invalidArgument('holder', 'expected the holder id used in acquireLease');
  const held = budget.leaseOf(b, o.holder) ?? b.queue.find((q) => q.holder === o.holder);
  if (held && held.kind !== 'external') throw invalidArgument('holder', `'${o.holder}' is held by the pool itself and released when its work ends`);
}

export function claimNodes(ctx: PoolContext, r: unknown): void {
  const o = objectArg(r);
  const holder = holderArg(o);
  for (const id of idList(o.nodeIds, 'nodeIds')) {
    const claimedBy = ctx.state.claims?.[id];
    if (ctx.state.nodes[id]) throw invalidArgument('nodeIds', `'${id}' is a member of pool '${ctx.pool}'; take members out with swapMembers`);
    if (claimedBy && claimedBy !== holder) throw invalidArgument('nodeIds', `'${id}' is claimed by ${claimedBy}`);
  }
}

export function swapMembers(ctx: PoolContext, r: unknown): void {
  const o = objectArg(r);
  const holder = holderArg(o);
  for (const id of idList(o.admit, 'admit')) {
    if (!ctx.state.nodes[id] && ctx.state.claims?.[id] !== holder) throw invalidArgument('admit', `'${id}' is not claimed by ${holder}; claim it with claimNodes first`);
  }
  for (const id of idList(o.remove, 'remove')) {
    const n = ctx.state.nodes[id];
    if (!n) {
      if (ctx.state.claims?.[id] !== holder) throw invalidArgument('remove', `'${id}' is not a member of pool '${ctx.pool}'`);
      continue;
    }
    if (n.phase !== 'active' && n.phase !== 'cordoned') throw invalidArgument('remove', `'${id}' is ${n.phase}`);
    const lease = budget.leaseForNode(ctx.state.budget, id);
    if (lease) throw invalidArgument('remove', `'${id}' holds a disruption lease (${lease.holder})`);
  }
}

export function releaseClaims(r: unknown): void {
  const o = objectArg(r);
  holderArg(o);
  if (o.nodeIds !== undefined) idList(o.nodeIds, 'nodeIds');
}

import type { ModelRef, RollingUpdateConfig } from '../inputs/rollingUpdate.ts';
import type { AnalysisResult, NodeRolloutState, RolloutEvent, RolloutNode, RolloutPhase, RolloutStatus } from './api.ts';

/** Why the rollout is holding: an operator's pause, a pause step, a failure with onFailure `pause`, or blue-green's wait before the switch. */
export interface Hold {
  kind: 'operator' | 'step' | 'failure' | 'switch';
  reason: string;
}

/** Everything the rollout knows; plain JSON, the source of the status query. */
export interface RolloutState {
  id: string;
  pool: string;
  /** What the rollout is doing; a hold shows as `paused` on top of it (effectivePhase). */
  phase: RolloutPhase;
  reason?: string;
  step: number;
  steps: number;
  batches: string[][];
  nodes: RolloutNode[];
  analyses: AnalysisResult[];
  events: RolloutEvent[];
  maxUnavailable: number;
  maxDisrupted: number;
  disrupted: number;
  poolBudget: boolean;
  /** Serving pools: the pool's desired model before this rollout set the target (what rollback and abort restore). */
  poolServing?: { previous: ModelRef };
  hold?: Hold;
  startedAt: string;
  finishedAt?: string;
}

const MAX_EVENTS = 100;
export const TERMINAL: readonly RolloutPhase[] = ['succeeded', 'rolled-back', 'aborted', 'failed'];
const IN_PROGRESS: readonly NodeRolloutState[] = ['provisioning', 'cordoning', 'draining', 'swapping', 'smoke-testing', 'readiness', 'uncordoning', 'terminating'];

/** The phase users see: `paused` while a hold stands (an operator's pause survives a batch moving on to analysis). */
export function effectivePhase(st: RolloutState): RolloutPhase {
  return st.hold && !TERMINAL.includes(st.phase) ? 'paused' : st.phase;
}

export function freshRolloutState(id: string, cfg: RollingUpdateConfig, startedAt: string): RolloutState {
  return { id, pool: cfg.pool, phase: 'planning', step: 0, steps: 0, batches: [], nodes: [], analyses: [], events: [], maxUnavailable: 1, maxDisrupted: 0, disrupted: 0, poolBudget: true, startedAt };
}

export function pushRolloutEvent(st: RolloutState, message: string, nodeId?: string): void {
  st.events.push({ at: new Date().toISOString(), message, ...(nodeId ? { nodeId } : {}) });
  if (st.events.length > MAX_EVENTS) st.events.splice(0, st.events.length - MAX_EVENTS);
}

export function counts(nodes: RolloutNode[]): RolloutStatus['counts'] {
  const c = { total: nodes.length, pending: 0, inProgress: 0, done: 0, failed: 0, rolledBack: 0 };
  for (const n of nodes) {
    if (n.state === 'pending' || n.state === 'standby') c.pending++;
    else if (IN_PROGRESS.includes(n.state)) c.inProgress++;
    else if (n.state === 'done' || n.state === 'terminated' || n.state === 'left' || n.state === 'handedToRemediation') c.done++;
    else if (n.state === 'failed') c.failed++;
    else if (n.state === 'rolled-back') c.rolledBack++;
  }
  return c;
}

export function rolloutStatus(st: RolloutState, cfg: RollingUpdateConfig): RolloutStatus {
  return {
    id: st.id,
    pool: st.pool,
    strategy: cfg.strategy,
    phase: effectivePhase(st),
    ...(st.reason ?? st.hold?.reason ? { reason: st.reason ?? st.hold?.reason } : {}),
    target: cfg.target.model,
    step: st.step,
    steps: st.steps,
    batches: st.batches,
    maxUnavailable: st.maxUnavailable,
    maxDisrupted: st.maxDisrupted,
    poolBudget: st.poolBudget,
    ...(st.poolServing ? { poolServing: st.poolServing } : {}),
    counts: counts(st.nodes),
    nodes: st.nodes,
    analyses: st.analyses,
    events: st.events.slice(-30),
    startedAt: st.startedAt,
    ...(st.finishedAt ? { finishedAt: st.finishedAt } : {}),
  };
}

/** The Web UI's current details: one screen, per-node states included. */
export function rolloutDetails(s: RolloutStatus): string {
  const c = s.counts;
  const short = (m: ModelRef) => `${m.uri.split('/').pop()} (${m.sha256.slice(0, 12)}…)`;
  const byState = new Map<string, string[]>();
  for (const n of s.nodes) byState.set(n.state, [...(byState.get(n.state) ?? []), n.id + (n.role ? `[${n.role}]` : '')]);
  const last = s.analyses.at(-1);
  return [
    `**rollout ${s.id}** of pool **${s.pool}** (${s.strategy}) — **${s.phase}**${s.reason ? `: ${s.reason}` : ''}`,
    `target ${short(s.target)} · step ${Math.min(s.step + 1, Math.max(s.steps, 1))}/${Math.max(s.steps, 1)} · maxUnavailable ${s.maxUnavailable}${s.poolBudget ? ' (and the pool budget)' : ''}`,
    `nodes ${c.done}/${c.total} done · ${c.inProgress} in progress · ${c.pending} pending · ${c.failed} failed · ${c.rolledBack} rolled back`,
    ...(last ? [`last analysis (batch ${last.batch + 1}): ${last.ok ? 'passed' : 'FAILED'} · ${last.checks} checks, ${last.failures} failed, max ${last.maxLatencyMs} ms${last.traffic?.requests ? ` · traffic ${last.traffic.requests} requests, ${last.traffic.errors} 5xx` : ''}${last.reason ? ` · ${last.reason}` : ''}`] : []),
    '',
    ...[...byState.entries()].map(([state, ids]) => `- ${state}: ${ids.slice(0, 12).join(', ')}${ids.length > 12 ? ` … +${ids.length - 12}` : ''}`),
    '',
    ...s.events.slice(-5).map((e) => `- ${e.at.slice(11, 19)} ${e.nodeId ? `\`${e.nodeId}\` ` : ''}${e.message}`),
  ].join('\n');
}

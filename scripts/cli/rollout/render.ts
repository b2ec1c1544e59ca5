import type { RolloutNode, RolloutPhase, RolloutResult, RolloutStatus } from '../../../workflows/rollout/api.ts';
import { nodeStateLabel } from '../../../workflows/rollout/state.ts';
import type { RolloutRef } from './input.ts';

/** A rollout for people: the lines a watch prints as it changes, the status screen, the result, the list. Pure. */

/** Node states worth a line of their own while watching (the steps in between would flood CI logs). */
const NOTABLE_NODE_STATES = new Set(['done', 'failed', 'rolled-back', 'standby', 'terminated', 'left']);

/**
 * What changed between two polls, as lines: nodes finishing or failing and new analyses (under the
 * phase they happened in), then a phase change last, so the final line is where the rollout stands.
 */
export function rolloutChanges(prev: RolloutStatus | undefined, s: RolloutStatus): string[] {
  const lines: string[] = [];
  const during = prev?.phase ?? s.phase;
  const before = new Map((prev?.nodes ?? []).map((n) => [n.id, n.state]));
  for (const n of s.nodes) {
    if (before.get(n.id) === n.state || !NOTABLE_NODE_STATES.has(n.state)) continue;
    lines.push(`${during}: node ${n.id} ${n.state}${n.role ? ` (${n.role})` : ''}${n.error ? `: ${n.error}` : ''}`);
  }
  for (const a of s.analyses.slice(prev?.analyses.length ?? 0)) lines.push(`${during}: ${describeAnalysis(a)}`);
  if (!prev || prev.phase !== s.phase || (prev.reason ?? '') !== (s.reason ?? '')) lines.push(`${s.phase}${s.reason ? `: ${s.reason}` : ''}`);
  return lines;
}

export function describeAnalysis(a: RolloutStatus['analyses'][number]): string {
  return (
    `analysis of batch ${a.batch + 1} ${a.ok ? 'passed' : 'FAILED'}: ${a.checks} checks, ${a.failures} failed, ` +
    `latency max ${Math.round(a.maxLatencyMs)} ms mean ${Math.round(a.meanLatencyMs)} ms` +
    `${a.traffic?.requests ? `; client traffic ${a.traffic.requests} requests, ${a.traffic.errors} 5xx, mean ${a.traffic.meanLatencyMs} ms` : ''}${a.reason ? ` (${a.reason})` : ''}`
  );
}

/** Seconds from `from` to `to` (default: now), e.g. "42 s". */
export function seconds(from: string, to?: string): string {
  return `${((new Date(to ?? Date.now()).getTime() - new Date(from).getTime()) / 1000).toFixed(0)} s`;
}

/** One screen of a rollout for people. */
/** Live download progress per node (from the pending prefetchModel / swapModel activities' heartbeats). */
export type DownloadProgress = { bytes: number; totalBytes: number | null; bytesPerSecond: number; etaSeconds: number | null };

const mib = (n: number) => `${(n / 2 ** 20).toFixed(n >= 100 * 2 ** 20 ? 0 : 1)} MiB`;

function prefetchNote(n: RolloutNode, live: DownloadProgress | undefined): string {
  if (live && (n.prefetch?.state === 'prefetching' || n.state === 'swapping')) {
    const pct = live.totalBytes ? ` (${Math.floor((100 * live.bytes) / live.totalBytes)} %)` : '';
    return `downloading ${mib(live.bytes)}${live.totalBytes ? ` of ${mib(live.totalBytes)}` : ''}${pct} at ${mib(live.bytesPerSecond)}/s${live.etaSeconds !== null ? `, ETA ${Math.ceil(live.etaSeconds)} s` : ''}`;
  }
  if (n.prefetch?.state === 'ready' && n.prefetch.seconds !== undefined) return `downloaded in ${n.prefetch.seconds} s${n.prefetch.resumedFromBytes ? ` (resumed at ${mib(n.prefetch.resumedFromBytes)})` : ''}`;
  return '';
}

export function renderRolloutStatus(s: RolloutStatus, workflowStatus?: string, progress?: Map<string, DownloadProgress>): string {
  const c = s.counts;
  const head = `rollout/${s.pool}/${s.id}: ${workflowStatus ? `${workflowStatus}, ` : ''}${s.phase}${s.reason ? ` (${s.reason})` : ''}`;
  const lines = [
    head,
    `  ${s.strategy} to ${s.target.uri} (sha256 ${s.target.sha256.slice(0, 12)}…), step ${Math.min(s.step + 1, Math.max(s.steps, 1))}/${Math.max(s.steps, 1)}, ` +
      `maxUnavailable ${s.maxUnavailable} (at most ${s.maxDisrupted} out of service${s.poolBudget ? ", within the pool's budget" : ''})`,
    `  nodes: ${c.done}/${c.total} done, ${c.inProgress} in progress, ${c.pending} pending, ${c.failed} failed, ${c.rolledBack} rolled back; ` +
      `started ${s.startedAt}${s.finishedAt ? `, took ${seconds(s.startedAt, s.finishedAt)}` : `, running ${seconds(s.startedAt)}`}`,
  ];
  if (s.batches.length) lines.push(`  batches: ${s.batches.map((b, i) => `${i + 1}: ${b.join(' ')}`).join(' | ')}`);
  for (const n of s.nodes) {
    const extra = [n.role, n.direction === 'rollback' ? 'rolling back' : '', prefetchNote(n, progress?.get(n.id)), n.error ?? ''].filter(Boolean).join(', ');
    lines.push(`  ${n.id.padEnd(24)} ${(n.batch === undefined ? '' : `batch ${n.batch + 1}`).padEnd(9)} ${nodeStateLabel(n).padEnd(14)} ${extra}`.trimEnd());
  }
  if (s.analyses.length) lines.push('  analyses:', ...s.analyses.map((a) => `    ${describeAnalysis(a)}`));
  const recent = s.events.slice(-5);
  if (recent.length) lines.push('  recent events:', ...recent.map((e) => `    ${e.at} ${e.nodeId ? `${e.nodeId}: ` : ''}${e.message}`));
  return lines.join('\n');
}

/** `status` of a rollout no worker answered for: what Temporal itself knows. */
export function unansweredStatusText(workflowId: string, workflowStatus: string, phase: string | undefined): string {
  return `${workflowId}: ${workflowStatus}${phase ? `, ${phase}` : ''} (no drydock worker answered the status query)`;
}

/** What `start` prints: the run, how to follow it, and where the Web UI shows it (a URL, or the namespace and id). */
export function startedText(ref: Pick<RolloutRef, 'pool' | 'id' | 'workflowId'>, runId: string, namespaceFlag: string | undefined, webUi: string): string {
  return [
    `started ${ref.workflowId} (run ${runId})`,
    `  follow it: drydock rollout status ${ref.id} --pool ${ref.pool}${namespaceFlag ? ` --namespace ${namespaceFlag}` : ''}`,
    `  Web UI:    ${webUi}`,
  ].join('\n');
}

export function resultText(workflowId: string, r: RolloutResult): string {
  const s = r.status;
  return [
    `${workflowId} ${r.outcome}: ${s.counts.done}/${s.counts.total} nodes on ${s.target.uri}${s.finishedAt ? ` in ${seconds(s.startedAt, s.finishedAt)}` : ''}`,
    ...s.analyses.map((a) => `  ${describeAnalysis(a)}`),
  ].join('\n');
}

export interface RolloutRow {
  workflowId: string;
  id: string;
  pool: string;
  status: string;
  phase?: RolloutPhase;
  startTime: string;
  closeTime?: string;
}

/** `rollout list` as a table, newest first as given. */
export function rolloutTable(rows: RolloutRow[], pool: string | undefined): string {
  if (rows.length === 0) return `no rollouts recorded${pool ? ` for pool ${pool}` : ''}`;
  return [
    `${'ID'.padEnd(40)} ${'POOL'.padEnd(16)} ${'STATUS'.padEnd(11)} ${'PHASE'.padEnd(13)} STARTED`,
    ...rows.map((r) => `${r.id.padEnd(40)} ${r.pool.padEnd(16)} ${r.status.padEnd(11)} ${(r.phase ?? '').padEnd(13)} ${r.startTime}`),
  ].join('\n');
}

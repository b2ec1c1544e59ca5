/** A rollout benchmark run, read back: each node's agent-side work, and where the rest of the time went (from the workflow history). */
import type { NodeTimings } from '../fleet-sim/simulator.ts';
import type { RolloutStatus } from '../../workflows/rollout/api.ts';
import { mean, pct } from './stats.ts';

export type AgentWork = { drainMs: number; swapMs: number; smokeMs: number };
export type ActivityRun = { type: string; scheduledAt: number; startedAt: number; completedAt: number };

/** One node's agent-side work during its walk [from, to]: its drain, its swap to the target, its smoke generation(s). */
export function nodeWork(t: NodeTimings, targetSha256: string, from: number, to: number): AgentWork {
  const inWalk = (x: { startedAt: number }) => x.startedAt >= from && x.startedAt <= to;
  const sum = (xs: { ms: number }[]) => xs.reduce((x, y) => x + y.ms, 0);
  return {
    drainMs: sum(t.drains.filter(inWalk)),
    swapMs: sum(t.swaps.filter((s) => inWalk(s) && s.ok && s.sha256 === targetSha256)),
    smokeMs: sum(t.generations.filter((g) => inWalk(g) && g.sha256 === targetSha256)),
  };
}

/** Per activity type from the history: how long tasks waited to start and how long they ran. */
export function activityLatencies(history: { events?: unknown[] | null }) {
  type Ev = {
    eventId?: { toString(): string } | null;
    eventTime?: { seconds?: { toString(): string } | null; nanos?: number | null } | null;
    activityTaskScheduledEventAttributes?: { activityType?: { name?: string | null } | null; input?: { payloads?: { data?: Uint8Array | null }[] | null } | null } | null;
    activityTaskStartedEventAttributes?: { scheduledEventId?: { toString(): string } | null } | null;
    activityTaskCompletedEventAttributes?: { scheduledEventId?: { toString(): string } | null } | null;
    workflowTaskScheduledEventAttributes?: unknown;
    workflowTaskCompletedEventAttributes?: unknown;
  };
  const ms = (e: Ev) => Number(e.eventTime?.seconds?.toString() ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6;
  const scheduled = new Map<string, { type: string; at: number; nodeId?: string; startedAt?: number; completedAt?: number }>();
  const byType = new Map<string, { toStart: number[]; run: number[] }>();
  let wfTaskScheduledAt: number | undefined;
  const wfTasks: number[] = [];
  for (const raw of history.events ?? []) {
    const e = raw as Ev;
    const id = e.eventId?.toString() ?? '';
    const sa = e.activityTaskScheduledEventAttributes;
    if (sa) {
      let nodeId: string | undefined;
      try {
        const arg = JSON.parse(Buffer.from(sa.input?.payloads?.[0]?.data ?? []).toString()) as { nodeId?: unknown };
        if (typeof arg.nodeId === 'string') nodeId = arg.nodeId;
      } catch {
        /* not a per-node activity */
      }
      scheduled.set(id, { type: sa.activityType?.name ?? '?', at: ms(e), nodeId });
    }
    const st = e.activityTaskStartedEventAttributes?.scheduledEventId?.toString();
    if (st && scheduled.has(st)) scheduled.get(st)!.startedAt = ms(e);
    const done = e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString();
    const s = done ? scheduled.get(done) : undefined;
    if (s) s.completedAt = ms(e);
    if (s?.startedAt !== undefined) {
      const b = byType.get(s.type) ?? { toStart: [], run: [] };
      b.toStart.push(s.startedAt - s.at);
      b.run.push(ms(e) - s.startedAt);
      byType.set(s.type, b);
    }
    if (e.workflowTaskScheduledEventAttributes) wfTaskScheduledAt = ms(e);
    if (e.workflowTaskCompletedEventAttributes && wfTaskScheduledAt !== undefined) wfTasks.push(ms(e) - wfTaskScheduledAt);
  }
  return {
    activities: Object.fromEntries(
      [...byType].map(([type, b]) => [type, { count: b.run.length, scheduleToStartMs: { mean: mean(b.toStart), p99: pct(b.toStart, 99) }, runMs: { mean: mean(b.run), p99: pct(b.run, 99) } }]),
    ),
    workflowTaskMs: { count: wfTasks.length, mean: mean(wfTasks), p99: pct(wfTasks, 99) },
    events: (history.events ?? []).length,
    /** Per node, its activities in order (ms since epoch). */
    perNode: [...scheduled.values()].reduce((m, x) => {
      if (x.nodeId && x.startedAt !== undefined && x.completedAt !== undefined) {
        m.set(x.nodeId, [...(m.get(x.nodeId) ?? []), { type: x.type, scheduledAt: x.at, startedAt: x.startedAt, completedAt: x.completedAt }]);
      }
      return m;
    }, new Map<string, ActivityRun[]>()),
  };
}

/**
 * Where a node walk's time goes beyond the agent's own work, mean per node: waiting for activity
 * tasks to start, gaps between one activity's end and the next one's scheduling (workflow tasks),
 * and activity run time beyond what the agent measured (polling, HTTP, the short steps).
 */
export function attribution(perNode: Map<string, ActivityRun[]>, work: Map<string, AgentWork>) {
  const toStart: number[] = [];
  const gaps: number[] = [];
  const excess = new Map<string, number[]>();
  for (const [nodeId, acts] of perNode) {
    const w = work.get(nodeId);
    if (!w) continue;
    acts.sort((x, y) => x.scheduledAt - y.scheduledAt);
    toStart.push(acts.reduce((x, a) => x + (a.startedAt - a.scheduledAt), 0));
    gaps.push(acts.slice(1).reduce((x, a, i) => x + Math.max(0, a.scheduledAt - acts[i].completedAt), 0));
    for (const a of acts) {
      const agent = a.type === 'drainNode' ? w.drainMs : a.type === 'swapModel' ? w.swapMs : a.type === 'smokeCheck' ? w.smokeMs : 0;
      excess.set(a.type, [...(excess.get(a.type) ?? []), a.completedAt - a.startedAt - agent]);
    }
  }
  const run = Object.fromEntries([...excess].map(([t, xs]) => [t, mean(xs)]));
  const runTotal = Object.values(run).reduce((x, y) => x + y, 0);
  return { nodes: toStart.length, scheduleToStartMs: mean(toStart), gapsBetweenActivitiesMs: mean(gaps), runBeyondAgentWorkMs: run, runBeyondAgentWorkTotalMs: runTotal, totalMs: mean(toStart) + mean(gaps) + runTotal };
}


/**
 * The ideal, per batch: the slowest node's drain + swap + smoke (within its walk, as the agent
 * measured them), plus the slowest generation of the analysis round after the batch (it checks
 * every updated node at once and waits for all); the rollout's ideal is their sum.
 */
export function batchIdeals(st: RolloutStatus, all: NodeTimings[], targetSha256: string) {
  const timings = new Map(all.map((t) => [t.nodeId, t]));
  const byNode = new Map(st.nodes.map((n) => [n.id, n]));
  const walk = (id: string) => {
    const n = byNode.get(id);
    return [Date.parse(n?.startedAt ?? ''), Date.parse(n?.finishedAt ?? '')] as const;
  };
  return st.batches.map((ids, i) => {
    const work = ids.map((nodeId) => ({ nodeId, ...nodeWork(timings.get(nodeId)!, targetSha256, ...walk(nodeId)) }));
    const nodeMs = work.map((w) => w.drainMs + w.swapMs + w.smokeMs);
    const slowest = work[nodeMs.indexOf(Math.max(...nodeMs))];
    const started = Math.min(...ids.map((id) => walk(id)[0]));
    const finished = Math.max(...ids.map((id) => walk(id)[1]));
    const analysisAt = Date.parse(st.analyses.find((x) => x.batch === i)?.at ?? '');
    const analysisGens = all.flatMap((t) => t.generations).filter((g) => g.startedAt >= finished && g.startedAt <= analysisAt);
    const analysisMs = Math.max(0, ...analysisGens.map((g) => g.ms));
    return {
      batch: i,
      nodes: ids.length,
      idealMs: Math.max(...nodeMs) + analysisMs,
      slowest: { nodeId: slowest.nodeId, drainMs: slowest.drainMs, swapMs: slowest.swapMs, smokeMs: slowest.smokeMs },
      analysis: { generations: analysisGens.length, slowestMs: analysisMs, wallMs: analysisAt - finished },
      /** First node start to last node finish in this batch (the workflow's timestamps). */
      wallMs: finished - started,
    };
  });
}

/** Every node's agent-side work within its own walk. */
export function walkWork(st: RolloutStatus, all: NodeTimings[], targetSha256: string): Map<string, AgentWork> {
  const timings = new Map(all.map((t) => [t.nodeId, t]));
  return new Map(st.nodes.map((n) => [n.id, nodeWork(timings.get(n.id)!, targetSha256, Date.parse(n.startedAt ?? ''), Date.parse(n.finishedAt ?? ''))]));
}

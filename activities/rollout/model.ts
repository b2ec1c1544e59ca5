import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ModelRef, RollingUpdateConfig } from '../../workflows/inputs/rollingUpdate.ts';
import type { AnalysisTraffic } from '../../workflows/rollout/api.ts';
import { AgentHttpError, type AgentClient } from '../agentClient.ts';
import { nodeAccess, POLL_MS, type NodeActivityDeps, type NodeRef } from '../nodes.ts';
import { trafficBetween, type Traffic, type TrafficCounts } from './traffic.ts';

/** The failure type of a node the health policy calls unhealthy mid-walk: a hardware fault for remediation, not evidence against the model. */
export const NODE_UNHEALTHY = 'NodeUnhealthy';

export function nodeUnhealthy(nodeId: string, reasons: string[]): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`node ${nodeId} is unhealthy: ${reasons.join('; ').slice(0, 400)}`, NODE_UNHEALTHY);
}

/** Longest a single model load may take on an agent (big models from slow disks). */
const SWAP_TIMEOUT_MS = 30 * 60_000;
const HEARTBEAT_MS = 5000;

export interface SmokeInput extends NodeRef {
  prompt: string;
  maxTokens: number;
  expect?: string;
  maxLatencyMs: number;
  /** The model the node must be serving. */
  sha256: string;
}

export interface SmokeResult {
  ok: boolean;
  latencyMs: number;
  reason?: string;
}

export interface AnalysisOutcome {
  ok: boolean;
  checks: number;
  failures: number;
  maxLatencyMs: number;
  meanLatencyMs: number;
  /** Client traffic the analysed nodes served meanwhile (nodes whose GET /traffic did not answer are left out). */
  traffic: AnalysisTraffic;
  reason?: string;
}

/** A node's model: swap with verification, smoke checks and readiness (used by rollouts). */
export function createRolloutModelActivities(deps: NodeActivityDeps) {
  const { agentFor } = nodeAccess(deps);

  async function agentOf(ref: NodeRef): Promise<AgentClient> {
    const agent = await agentFor(ref);
    if (!agent) throw new Error(`node ${ref.nodeId} has no agent address yet`); // retried
    return agent;
  }

  /** Each node's client-traffic counters; undefined for a node that does not answer (or an agent without GET /traffic). */
  function readTraffic(pool: string, nodes: { nodeId: string }[]): Promise<(TrafficCounts | undefined)[]> {
    return Promise.all(
      nodes.map(async ({ nodeId }) => {
        try {
          return await (await agentOf({ pool, nodeId })).traffic();
        } catch {
          return undefined;
        }
      }),
    );
  }

  /** Traffic summed over the nodes since `before` (a node read only once, or restarted, is left out). */
  async function trafficSince(pool: string, nodes: { nodeId: string }[], before: (TrafficCounts | undefined)[]): Promise<Traffic> {
    const after = await readTraffic(pool, nodes);
    const sum: Traffic = { requests: 0, errors: 0, seconds: 0 };
    after.forEach((a, i) => {
      const b = before[i];
      const d = a && b ? trafficBetween(b, a) : undefined;
      if (!d) return;
      sum.requests += d.requests;
      sum.errors += d.errors;
      sum.seconds += d.seconds;
    });
    return sum;
  }

  /** Why the traffic fails the analysis, or undefined; too few requests are not judged. */
  function judgeTraffic(t: Traffic, a: { maxErrorRate: number; minRequests: number }): string | undefined {
    if (t.requests < a.minRequests || t.errors / t.requests <= a.maxErrorRate) return undefined;
    const pct = (x: number) => `${Math.round(x * 1000) / 10} %`;
    return `client error rate ${pct(t.errors / t.requests)} (${t.errors} of ${t.requests} inference requests answered 5xx), above maxErrorRate ${pct(a.maxErrorRate)}`;
  }

  /** One smoke generation; every way it can fail becomes a reason instead of an exception. */
  async function smokeOnce(input: SmokeInput): Promise<SmokeResult> {
    const started = performance.now();
    try {
      const agent = await agentOf(input);
      const r = await agent.smoke(input.prompt, input.maxTokens, Math.max(input.maxLatencyMs * 2, 10_000));
      const latencyMs = Math.max(r.latencyMs, 0);
      if (r.model.sha256 !== input.sha256) return { ok: false, latencyMs, reason: `serves ${r.model.sha256.slice(0, 12)}…, expected ${input.sha256.slice(0, 12)}…` };
      if (latencyMs > input.maxLatencyMs) return { ok: false, latencyMs, reason: `smoke generation took ${latencyMs} ms (max ${input.maxLatencyMs})` };
      if (input.expect !== undefined && !r.text.includes(input.expect)) {
        return { ok: false, latencyMs, reason: `generated text ${JSON.stringify(r.text.slice(0, 80))} does not contain ${JSON.stringify(input.expect)}` };
      }
      return { ok: true, latencyMs };
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      return { ok: false, latencyMs: Math.round(performance.now() - started), reason: (err as Error).message };
    }
  }

  return {
    /**
     * Makes the node serve `model`. Idempotent: a node already serving it is left alone, and a
     * retry that finds the agent still loading waits for that load. The agent verifies the sha256
     * and test-loads before switching, so a refusal (4xx) leaves the old model serving.
     * `model: null` (a node that served nothing before) cannot be restored by unloading: only a
     * node that serves nothing passes.
     */
    async swapModel(input: NodeRef & { model: ModelRef | null }): Promise<{ swapped: boolean }> {
      const ctx = Context.current();
      const agent = await agentOf(input);
      const { model: served, swap } = await agent.model();
      if (input.model === null) {
        if (served === null) return { swapped: false };
        throw ApplicationFailure.nonRetryable(`node ${input.nodeId} served no model before and the agent cannot unload ${served.sha256.slice(0, 12)}…`, 'ModelSwapFailed');
      }
      const want = input.model;
      if (served?.sha256 === want.sha256) return { swapped: false };
      if (swap.state !== 'loading' || swap.sha256 !== want.sha256) {
        try {
          // Loads can take minutes: heartbeat while the agent works, so a dead worker is noticed in seconds.
          const beat = setInterval(() => ctx.heartbeat({ loading: want.sha256 }), HEARTBEAT_MS);
          let r: Awaited<ReturnType<AgentClient['setModel']>>;
          try {
            r = await agent.setModel(want.uri, want.sha256, SWAP_TIMEOUT_MS);
          } finally {
            clearInterval(beat);
          }
          if (r.model.sha256 !== want.sha256) throw new Error(`agent answered with model ${r.model.sha256} after a swap to ${want.sha256}`);
          return { swapped: true };
        } catch (err) {
          if (!(err instanceof AgentHttpError)) throw err;
          if (err.status === 401) throw ApplicationFailure.nonRetryable(err.message, 'AgentRejected');
          if (err.status !== 409 || !/already in progress/.test(err.message)) {
            if (err.status >= 400 && err.status < 500) throw ApplicationFailure.nonRetryable(`node ${input.nodeId} refused the model: ${err.message}`, 'ModelSwapFailed');
            throw err;
          }
        }
      }
      // A load started earlier (by a worker that crashed) is still running: wait for its outcome.
      for (;;) {
        ctx.heartbeat({ waiting: 'model load in progress' });
        await ctx.sleep(POLL_MS * 2);
        const now = await agent.model();
        if (now.model?.sha256 === want.sha256) return { swapped: true };
        if (now.swap.state === 'failed' && now.swap.sha256 === want.sha256) {
          throw ApplicationFailure.nonRetryable(`node ${input.nodeId} refused the model: ${now.swap.error ?? 'load failed'}`, 'ModelSwapFailed');
        }
        if (now.swap.state !== 'loading') throw new Error(`model load on ${input.nodeId} ended without serving ${want.sha256}`); // retried from the top
      }
    },

    /** One smoke generation on the node (works while it is cordoned): model, latency and expected text. */
    async smokeCheck(input: SmokeInput): Promise<SmokeResult> {
      return smokeOnce(input);
    },

    /**
     * Readiness: the agent is healthy, serves `sha256` and would take traffic except that it is
     * cordoned or drained (uncordoning is the next step). Waits up to `timeoutSeconds`.
     */
    async waitModelReady(input: NodeRef & { sha256: string | null; timeoutSeconds: number }): Promise<void> {
      const ctx = Context.current();
      const until = Date.now() + input.timeoutSeconds * 1000;
      let why = 'agent did not answer';
      for (;;) {
        try {
          const agent = await agentOf(input);
          const [h, ready] = await Promise.all([agent.health(), agent.ready()]);
          const others = (ready.reasons ?? []).filter((r) => !/^node is (cordoned|draining|drained|timed-out)$/.test(r));
          // A hardware fault does not clear by waiting: stop at once, so the node goes to remediation.
          if (h.status === 'unhealthy') throw nodeUnhealthy(input.nodeId, h.reasons);
          else if ((h.model?.sha256 ?? null) !== input.sha256) why = `agent serves ${h.model?.sha256 ?? 'no model'}`;
          else if (others.length) why = others.join('; ');
          else return;
        } catch (err) {
          if (err instanceof ApplicationFailure) throw err;
          why = (err as Error).message;
        }
        if (Date.now() >= until) throw ApplicationFailure.nonRetryable(`node ${input.nodeId} not ready after ${input.timeoutSeconds} s: ${why}`, 'NotReady');
        ctx.heartbeat({ waitingFor: `agent healthy, serving ${input.sha256?.slice(0, 12) ?? 'no model'}, ready but for its cordon`, why });
        await ctx.sleep(POLL_MS);
      }
    },

    /** Uncordons the node and waits until the agent reports ready (takes traffic). */
    async returnToService(input: NodeRef & { timeoutSeconds: number }): Promise<void> {
      const ctx = Context.current();
      const until = Date.now() + input.timeoutSeconds * 1000;
      for (;;) {
        let why: string;
        try {
          const agent = await agentOf(input);
          await agent.uncordon();
          const r = await agent.ready();
          if (r.ready) return;
          const h = await agent.health();
          if (h.status === 'unhealthy') throw nodeUnhealthy(input.nodeId, h.reasons);
          why = (r.reasons ?? []).join('; ');
        } catch (err) {
          if (err instanceof ApplicationFailure) throw err;
          if (err instanceof AgentHttpError && err.status === 401) throw ApplicationFailure.nonRetryable(err.message, 'AgentRejected');
          why = (err as Error).message;
        }
        if (Date.now() >= until) throw ApplicationFailure.nonRetryable(`node ${input.nodeId} not serving ${input.timeoutSeconds} s after uncordon: ${why}`, 'NotReady');
        ctx.heartbeat({ waitingFor: 'agent ready (taking traffic) after uncordon', why });
        await ctx.sleep(POLL_MS / 5);
      }
    },

    /**
     * Analysis: rounds of smoke checks on `nodes` for `intervalSeconds` (one round when 0). Fails
     * when failures exceed `failureLimit`, one node fails `consecutiveErrorLimit` times in a row, or
     * after any round, the client traffic the nodes answered since the start has more than
     * `maxErrorRate` 5xx (judged from `minRequests` requests).
     */
    async analyzeNodes(input: { pool: string; nodes: { nodeId: string; sha256: string }[] } & RollingUpdateConfig['analysis']): Promise<AnalysisOutcome> {
      const ctx = Context.current();
      const until = Date.now() + input.intervalSeconds * 1000;
      // Client traffic counters at the start, read while the first round of checks runs.
      const before = readTraffic(input.pool, input.nodes);
      const streak = new Map<string, number>();
      let checks = 0;
      let failures = 0;
      let total = 0;
      let max = 0;
      let lastReason: string | undefined;
      for (;;) {
        const round = await Promise.all(
          input.nodes.map(async (n) => [n.nodeId, await smokeOnce({ pool: input.pool, nodeId: n.nodeId, sha256: n.sha256, prompt: input.prompt, maxTokens: input.maxTokens, expect: input.expect, maxLatencyMs: input.maxLatencyMs })] as const),
        );
        for (const [nodeId, r] of round) {
          checks++;
          total += r.latencyMs;
          max = Math.max(max, r.latencyMs);
          if (r.ok) {
            streak.set(nodeId, 0);
            continue;
          }
          failures++;
          lastReason = `${nodeId}: ${r.reason}`;
          streak.set(nodeId, (streak.get(nodeId) ?? 0) + 1);
        }
        const traffic = await trafficSince(input.pool, input.nodes, await before);
        const summary = {
          checks,
          failures,
          maxLatencyMs: max,
          meanLatencyMs: checks ? Math.round(total / checks) : 0,
          traffic: { requests: traffic.requests, errors: traffic.errors, meanLatencyMs: traffic.requests ? Math.round((traffic.seconds / traffic.requests) * 1000) : 0 },
        };
        const worst = [...streak.entries()].find(([, n]) => n >= input.consecutiveErrorLimit);
        let failed: string | undefined;
        if (failures > input.failureLimit) failed = `${failures} failed check(s), limit ${input.failureLimit}; last: ${lastReason}`;
        else if (worst) failed = `${worst[1]} failed checks in a row on ${worst[0]}; last: ${lastReason}`;
        else failed = judgeTraffic(traffic, input);
        if (failed) return { ok: false, ...summary, reason: failed };
        if (Date.now() + input.everySeconds * 1000 > until) return { ok: true, ...summary };
        ctx.heartbeat(summary);
        await ctx.sleep(input.everySeconds * 1000);
      }
    },
  };
}

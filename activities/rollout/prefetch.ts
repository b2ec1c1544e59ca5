import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ModelRef } from '../../workflows/inputs/rollingUpdate.ts';
import type { NodePrefetch } from '../../workflows/rollout/api.ts';
import { AgentHttpError, type AgentClient, type ModelDownload } from '../agentClient.ts';
import { nodeAccess, type NodeActivityDeps, type NodeRef } from '../nodes.ts';

/** Each ask long-polls the agent this long: it answers at once when the download ends, else with its progress. */
const WAIT_SECONDS = 5;
/** How often awaitPrefetches reads every watched node's progress. */
const WATCH_MS = 1000;
/** Retries of a download that failed for a reason worth retrying (5xx) before the node's prefetch fails. */
const MAX_RETRIES = 5;

export type DownloadDetails = { state: ModelDownload['state']; bytes: number; totalBytes: number | null; bytesPerSecond: number; etaSeconds: number | null; resumedFromBytes: number };

function details(d: ModelDownload): DownloadDetails {
  return { state: d.state, bytes: d.bytes, totalBytes: d.totalBytes, bytesPerSecond: d.bytesPerSecond, etaSeconds: d.etaSeconds, resumedFromBytes: d.resumedFromBytes };
}

/** What a heartbeat says of one node's download (the Web UI shows it on the pending activity; the CLI reads it). */
export function downloadDetails(nodeId: string, d: ModelDownload | undefined) {
  return d ? { nodeId, download: details(d) } : { nodeId };
}

/** The agent's latest download of `sha256`, or undefined (an agent that does not answer, too). */
export async function downloadOf(agent: AgentClient, sha256: string): Promise<ModelDownload | undefined> {
  try {
    return (await agent.downloads()).downloads.find((d) => d.sha256 === sha256);
  } catch {
    return undefined;
  }
}

/** One node's prefetch as awaitPrefetches reports it when it ends. */
export interface PrefetchEnd {
  nodeId: string;
  result: NodePrefetch;
}

/** Fetches a rollout's target onto nodes while they keep serving (rolling), or before they join (blue-green). */
export function createPrefetchActivities(deps: NodeActivityDeps) {
  const { agentFor } = nodeAccess(deps);

  async function agentOf(ref: NodeRef): Promise<AgentClient> {
    const agent = await agentFor(ref);
    if (!agent) throw new Error(`node ${ref.nodeId} has no agent address yet`); // retried
    return agent;
  }

  /** POST /model/prefetch; a refusal (4xx) is final, anything else is thrown to be retried. */
  async function ask(agent: AgentClient, ref: NodeRef, model: ModelRef, waitSeconds: number): Promise<ModelDownload> {
    try {
      return (await agent.prefetch(model.uri, model.sha256, waitSeconds)).download;
    } catch (err) {
      if (err instanceof AgentHttpError && err.status === 401) throw ApplicationFailure.nonRetryable(err.message, 'AgentRejected');
      if (err instanceof AgentHttpError && err.status >= 400 && err.status < 500) {
        throw ApplicationFailure.nonRetryable(`node ${ref.nodeId} cannot fetch the model: ${err.message}`, 'ModelPrefetchFailed');
      }
      throw err;
    }
  }

  const ready = (d: ModelDownload, started: number): NodePrefetch => ({ state: 'ready', bytes: d.bytes, seconds: Math.round((Date.now() - started) / 100) / 10, resumedFromBytes: d.resumedFromBytes });

  return {
    /**
     * Starts the node's download of `model` (POST /model/prefetch, idempotent) and returns at once:
     * `ready` when the model is already in its cache, else `prefetching`. awaitPrefetches follows it.
     */
    async startPrefetch(input: NodeRef & { model: ModelRef }): Promise<NodePrefetch> {
      const d = await ask(await agentOf(input), input, input.model, 0);
      if (d.state === 'done') return ready(d, Date.now());
      if (d.state === 'failed' && (d.status ?? 500) < 500) throw ApplicationFailure.nonRetryable(`node ${input.nodeId} could not fetch ${input.model.uri}: ${d.error}`, 'ModelPrefetchFailed');
      return { state: 'prefetching', bytes: d.bytes };
    },

    /**
     * Follows the downloads of `model` on `nodes` (one activity for all of them, so downloads hold
     * no worker slot each) and returns as soon as any has ended: ready, or failed for good (4xx, or
     * 5xx more than MAX_RETRIES times). Heartbeats every node's progress as `{downloads: {nodeId:
     * {bytes, totalBytes, bytesPerSecond, etaSeconds, …}}}`. A node whose agent restarted (it no
     * longer knows the download) is asked again and resumes from its partial file; one that does
     * not answer is waited for.
     */
    async awaitPrefetches(input: { pool: string; nodes: string[]; model: ModelRef; startedAt: Record<string, number> }): Promise<PrefetchEnd[]> {
      const ctx = Context.current();
      const retries = new Map<string, number>();
      const progress: Record<string, DownloadDetails> = {};
      for (;;) {
        const ended: PrefetchEnd[] = [];
        await Promise.all(
          input.nodes.map(async (nodeId) => {
            const ref = { pool: input.pool, nodeId };
            let agent: AgentClient;
            try {
              agent = await agentOf(ref);
            } catch (err) {
              if (err instanceof ApplicationFailure) ended.push({ nodeId, result: { state: 'failed', error: err.message } });
              return; // no address yet (rebooting): wait
            }
            let d = await downloadOf(agent, input.model.sha256);
            if (!d || (d.state === 'failed' && (d.status ?? 500) >= 500)) {
              if (d) retries.set(nodeId, (retries.get(nodeId) ?? 0) + 1);
              if ((retries.get(nodeId) ?? 0) > MAX_RETRIES) {
                ended.push({ nodeId, result: { state: 'failed', error: `node ${nodeId} could not fetch ${input.model.uri}: ${d?.error} (${MAX_RETRIES} retries)` } });
                return;
              }
              try {
                d = await ask(agent, ref, input.model, 0); // restarted agent, or a failure worth retrying: resume
              } catch (err) {
                if (err instanceof ApplicationFailure) ended.push({ nodeId, result: { state: 'failed', error: err.message } });
                return;
              }
            }
            progress[nodeId] = details(d);
            if (d.state === 'done') ended.push({ nodeId, result: ready(d, input.startedAt[nodeId] ?? Date.now()) });
            else if (d.state === 'failed' && (d.status ?? 500) < 500) ended.push({ nodeId, result: { state: 'failed', error: `node ${nodeId} could not fetch ${input.model.uri}: ${d.error ?? 'download failed'}` } });
          }),
        );
        ctx.heartbeat({ downloads: progress });
        if (ended.length) return ended;
        await ctx.sleep(WATCH_MS);
      }
    },

    /**
     * Blue-green: has one node download `model` and waits until it is verified in its cache,
     * long-polling the agent and heartbeating `{nodeId, download}`.
     */
    async prefetchModel(input: NodeRef & { model: ModelRef }): Promise<NodePrefetch> {
      const ctx = Context.current();
      const started = Date.now();
      const agent = await agentOf(input);
      for (;;) {
        // Asking again is idempotent; an agent that restarted resumes the download from its partial file.
        const d = await ask(agent, input, input.model, WAIT_SECONDS);
        ctx.heartbeat(downloadDetails(input.nodeId, d));
        if (d.state === 'done') return ready(d, started);
        if (d.state === 'failed') {
          const why = `node ${input.nodeId} could not fetch ${input.model.uri}: ${d.error ?? 'download failed'}`;
          if ((d.status ?? 500) < 500) throw ApplicationFailure.nonRetryable(why, 'ModelPrefetchFailed');
          throw new Error(why); // retried: the next attempt asks again, and the agent resumes
        }
      }
    },
  };
}

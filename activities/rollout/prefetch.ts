import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ModelRef } from '../../workflows/inputs/rollingUpdate.ts';
import type { NodePrefetch } from '../../workflows/rollout/api.ts';
import { AgentHttpError, type AgentClient, type ModelDownload } from '../agentClient.ts';
import { nodeAccess, type NodeActivityDeps, type NodeRef } from '../nodes.ts';

/** Each ask long-polls the agent this long: it answers at once when the download ends, else with its progress. */
const WAIT_SECONDS = 5;

/** What a heartbeat says of a download (the Web UI shows it on the pending activity; the CLI reads it). */
export function downloadDetails(nodeId: string, d: ModelDownload | undefined) {
  if (!d) return { nodeId };
  return { nodeId, download: { state: d.state, bytes: d.bytes, totalBytes: d.totalBytes, bytesPerSecond: d.bytesPerSecond, etaSeconds: d.etaSeconds, resumedFromBytes: d.resumedFromBytes } };
}

/** The agent's latest download of `sha256`, or undefined (an agent that does not answer, too). */
export async function downloadOf(agent: AgentClient, sha256: string): Promise<ModelDownload | undefined> {
  try {
    return (await agent.downloads()).downloads.find((d) => d.sha256 === sha256);
  } catch {
    return undefined;
  }
}

/** Fetches a rollout's target onto a node while it keeps serving (rolling), or before it joins (blue-green). */
export function createPrefetchActivities(deps: NodeActivityDeps) {
  const { agentFor } = nodeAccess(deps);
  return {
    /**
     * Has the node's agent download `model` into its cache (POST /model/prefetch, idempotent,
     * long-polled) and waits until it is there and verified, heartbeating progress. An agent that restarts mid-way
     * resumes from its partial file when this activity asks again. A refusal (4xx: bad URI, no such
     * object, sha256 mismatch, no space) fails for good; anything else is retried.
     */
    async prefetchModel(input: NodeRef & { model: ModelRef }): Promise<NodePrefetch> {
      const ctx = Context.current();
      const started = Date.now();
      const agent = await agentFor(input);
      if (!agent) throw new Error(`node ${input.nodeId} has no agent address yet`); // retried
      const ask = async (): Promise<ModelDownload> => {
        try {
          return (await agent.prefetch(input.model.uri, input.model.sha256, WAIT_SECONDS)).download;
        } catch (err) {
          if (err instanceof AgentHttpError && err.status === 401) throw ApplicationFailure.nonRetryable(err.message, 'AgentRejected');
          if (err instanceof AgentHttpError && err.status >= 400 && err.status < 500) {
            throw ApplicationFailure.nonRetryable(`node ${input.nodeId} cannot fetch the model: ${err.message}`, 'ModelPrefetchFailed');
          }
          throw err; // retried
        }
      };
      let d = await ask();
      for (;;) {
        ctx.heartbeat(downloadDetails(input.nodeId, d));
        if (d.state === 'done') {
          return { state: 'ready', bytes: d.bytes, seconds: Math.round((Date.now() - started) / 100) / 10, resumedFromBytes: d.resumedFromBytes };
        }
        if (d.state === 'failed') {
          const why = `node ${input.nodeId} could not fetch ${input.model.uri}: ${d.error ?? 'download failed'}`;
          if ((d.status ?? 500) < 500) throw ApplicationFailure.nonRetryable(why, 'ModelPrefetchFailed');
          throw new Error(why); // retried: the next attempt asks again, and the agent resumes
        }
        // Asking again is idempotent; an agent that restarted resumes the download from its partial file.
        d = await ask();
      }
    },
  };
}

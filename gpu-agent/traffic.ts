/** Routes clients send inference to; smoke checks, health and drydock's own calls are not client traffic. */
export const INFERENCE_ROUTES: readonly string[] = ['POST /v1/completions', 'POST /v1/chat/completions'];

/**
 * Cumulative client traffic since the agent started (`GET /traffic`): what a rollout's analysis
 * judges. Requests that arrive while the node is cordoned or draining are refused by design (503,
 * send it elsewhere) and not counted.
 */
export interface TrafficCounts {
  /** When counting began; a different value between two readings means the agent restarted. */
  since: string;
  requests: number;
  /** Answers with a 5xx status: the node failed the client (overloaded, timed out, crashed). */
  errors: number;
  /** Total seconds the requests took. */
  seconds: number;
}

/** Counts answered inference requests; cheap enough to read every analysis round on every node. */
export class TrafficCounter {
  private readonly counts: TrafficCounts = { since: new Date().toISOString(), requests: 0, errors: 0, seconds: 0 };

  /** One answered request on `route` (method and path); other routes are ignored. */
  record(route: string, status: number, seconds: number): void {
    if (!INFERENCE_ROUTES.includes(route)) return;
    this.counts.requests++;
    if (status >= 500) this.counts.errors++;
    this.counts.seconds += seconds;
  }

  read(): TrafficCounts {
    return { ...this.counts };
  }
}

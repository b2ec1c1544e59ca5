/** What an agent has been told it must serve: its start-up model, or the last one the control plane asked for. */
export interface DesiredModel {
  uri: string;
  sha256: string;
}

const short = (sha: string) => `${sha.slice(0, 12)}…`;

/**
 * Why the agent is not ready to serve, as far as its model goes: every reason starts with
 * `model:`, so the control plane can tell "waits for its model" from other reasons. An agent told
 * what to serve is not ready while it serves none or another one; one started with
 * `--require-model` (a node of a serving pool) is not ready while it serves none.
 */
export function servingReasons(desired: DesiredModel | undefined, served: { sha256: string } | null, requireModel: boolean, lastError?: string): string[] {
  const failed = lastError ? ` (last load failed: ${lastError.slice(0, 200)})` : '';
  if (desired) {
    if (!served) return [`model: must serve ${desired.uri} (${short(desired.sha256)}); serves none yet${failed}`];
    if (served.sha256 !== desired.sha256) return [`model: must serve ${desired.uri} (${short(desired.sha256)}); serves ${short(served.sha256)}${failed}`];
    return [];
  }
  if (requireModel && !served) return [`model: this node must serve a model and serves none yet (PUT /model {uri, sha256})${failed}`];
  return [];
}

/** The reasons of a /ready answer that only say the node waits for its model. */
export function onlyWaitsForModel(reasons: string[]): boolean {
  return reasons.length > 0 && reasons.every((r) => r.startsWith('model:'));
}

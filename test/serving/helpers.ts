import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PoolStatus } from '../../workflows/pool/api.ts';
import type { TestFleet } from '../../scripts/lib/fleet.ts';
import { writeTinyLlama } from '../../scripts/lib/tinyLlama.ts';

export interface TinyModel {
  path: string;
  sha256: string;
}

/** Tiny GGUF models A, B and C (same seeds, same bytes), written before the pool spec that names one is built. */
export function tinyModels(): { dir: string; a: TinyModel; b: TinyModel; c: TinyModel } {
  const dir = mkdtempSync(join(tmpdir(), 'drydock-serving-models-'));
  const m = (name: string, seed: number) => {
    const w = writeTinyLlama(join(dir, `${name}.gguf`), { seed, name });
    return { path: w.path, sha256: w.sha256 };
  };
  return { dir, a: m('tiny-a', 1), b: m('tiny-b', 2), c: m('tiny-c', 3) };
}

export const ref = (m: TinyModel) => ({ uri: m.path, sha256: m.sha256 });

export async function agentCall(fleet: TestFleet, nodeId: string, method: string, path: string, body?: unknown): Promise<Response> {
  const url = (await fleet.provider.describe(nodeId))?.agentUrl;
  if (!url) throw new Error(`node ${nodeId} has no agent`);
  return fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${fleet.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** What the node's agent serves (sha256, or null). */
export async function servedBy(fleet: TestFleet, nodeId: string): Promise<string | null> {
  const h = (await (await agentCall(fleet, nodeId, 'GET', '/health')).json()) as { model: { sha256: string } | null };
  return h.model?.sha256 ?? null;
}

/** Every member is healthy, active and serves `sha256`, with nothing drifting. */
export function allServe(sha256: string, members?: number): (s: PoolStatus) => boolean {
  return (s) =>
    (members === undefined || s.nodes.length === members) &&
    s.nodes.length > 0 &&
    s.nodes.every((n) => n.phase === 'active' && n.model?.sha256 === sha256) &&
    s.serving?.drifted.length === 0 &&
    s.leases.length === 0;
}

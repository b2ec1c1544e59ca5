import { failureMessage } from '../common/failure.ts';
import type { Rollout } from './runtime.ts';

/** Smoke checks of `nodeIds` (on the target model) over the analysis interval; the result joins status.analyses. */
export async function analyze(rt: Rollout, batch: number, nodeIds: string[], what: string): Promise<{ ok: boolean; reason?: string }> {
  const { cfg, st } = rt;
  const nodes = nodeIds.map((nodeId) => ({ nodeId, sha256: cfg.target.model.sha256 }));
  try {
    const r = await rt.acts.analysis.analyzeNodes.executeWithOptions({ summary: `${what} (${nodes.length} node(s), ${cfg.analysis.intervalSeconds} s)` }, [
      { pool: cfg.pool, nodes, ...cfg.analysis },
    ]);
    st.analyses.push({ batch, ok: r.ok, checks: r.checks, failures: r.failures, maxLatencyMs: r.maxLatencyMs, meanLatencyMs: r.meanLatencyMs, traffic: r.traffic, ...(r.reason ? { reason: r.reason } : {}), at: new Date().toISOString() });
    rt.event(`${what}: ${r.ok ? 'passed' : `failed: ${r.reason}`} (${r.checks} checks, max ${r.maxLatencyMs} ms)`);
    return r;
  } catch (err) {
    const reason = `analysis could not run: ${failureMessage(err)}`;
    st.analyses.push({ batch, ok: false, checks: 0, failures: 0, maxLatencyMs: 0, meanLatencyMs: 0, reason, at: new Date().toISOString() });
    return { ok: false, reason };
  }
}

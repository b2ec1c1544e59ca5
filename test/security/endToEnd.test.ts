import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import type { AuditRecord } from '../../gpu-agent/audit.ts';
import type { FleetPoolSpec } from '../../workflows/inputs/fleetPool.ts';
import { startReplace } from '../../scripts/lib/replace.ts';
import { agentProcesses } from '../../scripts/lib/fleet.ts';
import { rolloutHarness } from '../rollout/helpers.ts';

const TQ = 'security-e2e';
const POOL = 'sec';

/** Every audit line of every node the fleet ever had (terminated ones keep their data dir). */
function auditLines(stateDir: string): Array<AuditRecord & { node: string }> {
  const nodes = join(stateDir, 'nodes');
  return readdirSync(nodes).flatMap((node) => {
    const file = join(nodes, node, 'audit.log');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => ({ ...(JSON.parse(l) as AuditRecord), node }));
  });
}

/** Every log a person or a tool would read: agent logs, the worker's output, and workflow histories. */
async function everythingWritten(h: ReturnType<typeof rolloutHarness>, handles: WorkflowHandle[]): Promise<string> {
  const nodes = join(h.fleet.dir, 'state', 'nodes');
  const logs = readdirSync(nodes).map((n) => join(nodes, n, 'agent.log')).filter(existsSync).map((f) => readFileSync(f, 'utf8'));
  const histories = await Promise.all(handles.map(async (hd) => JSON.stringify(await hd.fetchHistory())));
  return [h.worker.output(), ...logs, ...histories].join('\n');
}

describe('least privilege end to end: a rollout and a replacement on per-node tokens', () => {
  const spec: FleetPoolSpec = {
    name: POOL,
    minNodes: 1,
    maxNodes: 4,
    health: { probeIntervalSeconds: 1, unhealthyAfter: 3, unreachableAfterSeconds: 30, drainTimeoutSeconds: 10 },
    disruption: { maxUnavailable: 1, minHealthy: 1 },
  };
  const h = rolloutHarness({ taskQueue: TQ, spec, nodes: 2 });

  it('the agents audit each control action with the workflow that asked; no history or log holds a token or the master key', async () => {
    const { b } = h.models;
    const rollout = await h.start('to-b', { target: { model: { uri: b.path, sha256: b.sha256 } }, maxUnavailable: 1, analysis: { intervalSeconds: 0, maxLatencyMs: 120_000 }, drainTimeoutSeconds: 10 });
    await rollout.result();
    const [victim] = h.fleet.nodeIds;
    const replace = await startReplace(h.env.client, TQ, { pool: POOL, nodeId: victim, reason: 'security test', drainTimeoutSeconds: 10 });
    await replace.result();

    const lines = auditLines(join(h.fleet.dir, 'state'));
    const byWorkflow = (id: string, action: string) => lines.filter((l) => l.workflowId === id && l.action === action);
    assert.ok(byWorkflow(rollout.workflowId, 'model-swap').length >= 2, `each node audits the rollout's swap: ${JSON.stringify(lines.map((l) => [l.node, l.action, l.workflowId]))}`);
    assert.ok(byWorkflow(rollout.workflowId, 'smoke').length >= 1, 'the smoke checks are audited');
    for (const action of ['cordon', 'drain']) {
      const got = byWorkflow(replace.workflowId, action);
      assert.ok(got.length >= 1 && got.every((l) => l.node === victim && l.role === 'control' && l.result.status === 200), `${action} of ${victim} audited for ${replace.workflowId}`);
    }
    // Set-up loaded model A straight through the agents with the operator's token: named, no workflow.
    assert.ok(lines.some((l) => l.action === 'model-swap' && l.caller === 'operator' && l.workflowId === undefined));
    assert.match(h.worker.output(), new RegExp(`agent POST /cordon on ${POOL}/${victim} for workflow ${replace.workflowId.replaceAll('/', '\\/')}`));

    const everyNode = readdirSync(join(h.fleet.dir, 'state', 'nodes'));
    assert.ok(everyNode.length >= 3, 'the replacement is among the nodes');
    const secrets = { 'master key': h.fleet.key, 'operator token': h.fleet.token, 'inference token': h.fleet.inferenceToken, ...Object.fromEntries(everyNode.map((n) => [`control token of ${n}`, h.fleet.controlToken(n)])) };
    const written = await everythingWritten(h, [rollout, replace, h.pool]);
    for (const [what, secret] of Object.entries(secrets)) assert.ok(!written.includes(secret), `no log or history holds the ${what}`);
    // The MAC part alone must not leak either (a log line could cut the prefix).
    for (const n of everyNode) assert.ok(!written.includes(h.fleet.controlToken(n).split('.')[2]));

    // Each live agent holds its own token and nothing else: no master key, no other node's token.
    for (const pid of agentProcesses(h.fleet.dir)) {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const node = cmd[cmd.indexOf('--node-id') + 1];
      assert.ok(!env.some((e) => e.includes(h.fleet.key)), `agent ${node} does not hold the master key`);
      assert.ok(env.includes(`DRYDOCK_AGENT_CONTROL_TOKEN=${h.fleet.controlToken(node)}`), `agent ${node} holds its own token`);
      for (const other of everyNode.filter((n) => n !== node)) assert.ok(!env.some((e) => e.includes(h.fleet.controlToken(other))), `agent ${node} does not hold ${other}'s token`);
    }
  });
});

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { stackProcesses, startDevStack } from '../helpers/devStack.ts';
import { AgentClient } from '../../activities/agentClient.ts';
import { LocalProvider } from '../../activities/providers/local.ts';
import { devCredentials, loadDevConfig } from '../../scripts/devConfig.ts';

describe('npm run dev, as a new user runs it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drydock-dev-'));
  after(() => {
    for (const p of stackProcesses(dir)) process.kill(p, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const nodesIn = (text: string) => [...text.matchAll(/^\s+(demo-[0-9a-f]{8})\s+running\s+http/gm)].map((m) => m[1]);

  it('comes up, the printed line replaces a node, Ctrl-C stops everything, and a rerun has the same state', { timeout: 480_000 }, async () => {
    let stack = await startDevStack(dir);
    const out = stack.output();
    const before = nodesIn(out);
    assert.equal(before.length, 3, out);
    assert.match(out, /trainer worker: +task queue drydock-trainer/);
    assert.match(out, /backup schedule: +backup\/demo/);
    const ui = await fetch(`http://localhost:${stack.ports.ui}/`);
    assert.equal(ui.status, 200, 'the Web UI answers');

    const line = out.split('\n').find((l) => l.includes('workflow start --type replaceNode'));
    assert.ok(line, 'a ready-to-paste temporal workflow start line is printed');
    await promisify(execFile)('bash', ['-c', line.trim()], { timeout: 60_000 });
    const workflowId = /--workflow-id (\S+)/.exec(line)![1];

    const connection = await Connection.connect({ address: stack.address });
    const client = new Client({ connection });
    const result = (await client.workflow.getHandle(workflowId).result().catch((e) => assert.fail(`${e}\n${stack.output()}`))) as {
      replacementNodeId: string;
      nodeId: string;
    };
    assert.ok(before.includes(result.nodeId));
    // Like for like: the replacement serves demo-v1, as the node it replaced did, and was not ready before it did.
    const phases = (result as unknown as { phases: { phase: string }[] }).phases.map((p) => p.phase);
    assert.deepEqual(phases.slice(-2), ['waiting-healthy', 'converging'], `phases: ${phases.join(', ')}`);
    const v1 = createHash('sha256').update(readFileSync(join(dir, 'models', 'demo-v1.gguf'))).digest('hex');
    const provider = new LocalProvider(loadDevConfig({ DRYDOCK_DEV_DIR: dir }).pool.provider, devCredentials(dir).auth);
    const fresh = await provider.describe(result.replacementNodeId);
    assert.equal(fresh?.tags['drydock-serving'], 'true', 'started as a serving node: its agent runs with --require-model');
    const agent = new AgentClient(fresh!.agentUrl!, devCredentials(dir).operatorToken);
    assert.equal((await agent.model()).model?.sha256, v1);
    assert.equal((await agent.ready()).ready, true);
    const schedules = [];
    for await (const s of client.schedule.list()) schedules.push(s.scheduleId);
    assert.ok(schedules.includes('backup/demo'), 'the demo backup schedule is registered');
    await connection.close();

    await stack.ctrlC();

    stack = await startDevStack(dir, stack.ports);
    const after = nodesIn(stack.output());
    assert.equal(after.length, 3);
    assert.ok(after.includes(result.replacementNodeId), 'the replacement is still in the pool');
    assert.ok(!after.includes(result.nodeId), 'the replaced node stays gone');
    const again = await Connection.connect({ address: stack.address });
    const desc = await new Client({ connection: again }).workflow.getHandle(workflowId).describe();
    assert.equal(desc.status.name, 'COMPLETED', 'the workflow history survived the restart (SQLite file)');
    await again.close();
    await stack.ctrlC();
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AgentClient } from '../../activities/agentClient.ts';
import { agentProcesses, startFleet, waitFor, type TestFleet } from '../helpers/fleet.ts';

describe('local provider', () => {
  let fleet: TestFleet;
  before(async () => (fleet = await startFleet({ pool: 'lp', nodes: 2 })));
  after(() => fleet.cleanup());

  it('runs each node as a real, reachable gpu-agent process tagged with its pool and node', async () => {
    const nodes = await fleet.provider.list('lp');
    assert.equal(nodes.length, 2);
    for (const n of nodes) {
      assert.equal(n.state, 'running');
      assert.deepEqual(n.tags, { 'drydock-pool': 'lp', 'drydock-node': n.id, 'drydock-managed': 'true' });
      const h = await new AgentClient(n.agentUrl!, fleet.token).health();
      assert.equal(h.nodeId, n.id);
      assert.equal(h.status, 'healthy');
    }
    assert.equal(agentProcesses(fleet.dir).length, 2);
  });

  it('provisioning twice with one key returns the same node and starts one process', async () => {
    const spec = { pool: 'lp', instanceType: 'sim.h100x2' };
    const [a, b] = await Promise.all([fleet.provider.provision(spec, 'key-1'), fleet.provider.provision(spec, 'key-1')]);
    assert.equal(a.id, b.id);
    await waitFor(async () => (await fleet.provider.describe(a.id))?.state === 'running', 20_000, 'the node to run');
    const again = await fleet.provider.provision(spec, 'key-1');
    assert.equal(again.id, a.id);
    assert.equal((await fleet.provider.list('lp')).length, 3);
    // Two racing spawns may both start, but only one may hold the node's lock and stay.
    await waitFor(() => agentProcesses(fleet.dir).length === 3, 10_000, 'exactly 3 agent processes');
  });

  it('terminate stops the process; terminating again or an unknown node succeeds', async () => {
    const [victim] = await fleet.provider.list('lp');
    await fleet.provider.terminate(victim.id);
    await fleet.provider.terminate(victim.id);
    await fleet.provider.terminate('no-such-node');
    assert.equal((await fleet.provider.describe(victim.id))?.state, 'terminated');
    assert.equal((await fleet.provider.list('lp')).some((n) => n.id === victim.id), false);
    await waitFor(() => agentProcesses(fleet.dir).length === 2, 10_000, 'the terminated agent to exit');
  });

  it('lists nodes by pool only', async () => {
    assert.deepEqual(await fleet.provider.list('other-pool'), []);
  });
});

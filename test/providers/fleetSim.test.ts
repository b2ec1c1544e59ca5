import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SimProvider } from '../../scripts/fleet-sim/provider.ts';
import { FleetSimulator } from '../../scripts/fleet-sim/simulator.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { assertNotRebootable } from '../helpers/providers.ts';

const TOKEN = 'fleet-sim-provider-test-token';

describe('fleet simulator provider: reboot (simulated downtime) and dead instances', () => {
  let dir: string;
  let sim: FleetSimulator;
  let server: Server;
  let provider: SimProvider;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-sim-provider-'));
    sim = new FleetSimulator({ token: TOKEN, dataDir: dir, bootSeconds: 0, rebootSeconds: 0.5 });
    const served = await sim.serve();
    server = served.server;
    provider = new SimProvider(served.url, TOKEN);
  });
  after(async () => {
    server?.closeAllConnections();
    server?.close();
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const xids = async (url: string) => {
    const res = await fetch(`${url}/health`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return ((await res.json()) as { recentXids: { code: number }[] }).recentXids.map((x) => x.code).sort((a, b) => a - b);
  };

  it('a reboot takes the agent away for the downtime and brings back only the persistent faults; one per key; same node id', async () => {
    const node = await provider.provision({ pool: 'sp', instanceType: 'sim' }, 'sp/0');
    await sim.fault(node.id, { kind: 'xid', gpu: 0, code: 48, persistent: true });
    await sim.fault(node.id, { kind: 'xid', gpu: 1, code: 79 });
    assert.deepEqual(await xids(node.agentUrl!), [48, 79]);

    await provider.reboot(node.id, 'remedy/sp/1');
    const down = await provider.describe(node.id);
    assert.deepEqual([down?.id, down?.state, down?.agentUrl, down?.dead], [node.id, 'provisioning', undefined, undefined], 'down for the reboot, not dead');
    await waitFor(async () => (await provider.describe(node.id))?.agentUrl !== undefined, 10_000, 'the rebooted agent');
    const up = (await provider.describe(node.id))!;
    assert.equal(up.state, 'running');
    assert.deepEqual(await xids(up.agentUrl!), [48], 'the non-persistent fault is gone');

    await provider.reboot(node.id, 'remedy/sp/1');
    assert.equal((await provider.describe(node.id))?.agentUrl, up.agentUrl, 'a retry with the same key does not reboot again');
  });

  it('a dead instance is listed with its reason and cannot be rebooted; neither can a terminated or unknown one', async () => {
    const [dead, fine] = await Promise.all(['dp/0', 'dp/1'].map((k) => provider.provision({ pool: 'dp', instanceType: 'sim' }, k)));
    await sim.fault(dead.id, { kind: 'dead', reason: 'simulated host failure' });
    const listed = new Map((await provider.list('dp')).map((n) => [n.id, n]));
    assert.deepEqual(listed.get(dead.id)?.dead, { reason: 'simulated host failure' });
    assert.equal(listed.get(dead.id)?.agentUrl, undefined);
    assert.equal(listed.get(fine.id)?.dead, undefined);
    await assertNotRebootable(provider.reboot(dead.id, 'remedy/dp/1'), /dead at the provider \(simulated host failure\)/);
    await provider.terminate(fine.id);
    await assertNotRebootable(provider.reboot(fine.id), /no live node/);
    await assertNotRebootable(provider.reboot('dp-nosuchnode'), /no live node/);
  });
});

import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A closed loop of `clients` concurrent inference clients, as behind a least-outstanding balancer:
 * each sends one completion at a time to the node with the fewest of its requests outstanding
 * among `nodes()` (refreshed every 500 ms); a node that refuses (503: cordoned, draining) is
 * retried elsewhere. `stop()` waits for the requests in flight and returns the counts.
 */
export function inferenceLoad(o: { clients: number; token: string; nodes: () => Promise<{ id: string; url: string }[]> }): {
  stop(): Promise<{ ok: number; failed: number; refused: number }>;
} {
  let running = true;
  const counts = { ok: 0, failed: 0, refused: 0 };
  const outstanding = new Map<string, number>();
  let nodes: { id: string; url: string }[] = [];
  const refresh = () => o.nodes().then((n) => void (nodes = n), () => {});
  const ready = refresh();
  const timer = setInterval(() => void refresh(), 500);
  const client = async () => {
    await ready;
    while (running) {
      const pick = [...nodes].sort((x, y) => (outstanding.get(x.id) ?? 0) - (outstanding.get(y.id) ?? 0))[0];
      if (!pick) {
        await sleep(100);
        continue;
      }
      outstanding.set(pick.id, (outstanding.get(pick.id) ?? 0) + 1);
      try {
        const res = await fetch(`${pick.url}/v1/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${o.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ prompt: 'hello', max_tokens: 8 }),
        });
        await res.text();
        if (res.ok) counts.ok++;
        else if (res.status === 503) {
          counts.refused++;
          await sleep(100);
        } else counts.failed++;
      } catch {
        counts.failed++;
      } finally {
        outstanding.set(pick.id, (outstanding.get(pick.id) ?? 1) - 1);
      }
    }
  };
  const loops = Array.from({ length: o.clients }, () => client());
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      clearInterval(timer);
      return counts;
    },
  };
}

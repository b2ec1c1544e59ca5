// Workflows of scripts/sdk-repro/query-during-restart.ts: no drydock code, only the SDK.
import { condition, defineQuery, defineUpdate, proxyActivities, setHandler } from '@temporalio/workflow';

const { tick } = proxyActivities<{ tick(): Promise<void> }>({ startToCloseTimeout: '10s' });
export const countQuery = defineQuery<number>('count');
export const bumpUpdate = defineUpdate<number>('bump');

/** Ticks when 2 s have passed by the task's clock (as the pool's probe did before its history clock). */
export async function clockLoop(): Promise<void> {
  let last = 0;
  let n = 0;
  setHandler(countQuery, () => n);
  for (let i = 0; i < 12; i++) {
    if (Date.now() >= last + 2000) {
      await tick();
      last = Date.now();
      n++;
    }
    const wait = last + 2000 - Date.now();
    if (wait > 0) await condition(() => false, wait);
  }
}

/** Ticks after every 2 s timer, clock-free; an update handler that only counts. */
export async function updateLoop(): Promise<void> {
  let n = 0;
  let bumps = 0;
  setHandler(countQuery, () => n);
  setHandler(bumpUpdate, () => ++bumps);
  for (let i = 0; i < 12; i++) {
    await tick();
    n++;
    await condition(() => false, 2000);
  }
}

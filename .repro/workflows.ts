import { condition, defineQuery, defineUpdate, proxyActivities, setHandler } from '@temporalio/workflow';
const { tick } = proxyActivities<{ tick(): Promise<void> }>({ startToCloseTimeout: '10s' });
export const q = defineQuery<number>('q');
export const bump = defineUpdate<number>('bump');
/** Loop due on a fired timer (clock-free); an update handler that only changes state. */
export async function loop(): Promise<void> {
  let n = 0;
  let b = 0;
  setHandler(q, () => n);
  setHandler(bump, () => ++b);
  for (let i = 0; i < 12; i++) {
    await tick();
    n++;
    await condition(() => false, 2000);
  }
}

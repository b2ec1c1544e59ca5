import type { AutoscalingPolicy, ScheduleWindow } from '../../inputs/autoscaling.ts';

/**
 * Scheduled windows (pure): which windows are open at a given instant in the policy's time zone.
 * The instant is workflow time, so the answer is the same on every replay; Intl's zone rules are
 * data of the runtime (ICU), not of the clock.
 */

type Scheduled = Extract<AutoscalingPolicy, { type: 'scheduled' }>;

export interface SizeBounds {
  minNodes: number;
  maxNodes: number;
  /** The open windows' labels, when bounds come from a schedule. */
  window?: string;
}

const WEEKDAY: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
const formatters = new Map<string, Intl.DateTimeFormat>();

/** Local day of the week (0 Sunday) and seconds after midnight at `at` (ms since the epoch) in `timeZone`. */
export function localTime(at: number, timeZone: string): { day: number; seconds: number } {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(at)).map((p) => [p.type, p.value]));
  return { day: WEEKDAY[parts.weekday], seconds: (Number(parts.hour) % 24) * 3600 + Number(parts.minute) * 60 + Number(parts.second) };
}

export function openWindows(p: Scheduled, at: number): ScheduleWindow[] {
  const t = localTime(at, p.timeZone);
  return p.windows.filter((w) => w.days.includes(t.day) && t.seconds >= w.start && t.seconds < w.end);
}

/**
 * The size bounds at `at`: the open windows' (the largest min and the largest max when several
 * overlap), else the pool's own.
 */
export function boundsAt(policies: AutoscalingPolicy[], pool: { minNodes: number; maxNodes: number }, at: number): SizeBounds {
  const scheduled = policies.find((p): p is Scheduled => p.type === 'scheduled');
  const open = scheduled ? openWindows(scheduled, at) : [];
  if (!open.length) return { minNodes: pool.minNodes, maxNodes: pool.maxNodes };
  return {
    minNodes: Math.max(...open.map((w) => w.minNodes)),
    maxNodes: Math.max(...open.map((w) => w.maxNodes)),
    window: `${open.map((w) => w.label).join(' + ')} ${scheduled!.timeZone}`,
  };
}

/** Small statistics for benchmark figures. */

export const mean = (xs: number[]): number => (xs.length ? xs.reduce((x, y) => x + y, 0) / xs.length : NaN);

/** The p-th percentile (nearest rank); NaN for no samples. */
export function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** Median (mean of the middle two for an even count) with min and max: a figure over repeated runs. */
export function spread(xs: number[]): { median: number; min: number; max: number; runs: number } {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: m, min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN, runs: s.length };
}

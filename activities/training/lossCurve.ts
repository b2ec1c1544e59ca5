/**
 * The loss curve of a trainingJob (from its `progress` query), as terminal text or an SVG file.
 * Pure functions, for the CLI: `drydock train curve <name> [--svg out.svg]`.
 */
export interface CurvePoint {
  round: number;
  loss: number;
  accuracy?: number;
}

/** A text plot: one row per round, a bar proportional to loss, accuracy where evaluated. */
export function lossCurveText(points: CurvePoint[], width = 40): string {
  if (points.length === 0) return '(no rounds yet)';
  const max = Math.max(...points.map((p) => p.loss));
  const pad = String(points[points.length - 1].round).length;
  return points
    .map((p) => {
      const bar = '█'.repeat(Math.max(1, Math.round((p.loss / max) * width)));
      const acc = p.accuracy === undefined ? '' : `  acc ${(p.accuracy * 100).toFixed(1)}%`;
      return `round ${String(p.round).padStart(pad)} │ ${bar} ${p.loss.toFixed(4)}${acc}`;
    })
    .join('\n');
}

/** An SVG line chart of loss per round (left axis) and held-out accuracy (right axis, dashed). */
export function lossCurveSvg(points: CurvePoint[], title: string, w = 640, h = 360): string {
  const m = { l: 56, r: 56, t: 32, b: 40 };
  const rounds = points.map((p) => p.round);
  const [r0, r1] = [Math.min(...rounds, 0), Math.max(...rounds, 1)];
  const maxLoss = Math.max(...points.map((p) => p.loss), 1e-9);
  const x = (r: number) => m.l + ((r - r0) / (r1 - r0 || 1)) * (w - m.l - m.r);
  const yLoss = (l: number) => h - m.b - (l / maxLoss) * (h - m.t - m.b);
  const yAcc = (a: number) => h - m.b - a * (h - m.t - m.b);
  const path = (pts: [number, number][]) => pts.map(([px, py], i) => `${i ? 'L' : 'M'}${px.toFixed(1)},${py.toFixed(1)}`).join(' ');
  const loss = path(points.map((p) => [x(p.round), yLoss(p.loss)]));
  const accPts = points.filter((p) => p.accuracy !== undefined);
  const acc = path(accPts.map((p) => [x(p.round), yAcc(p.accuracy!)]));
  const esc = (s: string) => s.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${w / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${m.l}" y1="${h - m.b}" x2="${w - m.r}" y2="${h - m.b}" stroke="#333"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${h - m.b}" stroke="#333"/>`,
    `<text x="${m.l - 6}" y="${m.t + 4}" text-anchor="end">${maxLoss.toPrecision(3)}</text>`,
    `<text x="${m.l - 6}" y="${h - m.b}" text-anchor="end">0</text>`,
    `<text x="${m.l}" y="${h - m.b + 16}" text-anchor="middle">${r0}</text>`,
    `<text x="${w - m.r}" y="${h - m.b + 16}" text-anchor="middle">${r1}</text>`,
    `<text x="${w / 2}" y="${h - 8}" text-anchor="middle">round</text>`,
    `<path d="${loss}" fill="none" stroke="#1f77b4" stroke-width="2"><title>training loss</title></path>`,
    accPts.length
      ? `<path d="${acc}" fill="none" stroke="#2ca02c" stroke-width="2" stroke-dasharray="6 4"><title>held-out accuracy</title></path>` +
        `<text x="${w - m.r + 6}" y="${m.t + 4}">100%</text><text x="${w - m.r + 6}" y="${h - m.b}">0%</text>`
      : '',
    `<text x="${m.l + 8}" y="${m.t + 14}" fill="#1f77b4">loss</text>`,
    accPts.length ? `<text x="${m.l + 48}" y="${m.t + 14}" fill="#2ca02c">accuracy</text>` : '',
    '</svg>',
  ].join('\n');
}

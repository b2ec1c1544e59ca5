import { deflateSync } from 'node:zlib';

/**
 * The loss curve of a trainingJob (from its `progress` query), as terminal text or an SVG file.
 * Pure functions, for the CLI: `drydock train curve <name> [--svg out.svg | --png out.png]`.
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

/** Pixel positions: rounds along x, loss on the left axis (0 to its max), accuracy on the right (0-100%). */
function scales(points: CurvePoint[], w: number, h: number, m: { l: number; r: number; t: number; b: number }) {
  const rounds = points.map((p) => p.round);
  const [r0, r1] = [Math.min(...rounds, 0), Math.max(...rounds, 1)];
  const maxLoss = Math.max(...points.map((p) => p.loss), 1e-9);
  return {
    r0,
    r1,
    maxLoss,
    x: (r: number) => m.l + ((r - r0) / (r1 - r0 || 1)) * (w - m.l - m.r),
    yLoss: (l: number) => h - m.b - (l / maxLoss) * (h - m.t - m.b),
    yAcc: (a: number) => h - m.b - a * (h - m.t - m.b),
  };
}

/** An SVG line chart of loss per round (left axis) and held-out accuracy (right axis, dashed). */
export function lossCurveSvg(points: CurvePoint[], title: string, w = 640, h = 360): string {
  const m = { l: 56, r: 56, t: 32, b: 40 };
  const { r0, r1, maxLoss, x, yLoss, yAcc } = scales(points, w, h, m);
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

/**
 * The same chart as a PNG (no native dependencies: lines rasterised here, encoded with node:zlib),
 * for places that do not render SVG.
 */
export function lossCurvePng(points: CurvePoint[], w = 640, h = 360): Buffer {
  const px = Buffer.alloc(w * h * 3, 0xff);
  const plot = (x: number, y: number, rgb: [number, number, number], thick = 1) => {
    for (let dx = -thick + 1; dx < thick; dx++) {
      for (let dy = -thick + 1; dy < thick; dy++) {
        const xi = Math.round(x) + dx;
        const yi = Math.round(y) + dy;
        if (xi >= 0 && xi < w && yi >= 0 && yi < h) px.set(rgb, (yi * w + xi) * 3);
      }
    }
  };
  const line = (x0: number, y0: number, x1: number, y1: number, rgb: [number, number, number], thick = 1, dash = 0) => {
    const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
    for (let i = 0; i <= n; i++) if (!dash || Math.floor(i / dash) % 2 === 0) plot(x0 + ((x1 - x0) * i) / n, y0 + ((y1 - y0) * i) / n, rgb, thick);
  };
  const m = { l: 40, r: 40, t: 20, b: 30 };
  const { x, yLoss, yAcc } = scales(points, w, h, m);
  line(m.l, h - m.b, w - m.r, h - m.b, [0x33, 0x33, 0x33]);
  line(m.l, m.t, m.l, h - m.b, [0x33, 0x33, 0x33]);
  for (let i = 1; i < points.length; i++) line(x(points[i - 1].round), yLoss(points[i - 1].loss), x(points[i].round), yLoss(points[i].loss), [0x1f, 0x77, 0xb4], 2);
  const acc = points.filter((p) => p.accuracy !== undefined);
  for (let i = 1; i < acc.length; i++) line(x(acc[i - 1].round), yAcc(acc[i - 1].accuracy!), x(acc[i].round), yAcc(acc[i].accuracy!), [0x2c, 0xa0, 0x2c], 2, 6);
  return encodePng(px, w, h);
}

function encodePng(rgb: Buffer, w: number, h: number): Buffer {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) rgb.copy(raw, y * (w * 3 + 1) + 1, y * w * 3, (y + 1) * w * 3); // filter byte 0 per row
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

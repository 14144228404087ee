/**
 * A hand-written SVG chart, readable in any browser or as text: two panels sharing the x axis (injected loss per
 * direction), goodput in delivered messages/s on the left and p99 delivery latency on the right, one line per
 * series, with axes, ticks, grid lines, labels and a legend.
 */

export interface Series {
  name: string;
  color: string;
  /** [loss fraction, value]; NaN values are skipped. */
  points: Array<[number, number]>;
}

export interface Panel {
  title: string;
  yLabel: string;
  series: Series[];
  /** A horizontal dashed line (a target or a limit) with its label. */
  reference?: { value: number; label: string };
}

const W = 460;
const H = 320;
const M = { left: 70, right: 20, top: 40, bottom: 60 };

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** 0, 1, 2, 5 × 10^k steps giving about five ticks up to at least `max`. */
function niceTicks(max: number): number[] {
  const top = max > 0 && Number.isFinite(max) ? max : 1;
  const raw = top / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw) as number;
  const ticks: number[] = [];
  for (let v = 0; v <= top + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function fmt(v: number): string {
  if (v >= 10_000) return `${(v / 1000).toFixed(0)}k`;
  if (v >= 1000) return `${(v / 1000).toFixed(1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

function panel(p: Panel, x0: number, xs: number[]): string {
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const values = p.series.flatMap((s) => s.points.map(([, v]) => v)).filter(Number.isFinite);
  if (p.reference) values.push(p.reference.value);
  const yTicks = niceTicks(Math.max(0, ...values) * 1.05);
  const yMax = yTicks[yTicks.length - 1] as number;
  const xMax = Math.max(...xs, 0.01);
  const X = (loss: number) => x0 + M.left + (loss / xMax) * pw;
  const Y = (v: number) => M.top + ph - (v / yMax) * ph;
  const out: string[] = [];
  out.push(`<g font-family="sans-serif" font-size="12">`);
  out.push(
    `<text x="${x0 + W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(p.title)}</text>`,
  );
  for (const t of yTicks) {
    out.push(`<line x1="${X(0)}" y1="${Y(t)}" x2="${X(xMax)}" y2="${Y(t)}" stroke="#ddd"/>`);
    out.push(`<text x="${X(0) - 6}" y="${Y(t) + 4}" text-anchor="end">${fmt(t)}</text>`);
  }
  for (const x of xs) {
    out.push(`<line x1="${X(x)}" y1="${Y(0)}" x2="${X(x)}" y2="${Y(0) + 5}" stroke="#000"/>`);
    out.push(`<text x="${X(x)}" y="${Y(0) + 18}" text-anchor="middle">${(x * 100).toFixed(0)}%</text>`);
  }
  out.push(`<line x1="${X(0)}" y1="${Y(0)}" x2="${X(xMax)}" y2="${Y(0)}" stroke="#000"/>`);
  out.push(`<line x1="${X(0)}" y1="${Y(0)}" x2="${X(0)}" y2="${Y(yMax)}" stroke="#000"/>`);
  out.push(
    `<text x="${X(xMax / 2)}" y="${H - 22}" text-anchor="middle">injected loss, each direction</text>`,
    `<text transform="translate(${x0 + 16},${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(p.yLabel)}</text>`,
  );
  if (p.reference) {
    const y = Y(p.reference.value);
    out.push(`<line x1="${X(0)}" y1="${y}" x2="${X(xMax)}" y2="${y}" stroke="#c00" stroke-dasharray="6 4"/>`);
    out.push(
      `<text x="${X(xMax) - 4}" y="${y - 5}" text-anchor="end" fill="#c00">${esc(p.reference.label)}</text>`,
    );
  }
  p.series.forEach((s, i) => {
    const pts = s.points.filter(([, v]) => Number.isFinite(v));
    if (pts.length > 0) {
      const d = pts
        .map(([x, v], j) => `${j === 0 ? "M" : "L"}${X(x).toFixed(1)},${Y(v).toFixed(1)}`)
        .join(" ");
      out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
      for (const [x, v] of pts)
        out.push(
          `<circle cx="${X(x).toFixed(1)}" cy="${Y(v).toFixed(1)}" r="3.5" fill="${s.color}"><title>${esc(s.name)} at ${(x * 100).toFixed(0)}%: ${v.toFixed(1)}</title></circle>`,
        );
    }
    const ly = H - 6 + Math.floor(i / 2) * 14;
    const lx = x0 + M.left + (i % 2) * 180;
    out.push(`<rect x="${lx}" y="${ly - 9}" width="14" height="4" fill="${s.color}"/>`);
    out.push(`<text x="${lx + 18}" y="${ly - 4}">${esc(s.name)}</text>`);
  });
  out.push("</g>");
  return out.join("\n");
}

/** The whole chart: `left` and `right` panels side by side over the same loss rates `xs`. */
export function lossChart(title: string, xs: number[], left: Panel, right: Panel): string {
  const width = 2 * W;
  const height = H + 44;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="${height - 4}" text-anchor="middle" font-family="sans-serif" font-size="11" fill="#555">${esc(title)}</text>`,
    panel(left, 0, xs),
    panel(right, W, xs),
    "</svg>",
    "",
  ].join("\n");
}

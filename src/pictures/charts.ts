// The summary as charts: trainable and frozen parameters per stage, and each component's share of
// the parameters and of every graph's FLOPs. Plain inline SVG bars, so the page stays one file.

import { shortCount } from "./picture.js";

/** The part of `vlmc summary`'s result the charts draw (structural, so this module imports nothing). */
export interface ChartSummary {
  readonly model: string;
  readonly params: { readonly total: number; readonly trainable: number; readonly frozen: number };
  readonly components: readonly {
    readonly name: string;
    readonly role: string | null;
    readonly frozen: boolean;
    readonly params: number;
  }[];
  readonly stages: readonly { readonly name: string; readonly trainable: number; readonly frozen: number }[];
  readonly graphs: readonly {
    readonly name: string;
    readonly flops: number;
    readonly componentFlops: readonly { readonly component: string; readonly flops: number }[];
  }[];
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

const WIDTH = 560;
const ROW = 26;
const LABEL = 110;
const TRAINABLE = "#f0a640";
const FROZEN = "#7f9cc8";

interface Segment {
  readonly value: number;
  readonly color: string;
  readonly title: string;
}

/** Horizontal bars, one per row, each split into segments; each segment's title is its hover text. */
function bars(rows: readonly { label: string; segments: readonly Segment[]; note: string }[]): string {
  const max = Math.max(1, ...rows.map((r) => r.segments.reduce((a, s) => a + s.value, 0)));
  const span = WIDTH - LABEL - 150;
  const body = rows.map((r, i) => {
    const y = i * ROW + 4;
    let x = LABEL;
    const rects = r.segments.map((s) => {
      const w = (s.value / max) * span;
      const rect = `<rect x="${x.toFixed(1)}" y="${y}" width="${Math.max(w, 0).toFixed(1)}" height="${ROW - 8}" fill="${s.color}" stroke="#555" stroke-width="0.5"><title>${escapeHtml(s.title)}</title></rect>`;
      x += w;
      return rect;
    });
    return [
      `<text x="${LABEL - 6}" y="${y + ROW / 2}" text-anchor="end">${escapeHtml(r.label)}</text>`,
      ...rects,
      `<text x="${LABEL + span + 6}" y="${y + ROW / 2}">${escapeHtml(r.note)}</text>`,
    ].join("");
  });
  return `<svg class="chart" width="${WIDTH}" height="${rows.length * ROW + 8}" font-family="Helvetica, sans-serif" font-size="12">${body.join("")}</svg>`;
}

function percent(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : "0%";
}

/** Legend and one stacked bar of shares, plus a table of the numbers behind it. */
function shares(
  items: readonly { name: string; value: number; color: string }[],
  unit: string,
  caption: string,
): string {
  const total = items.reduce((a, i) => a + i.value, 0);
  const rows = items
    .map(
      (i) =>
        `<tr><td><span class="swatch" style="background:${i.color}"></span>${escapeHtml(i.name)}</td><td>${i.value.toLocaleString("en-US")}</td><td>${percent(i.value, total)}</td></tr>`,
    )
    .join("");
  const bar = bars([
    {
      label: caption,
      segments: items.map((i) => ({ value: i.value, color: i.color, title: `${i.name}: ${percent(i.value, total)}` })),
      note: `${shortCount(total, unit === "FLOPs" ? "G" : "B")} ${unit}`,
    },
  ]);
  return `${bar}<table><tr><th></th><th>${unit}</th><th>share</th></tr>${rows}</table>`;
}

// Shares need a colour per component (two frozen encoders share a role colour); Tableau 10.
const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#59a14f",
  "#e15759",
  "#76b7b2",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];

/** The charts section of a page, for one model. */
export function summaryCharts(s: ChartSummary): string {
  const color = new Map(s.components.map((c, i) => [c.name, PALETTE[i % PALETTE.length]!]));
  const stageRows = [
    { name: "deployment", trainable: s.params.trainable, frozen: s.params.frozen },
    ...s.stages.map((st) => ({ name: `stage ${st.name}`, trainable: st.trainable, frozen: st.frozen })),
  ].map((st) => ({
    label: st.name,
    segments: [
      { value: st.trainable, color: TRAINABLE, title: `trainable: ${st.trainable.toLocaleString("en-US")}` },
      { value: st.frozen, color: FROZEN, title: `frozen: ${st.frozen.toLocaleString("en-US")}` },
    ],
    note: `${shortCount(st.trainable)} trainable`,
  }));
  const parts = [
    `<section class="summary" data-model="${escapeHtml(s.model)}">`,
    `<h2>${escapeHtml(s.model)}: parameters</h2>`,
    `<p><span class="swatch" style="background:${TRAINABLE}"></span>trainable <span class="swatch" style="background:${FROZEN}"></span>frozen · ${s.params.total.toLocaleString("en-US")} in all</p>`,
    bars(stageRows),
    "<h3>parameter share per component</h3>",
    shares(
      s.components.map((c) => ({ name: c.name, value: c.params, color: color.get(c.name) ?? "#ccc" })),
      "parameters",
      "parameters",
    ),
  ];
  for (const g of s.graphs) {
    parts.push(`<h3>FLOP share per component: graph ${escapeHtml(g.name)}</h3>`);
    parts.push(
      shares(
        g.componentFlops.map((c) => ({ name: c.component, value: c.flops, color: color.get(c.component) ?? "#ccc" })),
        "FLOPs",
        g.name,
      ),
    );
  }
  parts.push("</section>");
  return parts.join("\n");
}

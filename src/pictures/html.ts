// One self-contained HTML page: every view laid out by Graphviz ahead of time and inlined as SVG,
// a few lines of script to switch views on a click and show a box's spec line and shapes on hover,
// and the summary charts. Nothing is fetched when the page opens.

import { escapeHtml, summaryCharts, type ChartSummary } from "./charts.js";
import { toDot } from "./dot.js";
import type { Picture, PictureInfo } from "./picture.js";
import { dotToSvg, inlineSvg } from "./svg.js";

export interface PageView {
  readonly id: string;
  /** Toolbar label; views whose id starts with `open-` are reached by clicking a box instead. */
  readonly title: string;
  readonly picture: Picture;
}

const STYLE = `
body { font-family: Helvetica, Arial, sans-serif; margin: 16px; color: #222; }
header { display: flex; gap: 12px; align-items: baseline; flex-wrap: wrap; }
h1 { font-size: 18px; margin: 0; }
button { font: inherit; padding: 2px 10px; }
button[aria-pressed="true"] { font-weight: bold; }
.view svg { max-width: 100%; height: auto; }
.vlmopens { cursor: pointer; }
#info { position: fixed; display: none; max-width: 520px; background: #fffff4; border: 1px solid #999;
  padding: 6px 9px; font-size: 12px; box-shadow: 2px 2px 6px rgba(0,0,0,.2); pointer-events: none; }
#info code { white-space: pre-wrap; }
#info ul { margin: 2px 0; padding-left: 16px; }
.summary table { border-collapse: collapse; font-size: 12px; margin: 4px 0 12px; }
.summary td, .summary th { padding: 1px 10px 1px 0; text-align: right; }
.summary td:first-child { text-align: left; }
.swatch { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 8px; border: 1px solid #555; }
.hint { color: #666; font-size: 12px; }
`;

// Plain ES2015 so any browser runs it; the data is the JSON in #vlm-data.
const SCRIPT = `
(function () {
  var data = JSON.parse(document.getElementById("vlm-data").textContent);
  var views = document.querySelectorAll(".view");
  var buttons = document.querySelectorAll("button[data-show]");
  var info = document.getElementById("info");
  function show(id) {
    views.forEach(function (v) { v.hidden = v.getAttribute("data-view") !== id; });
    buttons.forEach(function (b) { b.setAttribute("aria-pressed", String(b.getAttribute("data-show") === id)); });
    document.body.setAttribute("data-current", id);
    info.style.display = "none";
  }
  function target(e) {
    var g = e.target.closest ? e.target.closest("g.node, g.cluster") : null;
    return g && data.boxes[g.id] ? g : null;
  }
  buttons.forEach(function (b) { b.addEventListener("click", function () { show(b.getAttribute("data-show")); }); });
  document.addEventListener("click", function (e) {
    var g = target(e);
    if (g && data.boxes[g.id].expands) show(data.boxes[g.id].expands);
  });
  function line(s) { var li = document.createElement("li"); li.textContent = s; return li; }
  document.addEventListener("mousemove", function (e) {
    var g = target(e);
    if (!g) { info.style.display = "none"; return; }
    var box = data.boxes[g.id];
    info.textContent = "";
    var title = document.createElement("b");
    title.textContent = box.title;
    info.appendChild(title);
    if (box.spec) { var c = document.createElement("div"); var code = document.createElement("code"); code.textContent = box.spec; c.appendChild(code); info.appendChild(c); }
    [["in", box.inputs], ["out", box.outputs], ["", box.notes]].forEach(function (part) {
      if (!part[1].length) return;
      var ul = document.createElement("ul");
      part[1].forEach(function (s) { ul.appendChild(line((part[0] ? part[0] + " " : "") + s)); });
      info.appendChild(ul);
    });
    if (box.expands) info.appendChild(line("click to " + (box.expands === "components" ? "close" : "open")));
    info.style.display = "block";
    info.style.left = Math.min(e.clientX + 14, window.innerWidth - 540) + "px";
    info.style.top = Math.min(e.clientY + 14, window.innerHeight - info.offsetHeight - 8) + "px";
  });
  window.addEventListener("scroll", function () { info.style.display = "none"; });
  show(data.initial);
})();
`;

type BoxData = PictureInfo & { expands?: string };

/** The page: views in the given order (the first is shown), then the summary charts. */
export async function renderPage(title: string, views: readonly PageView[], summary?: ChartSummary): Promise<string> {
  const boxes: Record<string, BoxData> = {};
  const sections: string[] = [];
  for (const view of views) {
    const prefix = `${view.id}~`;
    for (const n of view.picture.nodes)
      boxes[prefix + n.id] = { ...n.info, ...(n.expands ? { expands: n.expands } : {}) };
    for (const c of view.picture.clusters)
      boxes[prefix + c.id] = { ...c.info, ...(c.expands ? { expands: c.expands } : {}) };
    const svg = inlineSvg(await dotToSvg(toDot(view.picture, prefix)));
    sections.push(`<section class="view" data-view="${escapeHtml(view.id)}">${svg}</section>`);
  }
  const toolbar = views
    .filter((v) => !v.id.startsWith("open-"))
    .map((v) => `<button type="button" data-show="${escapeHtml(v.id)}">${escapeHtml(v.title)}</button>`)
    .join("");
  const data = JSON.stringify({ initial: views[0]?.id ?? "", boxes }).replace(/</g, "\\u003c");
  return [
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${STYLE}</style></head><body>`,
    `<header><h1>${escapeHtml(title)}</h1>${toolbar}<span class="hint">click a box to open it, its frame to close it; hover for the spec line and shapes</span></header>`,
    ...sections,
    '<div id="info"></div>',
    ...(summary ? [summaryCharts(summary)] : []),
    `<script type="application/json" id="vlm-data">${data}</script>`,
    `<script>${SCRIPT}</script>`,
    "</body></html>",
    "",
  ].join("\n");
}

/** `vlmc summary --html`: the charts alone. */
export function renderSummaryPage(summaries: readonly ChartSummary[]): string {
  return [
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(summaries.map((s) => s.model).join(", "))}: summary</title>`,
    `<style>${STYLE}</style></head><body>`,
    ...summaries.map(summaryCharts),
    "</body></html>",
    "",
  ].join("\n");
}

// Picture → Graphviz DOT. Graphviz does the layout; this only says what to draw: role colours,
// frozen parts shaded darker, fused ops green, near misses dashed red, edges labelled with shapes
// and proved token counts.

import type { Picture, PictureCluster, PictureNode, PictureRole } from "./picture.js";

/** Light fill for trainable parts, a darker shade of the same hue for frozen ones. */
const FILL: Record<PictureRole, { live: string; frozen: string }> = {
  encoder: { live: "#dbe8fb", frozen: "#9fbbe3" },
  fusion: { live: "#fde6c6", frozen: "#e8bd80" },
  head: { live: "#d7f2dd", frozen: "#9ccfa9" },
  glue: { live: "#f2f2f2", frozen: "#d0d0d0" },
  io: { live: "#ffffff", frozen: "#ffffff" },
  param: { live: "#f6e1f3", frozen: "#dcb6d6" },
};

export function fillOf(role: PictureRole, frozen: boolean): string {
  return frozen ? FILL[role].frozen : FILL[role].live;
}

function quote(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

function attrs(a: Record<string, string | undefined>): string {
  return Object.entries(a)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join(", ");
}

function nodeLine(n: PictureNode, idPrefix: string): string {
  const shape = n.role === "io" ? "ellipse" : n.role === "param" ? "note" : "box";
  const style = ["filled", ...(n.role === "io" ? [] : ["rounded"]), ...(n.mark === "near-miss" ? ["dashed"] : [])];
  const color = n.mark === "near-miss" ? "#c62828" : n.mark === "fused" ? "#2e7d32" : "#555555";
  return `${quote(n.id)} [${attrs({
    id: idPrefix + n.id,
    class: n.expands ? "vlmbox vlmopens" : "vlmbox",
    label: [n.title, ...n.lines].join("\n"),
    shape,
    style: style.join(","),
    fillcolor: n.mark === "fused" ? "#c9efc9" : fillOf(n.role, n.frozen),
    color,
    penwidth: n.mark ? "2" : "1",
  })}];`;
}

/** DOT text; `idPrefix` keeps SVG element ids unique when one page holds several views. */
export function toDot(picture: Picture, idPrefix = ""): string {
  const children = new Map<string | undefined, PictureCluster[]>();
  for (const c of picture.clusters) children.set(c.parent, [...(children.get(c.parent) ?? []), c]);
  const members = new Map<string | undefined, PictureNode[]>();
  for (const n of picture.nodes) members.set(n.cluster, [...(members.get(n.cluster) ?? []), n]);

  const body = (cluster: string | undefined, indent: string): string[] => {
    const out: string[] = [];
    for (const c of children.get(cluster) ?? []) {
      out.push(`${indent}subgraph ${quote(`cluster_${c.id}`)} {`);
      out.push(
        `${indent}  graph [${attrs({
          id: idPrefix + c.id,
          class: c.expands ? "vlmcluster vlmopens" : "vlmcluster",
          label: c.label,
          style: "filled,rounded",
          fillcolor: fillOf(c.role, c.frozen),
          color: "#777777",
        })}];`,
      );
      out.push(...body(c.id, `${indent}  `));
      out.push(`${indent}}`);
    }
    for (const n of members.get(cluster) ?? []) out.push(indent + nodeLine(n, idPrefix));
    return out;
  };

  const edges = picture.edges.map(
    (e) =>
      `  ${quote(e.from)} -> ${quote(e.to)} [${attrs({
        label: e.tokens ? `${e.label}\n${e.tokens}` : e.label,
        fontcolor: e.tokens ? "#1a237e" : "#444444",
      })}];`,
  );
  return [
    `digraph ${quote(picture.title)} {`,
    `  graph [${attrs({ rankdir: "TB", fontname: "Helvetica", fontsize: "12", nodesep: "0.3", ranksep: "0.45", label: picture.title, labelloc: "t" })}];`,
    `  node [${attrs({ fontname: "Helvetica", fontsize: "11", margin: "0.15,0.06" })}];`,
    `  edge [${attrs({ fontname: "Helvetica", fontsize: "9", color: "#666666", arrowsize: "0.7" })}];`,
    ...body(undefined, "  "),
    ...edges,
    "}",
    "",
  ].join("\n");
}

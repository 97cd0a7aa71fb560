// `vlmc graph`: what to draw, built from the elaborated IR (and, at the ops level, the IR after the
// passes with their near-miss reports). Components become boxes coloured by role and shaded when
// frozen; the blocks level opens components into their sub-blocks, drawing a repeat once with its
// count; the ops level draws the ops of one block or graph with the rules that rewrote them.
// Layout and rendering are src/pictures/.

import * as path from "node:path";
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { Span } from "../diagnostics/source.js";
import { dimToString } from "../ir/dims.js";
import type { Graph, IrModule, Node, Value } from "../ir/graph.js";
import { typeToString } from "../ir/types.js";
import type { TokenFact } from "../lang/elaborate/elaborate.js";
import type { Program } from "../lang/parser/program.js";
import { createPassManager, type NearMissRecord } from "../passes/index.js";
import { TARGET_NAMES, type TargetName } from "../target/target.js";
import { toDot } from "../pictures/dot.js";
import { renderPage, type PageView } from "../pictures/html.js";
import {
  shortCount,
  type Picture,
  type PictureCluster,
  type PictureEdge,
  type PictureNode,
  type PictureRole,
} from "../pictures/picture.js";
import { dotToSvg } from "../pictures/svg.js";
import { elaborate, type CheckResult, type ElaboratedModel } from "./check.js";
import { paramCount } from "../ir/analysis.js";
import { summarize } from "./summary.js";

export { renderSummaryPage } from "../pictures/html.js";

export const GRAPH_LEVELS = ["components", "blocks", "ops"] as const;
export type GraphLevel = (typeof GRAPH_LEVELS)[number];
export const GRAPH_FORMATS = ["svg", "html", "dot"] as const;
export type GraphFormat = (typeof GRAPH_FORMATS)[number];
export const GRAPH_TARGETS = TARGET_NAMES;
export type GraphTarget = TargetName;

export interface GraphOptions {
  readonly model?: string;
  /** The entry point to draw (default: the first, usually `forward`). */
  readonly graph?: string;
  readonly level?: GraphLevel;
  /** At the ops level, only the ops under this block (`vision/encoder/layers/0` or `vision.encoder.layers.0`). */
  readonly block?: string;
  /** At the ops level, the target whose fusions the passes apply (default portable). */
  readonly target?: TargetName;
  readonly format?: GraphFormat;
}

export interface GraphResult extends CheckResult {
  /** The rendered picture: DOT, SVG or a self-contained HTML page; absent when there were errors. */
  readonly text: string | undefined;
}

/** Where an IR node is drawn at a given level of detail. */
interface Place {
  readonly id: string;
  readonly component?: string;
  readonly repeat?: string;
  readonly index?: string;
}

interface Source {
  readonly program: Program;
  readonly module: IrModule;
  readonly graph: Graph;
  readonly tokens: readonly TokenFact[];
}

/** `file:line: text` of a span's first line; std files as `std/<name>`. */
function specLine(program: Program, span: Span): string | undefined {
  const file = program.files.get(span.file);
  if (!file) return undefined;
  const { line } = file.source.position(span.start);
  const shown = file.isStd ? `std/${path.basename(span.file)}` : span.file;
  return `${shown}:${line}: ${file.source.lineText(line).trim()}`;
}

function tokenLabel(tokens: readonly TokenFact[], v: Value): string | undefined {
  const fact = tokens.find((t) => t.tensor === v);
  return fact && `${dimToString(fact.value)} tokens (proved)`;
}

/** Parameter counts under every dotted prefix (`vision.`, `vision.encoder.layers.0.`). */
function prefixCounts(module: IrModule): Map<string, number> {
  const counts = new Map<string, number>();
  for (const p of module.params) {
    if (p.buffer) continue;
    const parts = p.name.split(".");
    for (let i = 1; i < parts.length; i++) {
      const prefix = `${parts.slice(0, i).join(".")}.`;
      counts.set(prefix, (counts.get(prefix) ?? 0) + paramCount(p));
    }
  }
  return counts;
}

/** Accumulates boxes, clusters and de-duplicated edges, and the shapes each box's hover lists. */
class PictureBuilder {
  readonly nodes = new Map<string, PictureNode>();
  readonly clusters = new Map<string, PictureCluster>();
  private readonly edges = new Map<string, PictureEdge>();

  node(n: Omit<PictureNode, "info"> & { info?: Partial<PictureNode["info"]> }): void {
    if (this.nodes.has(n.id)) return;
    this.nodes.set(n.id, {
      ...n,
      info: { title: n.title, inputs: [], outputs: [], notes: [], ...n.info },
    });
  }

  cluster(c: PictureCluster): void {
    if (!this.clusters.has(c.id)) this.clusters.set(c.id, c);
  }

  edge(from: string, to: string, v: Value, tokens: readonly TokenFact[]): void {
    if (from === to) return;
    const label = typeToString(v.type);
    const key = `${from}\u0000${to}\u0000${label}`;
    if (this.edges.has(key)) return;
    const proved = tokenLabel(tokens, v);
    this.edges.set(key, { from, to, label, ...(proved ? { tokens: proved } : {}) });
    const shape = proved ? `${label} (${proved})` : label;
    const a = this.nodes.get(from);
    const b = this.nodes.get(to);
    if (a) a.info = { ...a.info, outputs: [...a.info.outputs, `${shape} → ${b?.title ?? to}`] };
    if (b) b.info = { ...b.info, inputs: [...b.info.inputs, `${shape} ← ${a?.title ?? from}`] };
  }

  picture(title: string): Picture {
    return {
      title,
      nodes: [...this.nodes.values()],
      clusters: [...this.clusters.values()],
      edges: [...this.edges.values()],
    };
  }
}

/** The ellipse of a graph input; returns its id. */
function inputNode(b: PictureBuilder, name: string, v: Value): string {
  b.node({ id: `in:${name}`, title: name, lines: [typeToString(v.type)], role: "io", frozen: false });
  return `in:${name}`;
}

function ioNodes(b: PictureBuilder, g: Graph): void {
  for (const v of g.inputs) if (v.source.kind === "input") inputNode(b, v.source.name, v);
  for (const o of g.outputs)
    b.node({ id: `out:${o.name}`, title: o.name, lines: [typeToString(o.value.type)], role: "io", frozen: false });
}

/**
 * Components as boxes; the components in `expanded` open into their blocks. `expands` names the
 * view a click on a box (or an open component's frame) leads to on the interactive page.
 */
function structurePicture(
  src: Source,
  expanded: ReadonlySet<string>,
  expands?: { box: (component: string) => string; frame: string },
): Picture {
  const { program, module, graph, tokens } = src;
  const b = new PictureBuilder();
  const components = new Map(module.components.map((c) => [c.name, c]));
  const counts = prefixCounts(module);
  const summary = summarize(module, new Map());
  const componentParams = new Map(summary.components.map((c) => [c.name, c.params]));
  ioNodes(b, graph);

  for (const c of module.components) {
    const role: PictureRole = c.role ?? "glue";
    const params = componentParams.get(c.name) ?? 0;
    const info = {
      spec: specLine(program, c.span),
      notes: [
        `${c.block}, ${c.role ?? "no role"}${c.frozen ? ", frozen" : ""}`,
        `${params.toLocaleString("en-US")} parameters`,
      ],
    };
    if (expanded.has(c.name)) {
      b.cluster({
        id: `c:${c.name}`,
        label: `${c.name} = ${c.block}${c.frozen ? " (frozen)" : ""} · ${shortCount(params)} params`,
        role,
        frozen: c.frozen,
        ...(expands ? { expands: expands.frame } : {}),
        info: { title: c.name, inputs: [], outputs: [], ...info },
      });
    } else {
      b.node({
        id: `c:${c.name}`,
        title: c.name,
        lines: [`${c.role ?? "component"} · ${c.block}`, `${shortCount(params)} params${c.frozen ? " · frozen" : ""}`],
        role,
        frozen: c.frozen,
        ...(expands ? { expands: expands.box(c.name) } : {}),
        info,
      });
    }
  }

  const glue = glueGroups(graph, (n) => components.has(n.scope.split("/").find((x) => x !== "") ?? ""));
  const placeOf = (n: Node): Place => {
    const segs = n.scope.split("/").filter(Boolean);
    const comp = segs[0];
    const info = comp === undefined ? undefined : components.get(comp);
    if (!info || comp === undefined) {
      const group = glue.get(n)!;
      b.node({
        id: `op:${group.id}`,
        title: group.title,
        lines: group.lines,
        role: "glue",
        frozen: false,
        info: { spec: specLine(program, n.span) },
      });
      return { id: `op:${group.id}` };
    }
    if (!expanded.has(comp)) return { id: `c:${comp}`, component: comp };
    const k = segs.findIndex((s, i) => i >= 1 && /^\d+$/.test(s));
    const cluster = `c:${comp}`;
    const role: PictureRole = info.role ?? "glue";
    if (k < 0) {
      const key = segs.slice(0, 2).join("/");
      const own = segs.length === 1;
      const params = counts.get(`${segs.slice(0, 2).join(".")}.`);
      b.node({
        id: `b:${key}`,
        title: own ? `${info.block} forward` : segs[1]!,
        lines: own || params === undefined ? [] : [`${shortCount(params)} params`],
        role,
        frozen: info.frozen,
        cluster,
        info: { spec: specLine(program, n.span) },
      });
      return { id: `b:${key}`, component: comp };
    }
    const repeat = segs.slice(0, k).join("/");
    const child = segs[k + 1];
    const id = `b:${repeat}/*${child === undefined ? "" : `/${child}`}`;
    b.cluster({
      id: `r:${repeat}`,
      label: `${segs.slice(1, k).join(".")} × ${layers(repeat)}`,
      role,
      frozen: info.frozen,
      parent: cluster,
      info: {
        title: segs.slice(1, k).join("."),
        inputs: [],
        outputs: [],
        notes: ["drawn once; the picture shows layer 0"],
      },
    });
    const prefix = segs.slice(0, k).join(".");
    const params = child === undefined ? undefined : counts.get(`${prefix}.0.${child}.`);
    // ResNet stages downsample in their first block only: then the count is layer 0's alone.
    const same = child !== undefined && counts.get(`${prefix}.1.${child}.`) === params;
    b.node({
      id,
      title: child ?? "(layer body)",
      lines: params === undefined ? [] : [`${shortCount(params)} params ${same ? "per layer" : "in layer 0"}`],
      role,
      frozen: info.frozen,
      cluster: `r:${repeat}`,
      info: { spec: specLine(program, n.span) },
    });
    return { id, component: comp, repeat, index: segs[k]! };
  };

  // Declared layers (from the parameters) against the layers this graph runs (`layer: -2` runs one fewer).
  const layers = (repeat: string): string => {
    const declared = maxIndex(
      module.params.map((p) => p.name),
      `${repeat.replace(/\//g, ".")}.`,
      ".",
    );
    const run = maxIndex(
      graph.nodes.map((n) => n.scope),
      `/${repeat}/`,
      "/",
    );
    return declared > run ? `${declared + 1} (${run + 1} run)` : String(run + 1);
  };
  const places = new Map<Node, Place>();
  for (const n of graph.nodes) places.set(n, placeOf(n));
  const sourcePlace = (v: Value, user: Place): Place | undefined => {
    if (v.source.kind === "input") return { id: `in:${v.source.name}` };
    if (v.source.kind === "node") return places.get(v.source.node);
    const p = v.source.param;
    if (components.has(p.component)) {
      if (user.component === p.component) return undefined;
      if (!expanded.has(p.component)) return { id: `c:${p.component}`, component: p.component };
    }
    b.node({
      id: `p:${p.name}`,
      title: p.name,
      lines: [typeToString(p.type)],
      role: "param",
      frozen: p.frozen,
      ...(components.has(p.component) && expanded.has(p.component) ? { cluster: `c:${p.component}` } : {}),
      info: { spec: specLine(program, p.span) },
    });
    return { id: `p:${p.name}`, component: p.component };
  };
  for (const n of graph.nodes) {
    const to = places.get(n)!;
    for (const v of n.inputs) {
      if (!v) continue;
      const from = sourcePlace(v, to);
      // Inside a repeat only layer-to-itself edges are drawn: the layer-to-next-layer ones would loop.
      if (!from || (from.repeat !== undefined && from.repeat === to.repeat && from.index !== to.index)) continue;
      b.edge(from.id, to.id, v, tokens);
    }
  }
  for (const o of graph.outputs) {
    const from = sourcePlace(o.value, { id: `out:${o.name}` });
    if (from) b.edge(from.id, `out:${o.name}`, o.value, tokens);
  }
  return b.picture(`${module.name} · ${graph.name}`);
}

interface GlueGroup {
  readonly id: number;
  readonly title: string;
  readonly lines: string[];
}

/**
 * The model's own ops (outside every component) joined into groups of ops connected to each other,
 * so a loop of 60 `where`s between two components is one box, not 60: `62 ops` and the commonest.
 */
function glueGroups(graph: Graph, inComponent: (n: Node) => boolean): Map<Node, GlueGroup> {
  const parent = new Map<Node, Node>();
  const root = (n: Node): Node => {
    let r = n;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(n, r);
    return r;
  };
  const own = graph.nodes.filter((n) => !inComponent(n));
  for (const n of own) parent.set(n, n);
  for (const n of own)
    for (const v of n.inputs) {
      const p = v?.producer;
      if (p && parent.has(p)) parent.set(root(p), root(n));
    }
  const members = new Map<Node, Node[]>();
  for (const n of own) members.set(root(n), [...(members.get(root(n)) ?? []), n]);
  const groups = new Map<Node, GlueGroup>();
  for (const list of members.values()) {
    const counts = new Map<string, number>();
    for (const n of list) counts.set(n.op, (counts.get(n.op) ?? 0) + 1);
    const common = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 3);
    const group: GlueGroup =
      list.length === 1
        ? { id: list[0]!.id, title: list[0]!.op, lines: [] }
        : {
            id: list[0]!.id,
            title: `${list.length} ops`,
            lines: [common.map(([op, c]) => (c > 1 ? `${op} ×${c}` : op)).join(", ")],
          };
    for (const n of list) groups.set(n, group);
  }
  return groups;
}

/** The highest numeric segment right after `prefix` among `names` (-1 if none). */
function maxIndex(names: readonly string[], prefix: string, sep: string): number {
  let max = -1;
  for (const name of names)
    if (name.startsWith(prefix)) {
      const index = Number(name.slice(prefix.length).split(sep)[0]);
      if (Number.isInteger(index)) max = Math.max(max, index);
    }
  return max;
}

/** The ops under `block` (or the whole graph) after the passes, with rules and near misses. */
function opsPicture(src: Source, block: string | undefined, misses: readonly NearMissRecord[]): Picture {
  const { program, module, graph } = src;
  const b = new PictureBuilder();
  const scope = block === undefined ? "" : `/${block}`;
  const inside = (n: Node) => scope === "" || n.scope === scope || n.scope.startsWith(`${scope}/`);
  const sameSpan = (a: Span, c: Span) => a.file === c.file && a.start === c.start && a.end === c.end;
  for (const n of graph.nodes) {
    if (!inside(n)) continue;
    const missed = misses.filter((m) => m.op === n.op && m.scope === n.scope && sameSpan(m.span, n.span));
    const out = n.outputs[0];
    b.node({
      id: `n:${n.id}`,
      title: n.op,
      lines: [
        ...(out ? [typeToString(out.type)] : []),
        ...(n.rules.length > 0 ? [`← ${n.rules.join(", ")}`] : []),
        ...[...new Set(missed.map((m) => m.rule))].map((r) => `near miss: ${r}`),
      ],
      role: "glue",
      frozen: false,
      ...(missed.length > 0 ? { mark: "near-miss" as const } : n.rules.length > 0 ? { mark: "fused" as const } : {}),
      info: {
        spec: specLine(program, n.span),
        notes: [
          `scope ${n.scope || "(model)"}`,
          ...n.inputs.flatMap((v) =>
            v?.source.kind === "param" ? [`weight ${v.source.param.name}: ${typeToString(v.type)}`] : [],
          ),
          ...(n.rules.length > 0 ? [`rewritten by ${n.rules.join(", ")}`] : []),
          ...missed.map((m) => `near miss ${m.rule}: ${m.reason}`),
        ],
      },
    });
  }
  const outside = (v: Value): string => {
    if (v.source.kind === "input") return inputNode(b, v.source.name, v);
    const producer = v.producer!;
    const id = `x:${v.id}`;
    b.node({ id, title: `from ${producer.scope || "(model)"}`, lines: [producer.op], role: "io", frozen: false });
    return id;
  };
  for (const n of graph.nodes) {
    if (!inside(n)) continue;
    for (const v of n.inputs) {
      if (!v || v.source.kind === "param") continue;
      const producer = v.producer;
      b.edge(producer && inside(producer) ? `n:${producer.id}` : outside(v), `n:${n.id}`, v, src.tokens);
    }
    for (const v of n.outputs) {
      const users = [...new Set(v.uses.map((u) => u.node).filter((u) => !inside(u)))];
      if (users.length > 0) {
        const id = `y:${v.id}`;
        b.node({
          id,
          title: `to ${users[0]!.scope || "(model)"}`,
          lines: users.length > 1 ? [`and ${users.length - 1} more`] : [],
          role: "io",
          frozen: false,
        });
        b.edge(`n:${n.id}`, id, v, src.tokens);
      }
    }
  }
  for (const o of graph.outputs) {
    const p = o.value.producer;
    if (!p || !inside(p)) continue;
    b.node({ id: `out:${o.name}`, title: o.name, lines: [typeToString(o.value.type)], role: "io", frozen: false });
    b.edge(`n:${p.id}`, `out:${o.name}`, o.value, src.tokens);
  }
  return b.picture(`${module.name} · ${graph.name} · ${block ?? "all ops"}`);
}

/** Top-level block paths of a graph (`vision/embeddings`, `llm/layers/0`), for the "no such block" hint. */
function blockPaths(graph: Graph): string[] {
  const found = new Set<string>();
  for (const n of graph.nodes) {
    const segs = n.scope.split("/").filter(Boolean);
    const k = segs.findIndex((s) => /^\d+$/.test(s));
    found.add(segs.slice(0, k >= 0 ? k + 1 : 2).join("/"));
  }
  return [...found].filter((s) => s !== "").slice(0, 12);
}

/** The interactive page's views: every component closed, each one opened, and all opened. */
function pageViews(src: Source): PageView[] {
  const names = src.module.components.map((c) => c.name);
  const box = (c: string) => `open-${c}`;
  const views: PageView[] = [
    { id: "components", title: "components", picture: structurePicture(src, new Set(), { box, frame: "components" }) },
    {
      id: "blocks",
      title: "all blocks",
      picture: structurePicture(src, new Set(names), { box, frame: "components" }),
    },
  ];
  for (const c of names)
    views.push({
      id: box(c),
      title: c,
      picture: structurePicture(src, new Set([c]), { box, frame: "components" }),
    });
  return views;
}

function pickGraph(m: ElaboratedModel, name: string | undefined): Graph | undefined {
  return name === undefined ? m.module?.graphs[0] : m.module?.graphs.find((g) => g.name === name);
}

/** Elaborates FILE and draws one model's graph at the chosen level, as DOT, SVG or an HTML page. */
export async function drawGraph(paths: readonly string[], options: GraphOptions = {}): Promise<GraphResult> {
  const elaborated = elaborate(paths, options.model !== undefined ? { model: options.model } : {});
  const diagnostics: Diagnostic[] = [...elaborated.diagnostics];
  const finish = (text: string | undefined): GraphResult => ({
    ...elaborated,
    diagnostics,
    ok: text !== undefined && !diagnostics.some((d) => d.severity === "error"),
    text,
  });
  if (!elaborated.ok) return finish(undefined);
  const models = elaborated.models.filter((m) => m.module);
  const m = models[0];
  if (!m || models.length > 1) {
    diagnostics.push(
      diagnostic(
        "VLM4400",
        m
          ? `${paths.join(", ")} declares ${models.length} models (${models.map((x) => x.decl.name).join(", ")}); choose one with --model`
          : `${paths.join(", ")} declares no model to draw`,
      ),
    );
    return finish(undefined);
  }
  const graph = pickGraph(m, options.graph);
  if (!graph) {
    const names = m.module!.graphs.map((g) => g.name).join(", ");
    diagnostics.push(
      diagnostic(
        "VLM4401",
        options.graph === undefined
          ? `model ${m.decl.name} has no forward or graph to draw`
          : `model ${m.decl.name} has no graph named "${options.graph}" (graphs: ${names || "none"})`,
        m.decl.nameSpan,
      ),
    );
    return finish(undefined);
  }
  const src: Source = { program: elaborated.program, module: m.module!, graph, tokens: m.tokens.get(graph) ?? [] };
  const level = options.level ?? "components";
  let pictures: PageView[];
  if (level === "ops") {
    const block = options.block?.replace(/\./g, "/").replace(/^\/+|\/+$/g, "");
    if (block !== undefined && !graph.nodes.some((n) => n.scope === `/${block}` || n.scope.startsWith(`/${block}/`))) {
      diagnostics.push(
        diagnostic(
          "VLM4402",
          `graph ${graph.name} has no ops under block "${options.block}" (for example: ${blockPaths(graph).join(", ")})`,
        ),
      );
      return finish(undefined);
    }
    const report = createPassManager().run(src.module, {
      // Only the chosen graph matters here; "unused" warnings about the others would be noise.
      passes: ["-unused-values"],
      ...(options.target !== undefined && { target: options.target }),
      modelSpan: m.decl.nameSpan,
    });
    if (report.diagnostics.some((d) => d.severity === "error")) {
      diagnostics.push(...report.diagnostics);
      return finish(undefined);
    }
    const misses = report.runs.flatMap((r) => r.nearMisses);
    pictures = [{ id: "ops", title: "ops", picture: opsPicture(src, block, misses) }];
  } else if (options.format === "html") {
    pictures = pageViews(src);
    if (level === "blocks") pictures.unshift(pictures.splice(1, 1)[0]!);
  } else {
    const all = level === "blocks" ? new Set(src.module.components.map((c) => c.name)) : new Set<string>();
    pictures = [{ id: level, title: level, picture: structurePicture(src, all) }];
  }
  const format = options.format ?? "svg";
  if (format === "dot") return finish(toDot(pictures[0]!.picture));
  if (format === "svg") return finish(await dotToSvg(toDot(pictures[0]!.picture)));
  return finish(await renderPage(`${m.decl.name} · ${graph.name}`, pictures, summarize(src.module, m.tokens)));
}

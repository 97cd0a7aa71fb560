// `vlmc summary`: parameters per component, trainable/frozen totals for deployment and per stage,
// and per graph its inputs, outputs, token facts and an estimate of FLOPs.

import { dimMax, dimToString, isStatic, type Dim } from "../ir/dims.js";
import type { Graph, IrModule, Node, Param } from "../ir/graph.js";
import { typeToString } from "../ir/types.js";
import type { TokenFact } from "../lang/elaborate/elaborate.js";

export interface ModelSummary {
  model: string;
  params: { total: number; trainable: number; frozen: number };
  components: { name: string; role: string | null; frozen: boolean; params: number }[];
  stages: { name: string; trainable: number; frozen: number }[];
  graphs: {
    name: string;
    inputs: { name: string; type: string }[];
    outputs: { name: string; type: string }[];
    tokens: { label: string; value: string }[];
    flops: number;
    /** FLOPs by the top-level component whose scope ran them; the model's own ops as "(model)". */
    componentFlops: { component: string; flops: number }[];
  }[];
}

export function paramCount(p: Param): number {
  return p.type.shape.reduce<number>((a, d) => a * (d as number), 1);
}

/** Symbols count as their bound when they have one, else as 1 (batch 1). */
function concrete(d: Dim, g: Graph): number {
  if (isStatic(d)) return d;
  const bounds = new Map(g.bounds);
  for (const k of d.keys()) for (const s of k.split("*")) if (s && !bounds.has(s)) bounds.set(s, 1);
  return dimMax(d, bounds) ?? 1;
}

function elements(shape: readonly Dim[], g: Graph): number {
  return shape.reduce<number>((a, d) => a * concrete(d, g), 1);
}

export function nodeFlops(n: Node, g: Graph): number {
  const out = n.outputs[0];
  if (!out) return 0;
  switch (n.op) {
    case "Linear": {
      const w = n.inputs[1]!.type.shape;
      return 2 * elements(out.type.shape, g) * concrete(w[1]!, g);
    }
    case "MatMul": {
      const a = n.inputs[0]!.type.shape;
      return 2 * elements(out.type.shape, g) * concrete(a[a.length - 1]!, g);
    }
    case "Conv": {
      const w = n.inputs[1]!.type.shape;
      return 2 * elements(out.type.shape, g) * concrete(w[1]!, g) * concrete(w[2]!, g) * concrete(w[3]!, g);
    }
    case "Attention": {
      const q = n.inputs[0]!.type.shape;
      const k = n.inputs[1]!.type.shape;
      return 4 * concrete(q[0]!, g) * concrete(q[1]!, g) * concrete(k[1]!, g) * concrete(q[2]!, g);
    }
    default:
      return 0;
  }
}

function componentFlops(g: Graph): { component: string; flops: number }[] {
  const by = new Map<string, number>();
  for (const n of g.nodes) {
    const component = n.scope.split("/").find((s) => s !== "") ?? "(model)";
    by.set(component, (by.get(component) ?? 0) + nodeFlops(n, g));
  }
  return [...by].filter(([, flops]) => flops > 0).map(([component, flops]) => ({ component, flops }));
}

export function summarize(module: IrModule, tokens: ReadonlyMap<Graph, TokenFact[]>): ModelSummary {
  const counted = module.params.filter((p) => !p.buffer);
  const total = counted.reduce((a, p) => a + paramCount(p), 0);
  const frozen = counted.filter((p) => p.frozen).reduce((a, p) => a + paramCount(p), 0);
  const components = module.components.map((c) => ({
    name: c.name,
    role: c.role ?? null,
    frozen: c.frozen,
    params: counted.filter((p) => p.component === c.name).reduce((a, p) => a + paramCount(p), 0),
  }));
  const unowned = counted.filter((p) => p.component === "" || !module.components.some((c) => c.name === p.component));
  if (unowned.length > 0)
    components.push({
      name: "(model)",
      role: null,
      frozen: false,
      params: unowned.reduce((a, p) => a + paramCount(p), 0),
    });
  const stages = module.stages.map((s) => {
    const trainable = counted.filter((p) => s.trains.includes(p.component)).reduce((a, p) => a + paramCount(p), 0);
    return { name: s.name, trainable, frozen: total - trainable };
  });
  const graphs = module.graphs.map((g) => ({
    name: g.name,
    inputs: g.inputs.map((v) => ({
      name: v.source.kind === "input" ? v.source.name : "?",
      type: typeToString(v.type),
    })),
    outputs: g.outputs.map((o) => ({ name: o.name, type: typeToString(o.value.type) })),
    tokens: (tokens.get(g) ?? []).map((t) => ({ label: t.label, value: dimToString(t.value) })),
    flops: g.nodes.reduce((a, n) => a + nodeFlops(n, g), 0),
    componentFlops: componentFlops(g),
  }));
  return { model: module.name, params: { total, trainable: total - frozen, frozen }, components, stages, graphs };
}

function num(n: number): string {
  return n.toLocaleString("en-US");
}

function human(n: number): string {
  const units: [number, string][] = [
    [1e12, "T"],
    [1e9, "G"],
    [1e6, "M"],
    [1e3, "K"],
  ];
  for (const [v, u] of units) if (n >= v) return `${(n / v).toFixed(2)}${u}`;
  return String(n);
}

function table(rows: string[][], alignRight: boolean[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (alignRight[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function renderSummary(s: ModelSummary): string {
  const out: string[] = [`model ${s.model}`, ""];
  out.push(
    table(
      [
        ["component", "role", "frozen", "parameters"],
        ...s.components.map((c) => [c.name, c.role ?? "-", c.frozen ? "yes" : "no", num(c.params)]),
      ],
      [false, false, false, true],
    ),
  );
  out.push(
    "",
    table(
      [
        ["total", num(s.params.total)],
        ["trainable", num(s.params.trainable)],
        ["frozen", num(s.params.frozen)],
      ],
      [false, true],
    ),
  );
  if (s.stages.length > 0) {
    out.push(
      "",
      table(
        [["stage", "trainable", "frozen"], ...s.stages.map((st) => [st.name, num(st.trainable), num(st.frozen)])],
        [false, true, true],
      ),
    );
  }
  for (const g of s.graphs) {
    out.push("", `graph ${g.name}  (~${human(g.flops)}FLOPs at batch 1, bounded symbols at their bound)`);
    for (const i of g.inputs) out.push(`  in   ${i.name}: ${i.type}`);
    for (const o of g.outputs) out.push(`  out  ${o.name}: ${o.type}`);
    for (const t of g.tokens) out.push(`  tokens ${t.label} = ${t.value}`);
  }
  return out.join("\n");
}

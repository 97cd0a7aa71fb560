// `vlmc summary`: parameters per component, trainable/frozen totals for deployment and per stage,
// and per graph its inputs, outputs, token facts and an estimate of FLOPs.

import { dimMax, dimToString, isStatic, type Dim } from "../ir/dims.js";
import type { Graph, IrModule, Node, Param } from "../ir/graph.js";
import { typeToString } from "../ir/types.js";
import type { TokenFact } from "../lang/elaborate/elaborate.js";
import { kvBytesPerToken, planPackage } from "./package-plan.js";

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
  }[];
  /** The generation package the model declares, when its facts check out. */
  package?: PackageSummary;
}

export interface PackageSummary {
  family: string;
  placement: string;
  /** Each package file and what it is built from. */
  graphs: { file: string; from: string }[];
  imageToken: number;
  tokensPerImage: number;
  maxLength: number;
  context: number;
  /** Self-attention cache: the past/present shape with one token, and fp32 bytes per token (all layers, keys and values). */
  cache: { layers: number; shape: string; bytesPerToken: number };
  /** Flamingo: the cross-attention cache per image (its latents' keys and values). */
  crossCache?: { layers: number; shape: string; bytesPerImage: number };
}

function packageSummary(module: IrModule): PackageSummary | undefined {
  const layout = module.package ? planPackage(module, "portable") : undefined;
  if (!layout || Array.isArray(layout)) return undefined;
  const d = layout.decoder;
  const x = d.cross;
  const attention = x
    ? `${d.component} (llama, cached) + ${x.component} (gated cross-attention, cached)`
    : `${d.component} (${d.family}, cached)`;
  return {
    family: layout.family,
    placement: layout.placement,
    graphs: [
      { file: "vision.onnx", from: `graph ${layout.vision.name}` },
      {
        file: "embedding.onnx",
        from: `${d.component}'s token embeddings${x ? "" : " + image features at the image tokens"}`,
      },
      { file: "decoder.onnx", from: attention },
    ],
    imageToken: layout.imageToken,
    tokensPerImage: layout.tokensPerImage,
    maxLength: layout.promptTokens + (layout.placement === "prefix" ? layout.tokensPerImage : 0) + layout.newTokens,
    context: d.context,
    cache: { layers: d.layers, shape: `[batch, ${d.kvHeads}, 1, ${d.headDim}] × 2`, bytesPerToken: kvBytesPerToken(d) },
    ...(x
      ? {
          crossCache: {
            layers: x.layers.length,
            shape: `[batch, ${x.heads}, ${x.latents}, ${x.headDim}] × 2`,
            bytesPerImage: x.layers.length * 2 * x.heads * x.latents * x.headDim * 4,
          },
        }
      : {}),
  };
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
  }));
  const pkg = packageSummary(module);
  return {
    model: module.name,
    params: { total, trainable: total - frozen, frozen },
    components,
    stages,
    graphs,
    ...(pkg ? { package: pkg } : {}),
  };
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
  const p = s.package;
  if (p) {
    out.push(
      "",
      `package (${p.family}; image features ${p.placement}, ${p.tokensPerImage} per image, <image> = ${p.imageToken})`,
    );
    const row = (label: string, text: string) => out.push(`  ${label.padEnd(15)} ${text}`);
    for (const g of p.graphs) row(g.file, g.from);
    row("tokens", `at most ${num(p.maxLength)} (prompt + new tokens; context ${num(p.context)})`);
    const c = p.cache;
    row(
      "kv cache",
      `${c.layers} layers × ${c.shape} per token = ${num(c.bytesPerToken)} bytes per token (fp32), ${human(c.bytesPerToken * p.maxLength)}B at ${num(p.maxLength)} tokens`,
    );
    const x = p.crossCache;
    if (x)
      row("cross cache", `${x.layers} blocks × ${x.shape} per image = ${num(x.bytesPerImage)} bytes per image (fp32)`);
  }
  return out.join("\n");
}

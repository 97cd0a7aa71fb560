// `vlmc summary`: parameters per component, trainable/frozen totals for deployment and per stage,
// and per graph its inputs, outputs, token facts and an estimate of FLOPs.

import { dimToString, type Dim } from "../ir/dims.js";
import { nodeFlops, paramCount } from "../ir/analysis.js";
import type { Graph, IrModule } from "../ir/graph.js";
import { typeToString, type TensorType } from "../ir/types.js";
import type { TokenFact } from "../lang/elaborate/elaborate.js";
import { cacheValueBytes, kvBytesPerToken, maxAnyResTokens, planPackage } from "./package-plan.js";
import { targetNamed } from "../target/target.js";

export interface ModelSummary {
  model: string;
  params: { total: number; trainable: number; frozen: number };
  components: { name: string; role: string | null; frozen: boolean; params: number }[];
  stages: { name: string; trainable: number; frozen: number }[];
  graphs: {
    name: string;
    inputs: { name: string; type: string }[];
    outputs: { name: string; type: string }[];
    /** What `expect`s say about token counts, one line per fact. */
    tokens: { label: string; value: string }[];
    /** Inequalities over bounded symbols that `expect`s proved (`576 + T <= 4096 (T ≤ 3520; …)`). */
    budgets: string[];
    flops: number;
    /** FLOPs by the top-level component whose scope ran them; the model's own ops as "(model)". */
    componentFlops: { component: string; flops: number }[];
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
  /** AnyRes: features per image run from one crop's to this many (the largest pinpoint, nothing unpadded). */
  maxTokensPerImage?: number;
  maxLength: number;
  context: number;
  /** Self-attention cache: the past/present shape with one token, and fp32 bytes per token (all layers, keys and values). */
  cache: { layers: number; shape: string; bytesPerToken: number; dtype: string };
  /** Flamingo: the cross-attention cache per image (its latents' keys and values). */
  crossCache?: { layers: number; shape: string; bytesPerImage: number };
}

function packageSummary(module: IrModule): PackageSummary | undefined {
  const layout = module.package ? planPackage(module, targetNamed("portable")) : undefined;
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
    ...(layout.anyres ? { maxTokensPerImage: maxAnyResTokens(layout.anyres) } : {}),
    maxLength: layout.promptTokens + (layout.placement === "prefix" ? layout.tokensPerImage : 0) + layout.newTokens,
    context: d.context,
    cache: {
      layers: d.layers,
      shape: `[batch, ${d.kvHeads}, 1, ${d.headDim}] × 2`,
      bytesPerToken: kvBytesPerToken(d),
      dtype: d.dtype === "f32" ? "fp32" : "fp16",
    },
    ...(x
      ? {
          crossCache: {
            layers: x.layers.length,
            shape: `[batch, ${x.heads}, ${x.latents}, ${x.headDim}] × 2`,
            bytesPerImage: x.layers.length * 2 * x.heads * x.latents * x.headDim * cacheValueBytes(d),
          },
        }
      : {}),
  };
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
      type: boundedType(v.type, g.bounds),
    })),
    outputs: g.outputs.map((o) => ({ name: o.name, type: typeToString(o.value.type) })),
    tokens: unique(
      (tokens.get(g) ?? []).filter((t) => t.proved === undefined),
      (t) => `${t.label} = ${dimToString(t.value)}`,
    ).map((t) => ({ label: t.label, value: dimToString(t.value) })),
    budgets: [...new Set((tokens.get(g) ?? []).flatMap((t) => (t.proved === undefined ? [] : [t.proved])))],
    flops: g.nodes.reduce((a, n) => a + nodeFlops(n, g), 0),
    componentFlops: componentFlops(g),
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

/** The first of each group of items with the same key, in order. */
function unique<T>(items: readonly T[], key: (t: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((t) => !seen.has(key(t)) && seen.add(key(t)) !== undefined);
}

/** An input type as written, bounds included: `i64[B, T <= 3520]`. */
function boundedType(t: TensorType, bounds: ReadonlyMap<string, number>): string {
  const dim = (d: Dim) => {
    const name = dimToString(d);
    return bounds.has(name) ? `${name} <= ${bounds.get(name)}` : name;
  };
  return `${t.dtype}[${t.shape.map(dim).join(", ")}]`;
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
    for (const b of g.budgets) out.push(`  proved ${b}`);
  }
  const p = s.package;
  if (p) {
    out.push(
      "",
      `package (${p.family}; image features ${p.placement}, ${p.maxTokensPerImage ? `AnyRes: ${p.tokensPerImage} per crop, up to ${p.maxTokensPerImage}` : p.tokensPerImage} per image, <image> = ${p.imageToken})`,
    );
    const row = (label: string, text: string) => out.push(`  ${label.padEnd(15)} ${text}`);
    for (const g of p.graphs) row(g.file, g.from);
    row("tokens", `at most ${num(p.maxLength)} (prompt + new tokens; context ${num(p.context)})`);
    const c = p.cache;
    row(
      "kv cache",
      `${c.layers} layers × ${c.shape} per token = ${num(c.bytesPerToken)} bytes per token (${c.dtype}), ${human(c.bytesPerToken * p.maxLength)}B at ${num(p.maxLength)} tokens`,
    );
    const x = p.crossCache;
    if (x)
      row(
        "cross cache",
        `${x.layers} blocks × ${x.shape} per image = ${num(x.bytesPerImage)} bytes per image (${c.dtype})`,
      );
  }
  return out.join("\n");
}

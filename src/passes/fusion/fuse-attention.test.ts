// fuse-attention: each rule on a small graph against the expected IR, rotary positions inside or
// in front of the fused kernel, packed projections (sliced, or three Linears packed into the
// precomputed graph), the refusals (near misses) with their reasons, the portable target,
// idempotence and the verifier. Numbers: ort-parity.test.ts.

import { describe, expect, it } from "vitest";
import { sym, type Dim } from "../../ir/dims.js";
import { Graph, type AttrValue, type Param, type Value } from "../../ir/graph.js";
import { printGraph } from "../../ir/printer.js";
import { tensorType, type DType } from "../../ir/types.js";
import { Constness } from "../constness.js";
import { node, runPass, testModule, testParam } from "../../../test/helpers/graph-fixtures.js";
import { fuseAttention, packedAttentionRules } from "./fuse-attention.js";
import { ortFusionPass } from "./ort-fusion.js";
import { fuseTwice, misses, nodeLines } from "../../../test/helpers/fusion-fixtures.js";

const [B, T, S] = [sym("B"), sym("T"), sym("S")];

interface Spec {
  readonly q?: Dim[];
  readonly kv?: Dim[];
  readonly mask?: { shape: Dim[]; dtype: DType };
  readonly dtype?: DType;
  readonly attrs?: Record<string, AttrValue>;
}

/** One Attention over inputs q and kv (keys and values alike), 4 heads unless `attrs` say otherwise. */
function attention({ q = [B, T, 32], kv = [B, T, 32], mask, dtype = "f32", attrs = {} }: Spec): Graph {
  const g = new Graph("forward");
  const qv = g.addInput("q", tensorType(dtype, q));
  const kvv = g.addInput("kv", tensorType(dtype, kv));
  const m: Value | undefined = mask && g.addInput("mask", tensorType(mask.dtype, mask.shape));
  const all = { heads: 4, kv_heads: 4, causal: false, scale: 0.25, rotary_theta: 0, ...attrs };
  const width = ((q[2] as number) / all.heads) * all.heads;
  g.setOutput("y", node(g, "Attention", [qv, kvv, kvv, m], [q[0]!, q[1]!, width], all));
  return g;
}

const fuse = (g: Graph, target: "ort-cpu" | "ort-cuda" | "portable" = "ort-cpu") => {
  const r = fuseTwice(fuseAttention, g, [], target);
  expect(r.problems).toEqual([]);
  expect(r.idempotent).toBe(true);
  return r;
};

describe("fuse-attention", () => {
  it("makes MultiHeadAttention with the mask as its attention_bias", () => {
    const g = attention({ kv: [B, S, 32], mask: { shape: [B, 1, 1, S], dtype: "f32" } });
    fuse(g);
    expect(nodeLines(g)).toEqual([
      "  %3: f32[B, T, 32] = ort.MultiHeadAttention{num_heads=4, scale=0.25, unidirectional=false}(%q, %kv, %kv, %mask)  // /test",
    ]);
    expect(g.nodes[0]!.rules).toEqual(["multi-head-attention"]);
  });

  it("puts RotaryEmbedding on queries and keys of a causal self-attention", () => {
    const g = attention({ attrs: { causal: true, rotary_theta: 10000 } });
    fuse(g);
    expect(nodeLines(g)).toEqual([
      "  %2: f32[B, T, 32] = ort.RotaryEmbedding{num_heads=4, rotary_theta=10000}(%q)  // /test",
      "  %3: f32[B, T, 32] = ort.RotaryEmbedding{num_heads=4, rotary_theta=10000}(%kv)  // /test",
      "  %4: f32[B, T, 32] = ort.MultiHeadAttention{num_heads=4, scale=0.25, unidirectional=true}(%2, %3, %kv)  // /test",
    ]);
  });

  it("makes GroupQueryAttention, with its own rotary at head sizes of 16 and RotaryEmbedding in front below", () => {
    const inside = attention({
      q: [B, T, 64],
      kv: [B, T, 32],
      attrs: { kv_heads: 2, causal: true, rotary_theta: 10000 },
    });
    fuse(inside);
    expect(nodeLines(inside)).toEqual([
      "  %2: f32[B, T, 64] = ort.GroupQueryAttention{kv_num_heads=2, num_heads=4, rotary_theta=10000, scale=0.25}(%q, %kv, %kv)  // /test",
    ]);
    const outside = attention({
      q: [B, T, 32],
      kv: [B, T, 16],
      attrs: { kv_heads: 2, causal: true, rotary_theta: 10000 },
    });
    fuse(outside);
    expect(
      outside.nodes.map(
        (n) => `${n.op}${n.op === "ort.GroupQueryAttention" ? ` θ=${String(n.attrs["rotary_theta"])}` : ""}`,
      ),
    ).toEqual(["ort.RotaryEmbedding", "ort.RotaryEmbedding", "ort.GroupQueryAttention θ=0"]);
    expect(outside.nodes[1]!.attrs["num_heads"]).toBe(2);
  });

  it("says why an attention stays as it is", () => {
    const cases: [Spec, string, "ort-cpu" | "ort-cuda"][] = [
      [
        { kv: [B, S, 32], attrs: { causal: true } },
        "T queries over S keys: the fused kernels align a causal mask and rotary positions at the first key, this attention at the last",
        "ort-cpu",
      ],
      [
        { mask: { shape: [B, 1, 1, T], dtype: "f16" } },
        "the mask is f16 but the attention f32; attention_bias must match",
        "ort-cpu",
      ],
      [{ dtype: "f16" }, "dtype f16 not supported by MultiHeadAttention on ort-cpu", "ort-cpu"],
      [
        { q: [B, T, 8], kv: [B, T, 8], attrs: { heads: 8, kv_heads: 8, rotary_theta: 10000, causal: true } },
        "rotary positions need an even head size, not 1",
        "ort-cpu",
      ],
      [
        { kv: [B, T, 16], attrs: { kv_heads: 2 } },
        "GroupQueryAttention is causal only, and this attention sees every key",
        "ort-cpu",
      ],
      [
        { kv: [B, T, 16], attrs: { kv_heads: 2, causal: true }, mask: { shape: [B, 1, 1, T], dtype: "f32" } },
        "GroupQueryAttention takes no mask",
        "ort-cpu",
      ],
      [
        { q: [B, T, 16], kv: [B, T, 8], attrs: { kv_heads: 2, causal: true } },
        "head size 4 is not a multiple of 8, as GroupQueryAttention needs",
        "ort-cpu",
      ],
      [
        { kv: [B, T, 16], attrs: { kv_heads: 2, causal: true } },
        "dtype f32 not supported by GroupQueryAttention on ort-cuda",
        "ort-cuda",
      ],
      [{ attrs: { window: 4 } }, "attention option window has no fused form here", "ort-cpu"],
    ];
    for (const [spec, reason, target] of cases) {
      const r = fuse(attention(spec), target);
      expect(r.changed).toBe(false);
      expect(misses(r).map(([, why]) => why)).toEqual([reason]);
    }
  });

  it("does nothing on the portable target", () => {
    expect(fuse(attention({}), "portable").changed).toBe(false);
  });
});

// ---- Attention with the projection inside ----

const ATTENTION = { heads: 4, kv_heads: 4, causal: false, scale: 0.25, rotary_theta: 0 };

/** Self-attention over x [B, T, 16], projected by `project` (which gets a parameter maker) into q, k, v. */
function selfAttention(
  project: (g: Graph, x: Value, p: (name: string, shape: number[]) => Value) => [Value, Value, Value],
  attrs: Record<string, AttrValue> = {},
  mask?: DType,
) {
  const g = new Graph("forward");
  const x = g.addInput("x", tensorType("f32", [B, T, 16]));
  const params: Param[] = [];
  const p = (name: string, shape: number[]): Value => {
    const param = testParam(name, shape);
    params.push(param);
    return g.paramValue(param);
  };
  const [q, k, v] = project(g, x, p);
  const m = mask && g.addInput("mask", tensorType(mask, [B, 1, T, T]));
  const all = { ...ATTENTION, ...attrs };
  g.setOutput("y", node(g, "Attention", [q, k, v, m], [B, T, v.type.shape[2] as number], all));
  return { g, params };
}

const columns = (g: Graph, h: Value, start: number, end: number): Value =>
  node(g, "Slice", [h], [B, T, end - start], { starts: [start], ends: [end], axes: [2], steps: [1] });
const slices = (g: Graph, h: Value, widths = [16, 16, 16]): [Value, Value, Value] => {
  const [a, b] = [widths[0]!, widths[0]! + widths[1]!];
  return [columns(g, h, 0, a), columns(g, h, a, b), columns(g, h, b, b + widths[2]!)];
};

/** torchvision's in_proj: x·W + b, sliced in q, k, v order. */
const inProj = (g: Graph, x: Value, p: (name: string, shape: number[]) => Value): [Value, Value, Value] =>
  slices(g, node(g, "Add", [node(g, "MatMul", [x, p("attn.w", [16, 48])], [B, T, 48]), p("attn.b", [48])], [B, T, 48]));

/** BERT's three Linears of one input. */
const linears = (
  g: Graph,
  x: Value,
  p: (name: string, shape: number[]) => Value,
  bias = true,
  vWidth = 16,
): [Value, Value, Value] =>
  (["q", "k", "v"] as const).map((n) =>
    node(
      g,
      "Linear",
      [
        x,
        p(`${n}.weight`, [n === "v" ? vWidth : 16, 16]),
        bias ? p(`${n}.bias`, [n === "v" ? vWidth : 16]) : undefined,
      ],
      [B, T, n === "v" ? vWidth : 16],
    ),
  ) as [Value, Value, Value];

/** Only the packed rules, so that their refusals are not hidden by multi-head-attention firing on the same node. */
const packedOnly = ortFusionPass("packed-attention", "rules 1 and 2 of fuse-attention", (target, module, ctx) =>
  packedAttentionRules(target, Constness.of(module, ctx.options)),
);

describe("fuse-attention: Attention with a packed projection", () => {
  it("takes a sliced projection x·W + b as it is (ViT's in_proj)", () => {
    const { g, params } = selfAttention(inProj, {}, "f32");
    const r = fuseTwice(fuseAttention, g, params);
    expect(r.problems).toEqual([]);
    expect(r.idempotent).toBe(true);
    expect(nodeLines(g)).toEqual([
      "  %4: f32[B, T, 16] = ort.Attention{num_heads=4, qkv_hidden_sizes=[16, 16, 16], scale=0.25, unidirectional=false}(%x, @attn.w, @attn.b, %mask)  // /test",
    ]);
    expect(g.nodes[0]!.rules).toEqual(["attention-qkv-slices"]);
    expect(Object.fromEntries(r.fires)).toEqual({ "attention-qkv-slices": 1 });
  });

  it("takes a sliced Linear, its [out, in] weight transposed at build time, and a projection without bias", () => {
    const { g, params } = selfAttention(
      (g, x, p) => slices(g, node(g, "Linear", [x, p("qkv.weight", [48, 16]), undefined], [B, T, 48])),
      { causal: true },
    );
    const r = fuseTwice(fuseAttention, g, params);
    expect(r.problems).toEqual([]);
    expect(r.idempotent).toBe(true);
    expect(nodeLines(g)).toEqual([
      '  %1: f32[16, 48] = Precomputed{name="folded.0"}()  // /test',
      "  %2: f32[B, T, 16] = ort.Attention{num_heads=4, qkv_hidden_sizes=[16, 16, 16], scale=0.25, unidirectional=true}(%x, %1)  // /test",
    ]);
    expect(
      printGraph(g.precomputed!)
        .split("\n")
        .filter((l) => l.startsWith("  %")),
    ).toEqual(["  %1: f32[16, 48] = Transpose{perm=[1, 0]}(@qkv.weight)  // /test"]);
    expect(g.nodes.map((n) => n.rules)).toEqual([["attention-qkv-slices"], ["attention-qkv-slices"]]);
  });

  it("packs three Linears of one input at build time (BERT), values wider than queries", () => {
    const { g, params } = selfAttention((g, x, p) => linears(g, x, p, true, 24));
    const r = fuseTwice(fuseAttention, g, params);
    expect(r.problems).toEqual([]);
    expect(r.idempotent).toBe(true);
    expect(nodeLines(g)).toEqual([
      '  %1: f32[16, 56] = Precomputed{name="folded.0"}()  // /test',
      '  %2: f32[56] = Precomputed{name="folded.1"}()  // /test',
      "  %3: f32[B, T, 24] = ort.Attention{num_heads=4, qkv_hidden_sizes=[16, 16, 24], scale=0.25, unidirectional=false}(%x, %1, %2)  // /test",
    ]);
    expect(
      printGraph(g.precomputed!)
        .split("\n")
        .filter((l) => l.startsWith("  %")),
    ).toEqual([
      "  %6: f32[16, 16] = Transpose{perm=[1, 0]}(@q.weight)  // /test",
      "  %7: f32[16, 16] = Transpose{perm=[1, 0]}(@k.weight)  // /test",
      "  %8: f32[16, 24] = Transpose{perm=[1, 0]}(@v.weight)  // /test",
      "  %9: f32[16, 56] = Concat{axis=1}(%6, %7, %8)  // /test",
      "  %10: f32[56] = Concat{axis=0}(@q.bias, @k.bias, @v.bias)  // /test",
    ]);
    expect(new Set(g.nodes.flatMap((n) => n.rules))).toEqual(new Set(["attention-qkv-linears"]));
    // The graph itself no longer reads the separate weights: the model stores the packed ones only.
    expect(g.usedParams()).toEqual([]);
  });

  it("says why a projection is not packed, and leaves it to MultiHeadAttention", () => {
    const cases: [Parameters<typeof selfAttention>, string][] = [
      [
        [
          (g, x, p) => {
            const [q, k, v] = inProj(g, x, p);
            return [k, q, v];
          },
        ],
        "q is not columns 0:16 of the projection (Attention packs q, k, v in that order)",
      ],
      [
        [
          (g, x, p) => {
            const [q, k, v] = inProj(g, x, p);
            g.setOutput("q", q);
            return [q, k, v];
          },
        ],
        "q is read elsewhere too",
      ],
      [
        [
          (g, x, p) => {
            const h = node(g, "MatMul", [x, p("w", [16, 56])], [B, T, 56]);
            g.setOutput("h", h);
            return slices(g, h);
          },
        ],
        "q, k and v take 48 columns of the f32[B, T, 56] projection, not all of them",
      ],
      [
        [(g, x, p) => slices(g, node(g, "Relu", [node(g, "MatMul", [x, p("w", [16, 48])], [B, T, 48])]))],
        "the projection is Relu, not MatMul, MatMul + bias or Linear",
      ],
      [
        [
          (g, x, p) =>
            slices(
              g,
              node(g, "Add", [node(g, "MatMul", [x, p("w", [16, 48])], [B, T, 48]), p("b", [1, 1, 48])], [B, T, 48]),
            ),
        ],
        "the projection's bias is f32[1, 1, 48]; Attention takes [48]",
      ],
      [
        [(g, x, p) => slices(g, node(g, "Linear", [x, node(g, "Relu", [p("w", [48, 16])]), undefined], [B, T, 48]))],
        "the projection's weight is computed by Relu, not a stored tensor to pack at build time",
      ],
      [
        [
          (g, x, p) => {
            const [q, k, v] = linears(g, x, p);
            g.setOutput("k", k);
            return [q, k, v];
          },
        ],
        "k is read elsewhere too",
      ],
      [
        [
          (g, x, p) => {
            const [q, k] = linears(g, x, p);
            return [q, k, node(g, "Linear", [x, p("v.weight", [16, 16]), undefined])];
          },
        ],
        "only some of the q, k and v projections have a bias",
      ],
      [
        [
          (g, x, p) => {
            const [q, k] = linears(g, x, p);
            return [q, k, node(g, "Linear", [x, g.addInput("wv", tensorType("f32", [16, 16])), p("v.bias", [16])])];
          },
        ],
        "the v weight is a graph input, not a stored tensor to pack at build time",
      ],
      [
        [(g, x, p) => linears(g, x, p), { rotary_theta: 10000 }],
        "rotary positions go to MultiHeadAttention with RotaryEmbedding; Attention's own rotary is not used",
      ],
      [[(g, x, p) => linears(g, x, p), {}, "f16"], "the mask is f16 but the attention f32; attention_bias must match"],
    ];
    for (const [args, reason] of cases) {
      const alone = selfAttention(...args);
      const r = fuseTwice(packedOnly, alone.g, alone.params);
      expect(r.changed, reason).toBe(false);
      expect(misses(r).map(([, why]) => why)).toEqual([reason]);
      // With every rule, MultiHeadAttention (or nothing, for the f16 mask) takes it.
      const all = selfAttention(...args);
      const fused = fuseTwice(fuseAttention, all.g, all.params);
      expect(fused.problems).toEqual([]);
      expect(all.g.nodes.some((n) => n.op === "ort.Attention")).toBe(false);
    }
  });

  it("packs no weights that the compiled stage trains", () => {
    const { g, params } = selfAttention((g, x, p) => linears(g, x, p));
    const module = testModule([g], params, [], [{ name: "tune", trains: ["k"] }]);
    const r = runPass(packedOnly, module, { target: "ort-cpu", stage: "tune" });
    expect(r.changed).toBe(false);
    expect(r.nearMisses.map((m) => m.reason)).toEqual([
      "the k weight is trained in this stage, so it cannot be packed at build time",
    ]);
  });

  it("emits Attention where its kernel exists: f32 on both ONNX Runtime targets, f16 on CUDA only", () => {
    const half = () => {
      const g = new Graph("forward");
      const x = g.addInput("x", tensorType("f16", [B, T, 16]));
      const w = g.addInput("w", tensorType("f16", [16, 48]));
      const [q, k, v] = slices(g, node(g, "MatMul", [x, w], [B, T, 48]));
      g.setOutput("y", node(g, "Attention", [q, k, v, undefined], [B, T, 16], ATTENTION));
      return g;
    };
    const cpu = half();
    expect(misses(fuseTwice(packedOnly, cpu, [], "ort-cpu")).map(([, why]) => why)).toEqual([
      "dtype f16 not supported by Attention on ort-cpu",
    ]);
    const cuda = half();
    expect(fuseTwice(fuseAttention, cuda, [], "ort-cuda").fires.get("attention-qkv-slices")).toBe(1);
    const f32 = selfAttention(inProj);
    expect(fuseTwice(fuseAttention, f32.g, f32.params, "ort-cuda").fires.get("attention-qkv-slices")).toBe(1);
  });
});

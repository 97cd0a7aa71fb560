// fuse-attention: each rule on a small graph against the expected IR, rotary positions inside or
// in front of the fused kernel, the refusals (near misses) with their reasons, the portable
// target, idempotence and the verifier. Numbers: ort-parity.test.ts.

import { describe, expect, it } from "vitest";
import { sym, type Dim } from "../../ir/dims.js";
import { Graph, type AttrValue, type Value } from "../../ir/graph.js";
import { tensorType, type DType } from "../../ir/types.js";
import { node } from "../graph-fixtures.js";
import { fuseAttention } from "./fuse-attention.js";
import { fuseTwice, misses, nodeLines } from "./fusion-fixtures.js";

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
    expect(nodeLines(g)).toEqual(["  %3: f32[B, T, 32] = ort.MultiHeadAttention{num_heads=4, scale=0.25, unidirectional=false}(%q, %kv, %kv, %mask)  // /test"]);
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
    const inside = attention({ q: [B, T, 64], kv: [B, T, 32], attrs: { kv_heads: 2, causal: true, rotary_theta: 10000 } });
    fuse(inside);
    expect(nodeLines(inside)).toEqual(["  %2: f32[B, T, 64] = ort.GroupQueryAttention{kv_num_heads=2, num_heads=4, rotary_theta=10000, scale=0.25}(%q, %kv, %kv)  // /test"]);
    const outside = attention({ q: [B, T, 32], kv: [B, T, 16], attrs: { kv_heads: 2, causal: true, rotary_theta: 10000 } });
    fuse(outside);
    expect(outside.nodes.map((n) => `${n.op}${n.op === "ort.GroupQueryAttention" ? ` θ=${String(n.attrs["rotary_theta"])}` : ""}`)).toEqual([
      "ort.RotaryEmbedding",
      "ort.RotaryEmbedding",
      "ort.GroupQueryAttention θ=0",
    ]);
    expect(outside.nodes[1]!.attrs["num_heads"]).toBe(2);
  });

  it("says why an attention stays as it is", () => {
    const cases: [Spec, string, "ort-cpu" | "ort-cuda"][] = [
      [{ kv: [B, S, 32], attrs: { causal: true } }, "T queries over S keys: the fused kernels align a causal mask and rotary positions at the first key, this attention at the last", "ort-cpu"],
      [{ mask: { shape: [B, 1, 1, T], dtype: "f16" } }, "the mask is f16 but the attention f32; attention_bias must match", "ort-cpu"],
      [{ dtype: "f16" }, "dtype f16 not supported by MultiHeadAttention on ort-cpu", "ort-cpu"],
      [{ q: [B, T, 8], kv: [B, T, 8], attrs: { heads: 8, kv_heads: 8, rotary_theta: 10000, causal: true } }, "rotary positions need an even head size, not 1", "ort-cpu"],
      [{ kv: [B, T, 16], attrs: { kv_heads: 2 } }, "GroupQueryAttention is causal only, and this attention sees every key", "ort-cpu"],
      [{ kv: [B, T, 16], attrs: { kv_heads: 2, causal: true }, mask: { shape: [B, 1, 1, T], dtype: "f32" } }, "GroupQueryAttention takes no mask", "ort-cpu"],
      [{ q: [B, T, 16], kv: [B, T, 8], attrs: { kv_heads: 2, causal: true } }, "head size 4 is not a multiple of 8, as GroupQueryAttention needs", "ort-cpu"],
      [{ kv: [B, T, 16], attrs: { kv_heads: 2, causal: true } }, "dtype f32 not supported by GroupQueryAttention on ort-cuda", "ort-cuda"],
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

// fuse-norms: each rule on a small graph against the expected IR, the sum of a pre-norm stream as
// output 3, the Linear bias moved into the fused node, the refusals (near misses), SkipLayerNormalization
// left out on ort-cpu (slower there) and so tested on ort-cuda, the portable target, idempotence
// and the verifier. Numbers: ort-parity.test.ts.

import { describe, expect, it } from "vitest";
import { sym, type Dim } from "../../ir/dims.js";
import { Graph, type Param, type Value } from "../../ir/graph.js";
import { tensorType, type DType } from "../../ir/types.js";
import { constant, node, testParam } from "../../../test/helpers/graph-fixtures.js";
import { fuseNorms } from "./fuse-norms.js";
import { fuseTwice, misses, nodeLines } from "../../../test/helpers/fusion-fixtures.js";

const B = sym("B");

/** A graph with input x and the parameters `names` (shapes from `shapes`, default [8]). */
function setup(x: Dim[] = [B, 4, 8], dtype: DType = "f32", shapes: Record<string, number[]> = {}) {
  const g = new Graph("forward");
  const input = g.addInput("x", tensorType(dtype, x));
  const params: Param[] = [];
  const p = (name: string): Value => {
    const param = { ...testParam(name, shapes[name] ?? [8]), type: tensorType(dtype, shapes[name] ?? [8]) };
    params.push(param);
    return g.paramValue(param);
  };
  return { g, x: input, p, params };
}

describe("fuse-norms", () => {
  it("fuses a pre-norm residual: the sum is output 3 for the next residual, the Linear's bias moves in", () => {
    const { g, x, p, params } = setup([B, 4, 8], "f32", { "fc.weight": [8, 8] });
    const s = node(g, "Add", [x, node(g, "Linear", [x, p("fc.weight"), p("fc.bias")])]);
    const normed = node(g, "LayerNorm", [s, p("ln.weight"), p("ln.bias")], undefined, { eps: 1e-5 });
    g.setOutput("y", node(g, "Add", [s, normed]));
    const r = fuseTwice(fuseNorms, g, params, "ort-cuda");
    expect(r.problems).toEqual([]);
    expect(r.idempotent).toBe(true);
    expect(nodeLines(g)).toEqual([
      "  %5: f32[B, 4, 8] = Linear(%x, @fc.weight, _)  // /test",
      "  %6: f32[B, 4, 8], %7: f32[B, 4, 8] = ort.SkipLayerNormalization{epsilon=0.00001}(%5, %x, @ln.weight, @ln.bias, @fc.bias)  // /test",
      "  %8: f32[B, 4, 8] = Add(%7, %6)  // /test",
    ]);
    expect(g.nodes.map((n) => n.rules)).toEqual([["skip-layer-norm"], ["skip-layer-norm"], []]);
    expect(Object.fromEntries(r.fires)).toEqual({ "skip-layer-norm": 1 });
  });

  it("fuses a post-norm residual read by the norm alone into one output, and a sum that is a graph output", () => {
    const { g, x, p, params } = setup();
    const h = g.addInput("h", tensorType("f32", [B, 4, 8]));
    g.setOutput(
      "post",
      node(g, "LayerNorm", [node(g, "Add", [h, x]), p("a.weight"), undefined], undefined, { eps: 1e-12 }),
    );
    const s = node(g, "Add", [x, h]);
    g.setOutput("sum", s);
    g.setOutput("normed", node(g, "RMSNorm", [s, p("b.weight")], undefined, { eps: 1e-6 }));
    const r = fuseTwice(fuseNorms, g, params, "ort-cuda");
    expect(r.problems).toEqual([]);
    expect(nodeLines(g)).toEqual([
      "  %4: f32[B, 4, 8] = ort.SkipLayerNormalization{epsilon=1e-12}(%h, %x, @a.weight)  // /test",
      "  %5: f32[B, 4, 8], %6: f32[B, 4, 8] = ort.SkipSimplifiedLayerNormalization{epsilon=0.000001}(%x, %h, @b.weight)  // /test",
    ]);
    expect(g.outputs.map((o) => o.value.producer!.outputs.indexOf(o.value))).toEqual([0, 1, 0]);
  });

  it("lowers a lone RMSNorm to SimplifiedLayerNormalization", () => {
    const { g, x, p, params } = setup([B, 8]);
    g.setOutput("y", node(g, "RMSNorm", [x, p("n.weight")], undefined, { eps: 1e-6 }));
    const r = fuseTwice(fuseNorms, g, params);
    expect(nodeLines(g)).toEqual([
      "  %2: f32[B, 8] = ort.SimplifiedLayerNormalization{epsilon=0.000001}(%x, @n.weight)  // /test",
    ]);
    expect(Object.fromEntries(r.fires)).toEqual({ "simplified-layer-norm": 1 });
  });

  it("takes a skip without the batch axis (learned positions), but no other broadcast", () => {
    const { g, x, p, params } = setup([B, 4, 8], "f32", { pos: [1, 4, 8] });
    const [pos, w, b] = [p("pos"), p("ln.weight"), p("ln.bias")];
    g.setOutput("a", node(g, "LayerNorm", [node(g, "Add", [pos, x], [B, 4, 8]), w, b], undefined, { eps: 1e-5 }));
    const row = g.addInput("row", tensorType("f32", [B, 1, 8]));
    g.setOutput("b", node(g, "LayerNorm", [node(g, "Add", [x, row], [B, 4, 8]), w, b], undefined, { eps: 1e-5 }));
    const r = fuseTwice(fuseNorms, g, params, "ort-cuda");
    expect(r.problems).toEqual([]);
    expect(g.nodes.map((n) => n.op)).toEqual(["ort.SkipLayerNormalization", "Add", "LayerNorm"]);
    // The input has the sum's shape; the positions are the skip.
    expect(g.nodes[0]!.inputs[0]).toBe(x);
    expect(g.nodes[0]!.inputs[1]).toBe(pos);
    expect(misses(r)).toEqual([
      [
        "skip-layer-norm",
        "the residual add of f32[B, 4, 8] and f32[B, 1, 8] broadcasts more than a skip may (only its batch axis)",
      ],
    ]);
  });

  it("refuses rank 4, a dtype the target has no kernel for, and a scale computed after the sum", () => {
    const wide = setup([B, 2, 4, 8]);
    wide.g.setOutput(
      "y",
      node(wide.g, "LayerNorm", [node(wide.g, "Add", [wide.x, wide.x]), wide.p("w"), undefined], undefined, {
        eps: 1e-5,
      }),
    );
    expect(misses(fuseTwice(fuseNorms, wide.g, wide.params, "ort-cuda"))).toEqual([
      ["skip-layer-norm", "SkipLayerNormalization takes rank 2 or 3, not 4"],
    ]);

    const half = setup([B, 4, 8], "bf16");
    half.g.setOutput(
      "y",
      node(half.g, "RMSNorm", [node(half.g, "Add", [half.x, half.x]), half.p("w")], undefined, { eps: 1e-5 }),
    );
    expect(misses(fuseTwice(fuseNorms, half.g, half.params))).toEqual([
      ["skip-simplified-layer-norm", "dtype bf16 not supported by SkipSimplifiedLayerNormalization on ort-cpu"],
      ["simplified-layer-norm", "dtype bf16 not supported by SimplifiedLayerNormalization on ort-cpu"],
    ]);
    // CUDA has bf16 SimplifiedLayerNormalization, not SkipSimplifiedLayerNormalization.
    expect(fuseTwice(fuseNorms, half.g, half.params, "ort-cuda").fires.get("simplified-layer-norm")).toBe(1);

    const late = setup();
    const s = node(late.g, "Add", [late.x, late.x]);
    const scale = node(late.g, "Mul", [late.p("w"), constant(late.g, 2)]);
    late.g.setOutput("y", node(late.g, "LayerNorm", [s, scale, undefined], undefined, { eps: 1e-5 }));
    expect(misses(fuseTwice(fuseNorms, late.g, late.params, "ort-cuda"))).toEqual([
      ["skip-layer-norm", "the norm's scale or shift is computed after the residual sum"],
    ]);
  });

  it("leaves Add + LayerNorm to ONNX Runtime on ort-cpu, where SkipLayerNormalization ran slower, but fuses RMSNorm there", () => {
    const { g, x, p, params } = setup();
    const s = node(g, "Add", [x, x]);
    g.setOutput("ln", node(g, "LayerNorm", [s, p("ln.weight"), p("ln.bias")], undefined, { eps: 1e-5 }));
    g.setOutput("rms", node(g, "RMSNorm", [s, p("rms.weight")], undefined, { eps: 1e-5 }));
    const r = fuseTwice(fuseNorms, g, params);
    expect(r.problems).toEqual([]);
    expect(g.nodes.map((n) => n.op)).toEqual(["ort.SkipSimplifiedLayerNormalization", "LayerNorm"]);
    expect(misses(r)).toEqual([
      [
        "skip-layer-norm",
        "SkipLayerNormalization runs about twice as long as Add + LayerNormalization on ort-cpu (ONNX Runtime 1.30)",
      ],
    ]);
  });

  it("fuses Gemma's (1 + weight) norm: SimplifiedLayerNormalization of the shifted weight", () => {
    // rms_norm(width, offset: 1.0) elaborates to RMSNorm(x, Add(weight, 1)); frozen, the Add is
    // precomputed before fusion. It comes after the residual sum, so the skip form does not apply.
    const { g, x, p, params } = setup();
    const s = node(g, "Add", [x, x]);
    const scale = node(g, "Add", [p("norm.weight"), constant(g, 1)]);
    g.setOutput("y", node(g, "RMSNorm", [s, scale], undefined, { eps: 1e-6 }));
    const r = fuseTwice(fuseNorms, g, params);
    expect(r.problems).toEqual([]);
    expect(Object.fromEntries(r.fires)).toEqual({ "simplified-layer-norm": 1 });
    expect(g.nodes.map((n) => n.op)).toEqual(["Add", "Constant", "Add", "ort.SimplifiedLayerNormalization"]);
  });

  it("does nothing on the portable target", () => {
    const { g, x, p, params } = setup();
    g.setOutput("y", node(g, "RMSNorm", [node(g, "Add", [x, x]), p("w")], undefined, { eps: 1e-5 }));
    const r = fuseTwice(fuseNorms, g, params, "portable");
    expect(r.changed).toBe(false);
    expect(r.nearMisses).toEqual([]);
  });
});

// fuse-activations: each rule on a small graph against the expected IR, the Linear that keeps its
// bias when others read its result, the dtype refusals per target, the portable target,
// idempotence and the verifier. Numbers: ort-parity.test.ts.

import { describe, expect, it } from "vitest";
import { sym } from "../../ir/dims.js";
import { Graph } from "../../ir/graph.js";
import { tensorType, type DType } from "../../ir/types.js";
import { node, testParam } from "../../../test/helpers/graph-fixtures.js";
import { fuseActivations } from "./fuse-activations.js";
import { fuseTwice, misses, nodeLines } from "../../../test/helpers/fusion-fixtures.js";

const B = sym("B");

/** x [B, 8] and a Linear 8 → 4 with a bias. */
function linear(dtype: DType = "f32") {
  const g = new Graph("forward");
  const x = g.addInput("x", tensorType(dtype, [B, 8]));
  const params = [testParam("fc.weight", [4, 8]), testParam("fc.bias", [4])].map((p) => ({
    ...p,
    type: tensorType(dtype, p.type.shape),
  }));
  const [w, b] = params.map((p) => g.paramValue(p));
  return { g, x, params, y: node(g, "Linear", [x, w, b], [B, 4]) };
}

describe("fuse-activations", () => {
  it("moves the Linear's bias into BiasGelu and FastGelu", () => {
    const { g, x, params, y } = linear();
    g.setOutput("a", node(g, "Gelu", [y]));
    g.setOutput("b", node(g, "GeluTanh", [node(g, "Linear", [x, ...y.producer!.inputs.slice(1)], [B, 4])]));
    const r = fuseTwice(fuseActivations, g, params);
    expect(r.problems).toEqual([]);
    expect(r.idempotent).toBe(true);
    expect(nodeLines(g)).toEqual([
      "  %3: f32[B, 4] = Linear(%x, @fc.weight, _)  // /test",
      "  %4: f32[B, 4] = ort.BiasGelu(%3, @fc.bias)  // /test",
      "  %5: f32[B, 4] = Linear(%x, @fc.weight, _)  // /test",
      "  %6: f32[B, 4] = ort.FastGelu(%5, @fc.bias)  // /test",
    ]);
    expect(g.nodes.map((n) => n.rules)).toEqual([["bias-gelu"], ["bias-gelu"], ["fast-gelu-bias"], ["fast-gelu-bias"]]);
  });

  it("keeps the bias where others read the Linear's result, and fuses the activation alone", () => {
    const { g, params, y } = linear();
    g.setOutput("a", node(g, "Gelu", [y]));
    g.setOutput("b", node(g, "QuickGelu", [y]));
    g.setOutput("c", node(g, "GeluTanh", [y]));
    g.setOutput("y", y);
    const r = fuseTwice(fuseActivations, g, params);
    expect(r.problems).toEqual([]);
    expect(nodeLines(g)).toEqual([
      "  %3: f32[B, 4] = Linear(%x, @fc.weight, @fc.bias)  // /test",
      "  %4: f32[B, 4] = ort.Gelu(%3)  // /test",
      "  %5: f32[B, 4] = ort.QuickGelu{alpha=1.702}(%3)  // /test",
      "  %6: f32[B, 4] = ort.FastGelu(%3)  // /test",
    ]);
    expect(Object.fromEntries(r.fires)).toEqual({ gelu: 1, "quick-gelu": 1, "fast-gelu": 1 });
  });

  it("refuses dtypes the target has no kernel for: f16 on the CPU, not on CUDA", () => {
    const { g, params, y } = linear("f16");
    g.setOutput("a", node(g, "QuickGelu", [y]));
    const cpu = fuseTwice(fuseActivations, g, params);
    expect(cpu.changed).toBe(false);
    expect(misses(cpu)).toEqual([["quick-gelu", "dtype f16 not supported by QuickGelu on ort-cpu"]]);
    const cuda = fuseTwice(fuseActivations, g, params, "ort-cuda");
    expect(cuda.problems).toEqual([]);
    expect(g.nodes.map((n) => n.op)).toEqual(["Linear", "ort.QuickGelu"]);
  });

  it("does nothing on the portable target", () => {
    const { g, params, y } = linear();
    g.setOutput("a", node(g, "Gelu", [y]));
    expect(fuseTwice(fuseActivations, g, params, "portable").changed).toBe(false);
  });
});

// unused-values: the codes and spans of its warnings on an elaborated spec, the symbol rule for
// inputs, and the input's own span when the graph records one.

import { describe, expect, it } from "vitest";
import type { Diagnostic } from "../../diagnostics/diagnostic.js";
import { Graph } from "../../ir/graph.js";
import { tensorType } from "../../ir/types.js";
import { elaborateSpec, node, runPass, SPAN, testModule } from "../../../test/helpers/graph-fixtures.js";
import { unusedValues } from "./unused-values.js";

const SPEC = `block two_heads(width) {
  used = linear(width, width)
  spare = linear(width, width)
  forward(x) { return used(x) }
}

model unused {
  encoder vision = two_heads(8)
  head classifier = linear(8, 2)
  param temperature: [1] = ones
  forward(x: f32[B, 8], extra: f32[B, 4], ids: i64[B, T]) {
    return y: vision(x), positions: arange(T)
  }
}
`;

/** A diagnostic as code, the text its span covers, and the texts of its related spans. */
function located(d: Diagnostic, text: string): [string, string, string[]] {
  return [
    d.code,
    text.slice(d.span!.start, d.span!.end),
    (d.related ?? []).map((r) => text.slice(r.span.start, r.span.end)),
  ];
}

describe("unused-values", () => {
  it("warns about an unused input, component, sub-module and model parameter, at their declarations", () => {
    const spec = elaborateSpec(SPEC);
    const [model] = spec.models;
    const result = runPass(unusedValues, model!.module!, { modelSpan: model!.decl.nameSpan });
    expect(result.changed).toBe(false);
    expect(result.diagnostics.every((d) => d.severity === "warning")).toBe(true);
    // `ids` is used: it is the only input whose shape tells the graph T.
    expect(result.diagnostics.map((d) => located(d, spec.text))).toEqual([
      ["VLM3003", "extra: f32[B, 4]", []],
      ["VLM3005", "head classifier = linear(8, 2)", []],
      ["VLM3004", "encoder vision = two_heads(8)", ["linear(width, width)"]],
      ["VLM3004", "param temperature: [1] = ones", []],
    ]);
    expect(result.diagnostics.map((d) => d.message)).toContain(
      "the 2 parameters under vision.spare (72 values) are used by no graph",
    );
  });

  it("points at the input when the graph knows its span, and counts work whose result is dropped as unused", () => {
    const g = new Graph("forward");
    const inputSpan = { file: "spec.vlm", start: 10, end: 20 };
    const x = g.addInput("x", tensorType("f32", [2]), inputSpan);
    const y = g.addInput("y", tensorType("f32", [2]));
    node(g, "Relu", [x]); // computed, then dropped
    g.setOutput("out", node(g, "Neg", [y]));
    const result = runPass(unusedValues, testModule([g]), { modelSpan: SPAN });
    expect(result.diagnostics.map((d) => [d.code, d.span])).toEqual([["VLM3003", inputSpan]]);
  });
});

// output-dependence: VLM3006 at the node or parameter behind an output that no input reaches, and
// silence for outputs that depend on an input by an edge or through a symbolic dim.

import { describe, expect, it } from "vitest";
import { elaborateSpec, runPass } from "../../../test/helpers/graph-fixtures.js";
import { outputDependence } from "./output-dependence.js";

describe("output-dependence", () => {
  it("rejects outputs that are the same on every call, at what computes them", () => {
    const spec = elaborateSpec(`model constant_out {
  encoder vision = linear(8, 8)
  param offset: [8] = zeros
  forward(x: f32[B, 8], ids: i64[B, T]) {
    return y: vision(x), positions: arange(T), t: tanh(offset), p: offset
  }
}
`);
    const result = runPass(outputDependence, spec.models[0]!.module!);
    expect(result.changed).toBe(false);
    expect(result.diagnostics.map((d) => [d.code, d.severity, spec.text.slice(d.span!.start, d.span!.end)])).toEqual([
      ["VLM3006", "error", "tanh(offset)"],
      ["VLM3006", "error", "param offset: [8] = zeros"],
    ]);
  });
});

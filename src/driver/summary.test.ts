// `summary` states each token fact once, keeps the bounds of input types and shows the budgets
// that `expect`s proved from them.

import { describe, expect, it } from "vitest";
import { elaborateSpec } from "../../test/helpers/graph-fixtures.js";
import { renderSummary, summarize } from "./summary.js";

const SPEC = `
block proj(w) {
  fc = linear(w, w)
  forward(x) {
    expect tokens(x) == 16
    return fc(x)
  }
}
model budgets {
  encoder p = proj(8)
  forward(x: f32[B, 16, 8], ids: i64[B, T <= 496]) {
    y = p(x)
    expect tokens(y) == 16
    expect tokens(y) == 16
    expect tokens(y) + T <= 512
    return y
  }
}
`;

describe("summary", () => {
  const result = elaborateSpec(SPEC);
  const model = result.models[0]!;
  const graph = summarize(model.module!, model.tokens).graphs[0]!;

  it("states each token fact once (the block's own, then the model's three)", () =>
    expect(graph.tokens).toEqual([
      { label: "x", value: "16" },
      { label: "y", value: "16" },
    ]));
  it("keeps the bounds of input types", () =>
    expect(graph.inputs.map((i) => i.type)).toEqual(["f32[B, 16, 8]", "i64[B, T <= 496]"]));
  it("shows the budgets expect proved", () => {
    expect(graph.budgets).toEqual(["T + 16 <= 512 (T ≤ 496; at the bounds: 512 vs 512)"]);
    expect(renderSummary(summarize(model.module!, model.tokens))).toContain("  proved T + 16 <= 512");
  });
});

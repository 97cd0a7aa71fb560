// common-subexpression-elimination: what merges (same op, attributes, inputs, output types;
// commutative inputs; input-less nodes) and what must not, with expected IR and idempotence.

import { describe, expect, it } from "vitest";
import { sym } from "../../ir/dims.js";
import { Graph } from "../../ir/graph.js";
import { printGraph } from "../../ir/printer.js";
import { tensorType } from "../../ir/types.js";
import { commonSubexpressionElimination } from "./common-subexpression-elimination.js";
import { constant, node, runPass, testModule, testParam } from "../../../test/helpers/graph-fixtures.js";

describe("common-subexpression-elimination", () => {
  it("merges repeated expressions, in chains and in either order of a commutative op", () => {
    const g = new Graph("forward");
    const x = g.addInput("x", tensorType("f32", [2, 4]));
    const w = testParam("proj.weight", [4, 4]);
    const [k, v] = [0, 1].map(() => node(g, "MatMul", [x, g.paramValue(w)]));
    const [a, b] = [node(g, "Relu", [k!]), node(g, "Relu", [v!])];
    const [one, again] = [constant(g, 1), constant(g, 1)];
    g.setOutput("s", node(g, "Add", [node(g, "Mul", [a, one]), node(g, "Mul", [again, b], [2, 4])]));
    const module = testModule([g], [w]);

    const first = runPass(commonSubexpressionElimination, module);
    expect(first.changed).toBe(true);
    expect(first.problems).toEqual([]);
    expect(printGraph(g)).toBe(
      [
        "graph forward(%x: f32[2, 4]) {",
        "  param @proj.weight: f32[4, 4]",
        "  %2: f32[2, 4] = MatMul(%x, @proj.weight)  // /test",
        "  %3: f32[2, 4] = Relu(%2)  // /test",
        '  %4: f32[] = Constant{dtype="f32", value=1}()  // /test',
        "  %5: f32[2, 4] = Mul(%3, %4)  // /test",
        "  %6: f32[2, 4] = Add(%5, %5)  // /test",
        "  return s: %6",
        "}",
      ].join("\n"),
    );
    expect(first.fires.get("cse")).toBe(4);
    expect(g.nodes.filter((n) => n.rules.includes("cse")).map((n) => n.op)).toEqual([
      "MatMul",
      "Relu",
      "Constant",
      "Mul",
    ]);

    const second = runPass(commonSubexpressionElimination, module);
    expect(second.changed).toBe(false);
    expect(second.ir).toBe(first.ir);
  });

  it("merges input-less nodes with equal attributes: constants and ranges", () => {
    const g = new Graph("forward");
    const ranges = [0, 1].map(() => node(g, "Range", [], [8], { n: 8, dtype: "i64" }, "i64"));
    g.setOutput("r", node(g, "Add", [ranges[0]!, ranges[1]!]));
    runPass(commonSubexpressionElimination, testModule([g]));
    expect(g.nodes.map((n) => n.op)).toEqual(["Range", "Add"]);
  });

  it("keeps apart what only looks alike", () => {
    const g = new Graph("forward");
    const B = sym("B");
    const T = sym("T");
    const x = g.addInput("x", tensorType("f32", [B, T, 4]));
    const outs = [
      constant(g, 0),
      constant(g, -0), // a different float
      constant(g, 1, "i64"),
      constant(g, Number.NaN),
      constant(g, Number.POSITIVE_INFINITY),
      node(g, "Softmax", [x], undefined, { axis: 1 }),
      node(g, "Softmax", [x], undefined, { axis: 2 }),
      node(g, "Sub", [x, node(g, "Relu", [x])]),
      node(g, "Sub", [node(g, "Relu", [x]), x]),
      // Both reshapes record their symbolic dims as -1; only the output types tell them apart.
      node(g, "Reshape", [x], [B, T, 4], { shape: [-1, -1, 4] }),
      node(g, "Reshape", [x], [T, B, 4], { shape: [-1, -1, 4] }),
    ];
    outs.forEach((v, i) => g.setOutput(`o${i}`, v));
    const result = runPass(commonSubexpressionElimination, testModule([g]));
    expect(g.nodes).toHaveLength(12); // the two Relu(x) merge, nothing else
    expect(result.fires.get("cse")).toBe(1);
    expect(result.problems).toEqual([]);
  });
});

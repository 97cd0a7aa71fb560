// dead-code-elimination: before/after IR, released parameters, pruning of precomputed values,
// idempotence and the verifier.

import { describe, expect, it } from "vitest";
import { Graph } from "../../ir/graph.js";
import { printGraph } from "../../ir/printer.js";
import { tensorType } from "../../ir/types.js";
import { deadCodeElimination } from "./dead-code-elimination.js";
import { node, runPass, testModule, testParam } from "../../../test/helpers/graph-fixtures.js";
import { hoist } from "../precomputed.js";

describe("dead-code-elimination", () => {
  it("removes what no output needs, and the parameters only it read leave the graph", () => {
    const g = new Graph("forward");
    const x = g.addInput("x", tensorType("f32", [2, 4]));
    const head = testParam("head.weight", [4, 3]);
    const body = node(g, "Relu", [x]);
    node(g, "MatMul", [body, g.paramValue(head)], [2, 3]); // the head nobody returns
    node(g, "Neg", [x]);
    g.setOutput("y", body);
    const module = testModule([g], [head]);

    const first = runPass(deadCodeElimination, module);
    expect(first.changed).toBe(true);
    expect(first.problems).toEqual([]);
    expect(printGraph(g)).toBe(
      ["graph forward(%x: f32[2, 4]) {", "  %1: f32[2, 4] = Relu(%x)  // /test", "  return y: %1", "}"].join("\n"),
    );
    expect(g.usedParams()).toEqual([]);
    expect(Object.fromEntries(first.stats)).toEqual({
      "nodes-removed": 2,
      "precomputed-values-removed": 0,
      "params-released": 1,
    });

    const second = runPass(deadCodeElimination, module);
    expect(second.changed).toBe(false);
    expect(second.ir).toBe(first.ir);
  });

  it("judges each graph on its own outputs", () => {
    const head = testParam("head.weight", [4, 3]);
    const graphs = ["forward", "train"].map((name) => {
      const g = new Graph(name);
      const x = g.addInput("x", tensorType("f32", [2, 4]));
      const logits = node(g, "MatMul", [x, g.paramValue(head)], [2, 3]);
      g.setOutput("y", name === "train" ? logits : x);
      return g;
    });
    runPass(deadCodeElimination, testModule(graphs, [head]));
    expect(graphs.map((g) => g.usedParams().map((p) => p.name))).toEqual([[], ["head.weight"]]);
  });

  it("drops precomputed values no Precomputed node names, and the precomputed graph when none is left", () => {
    const g = new Graph("forward");
    const x = g.addInput("x", tensorType("f32", [2]));
    const [a, b] = [testParam("a.weight", [2]), testParam("b.weight", [2])];
    const kept = node(g, "Relu", [g.paramValue(a)]);
    const dropped = node(g, "Neg", [g.paramValue(b)]);
    const y = node(g, "Add", [x, kept]);
    node(g, "Mul", [x, dropped]); // dead once hoisted
    g.setOutput("y", y);
    hoist(g, [kept, dropped], "test");
    expect(g.precomputed!.outputs.map((o) => o.name)).toEqual(["folded.0", "folded.1"]);
    const module = testModule([g], [a, b]);

    const first = runPass(deadCodeElimination, module);
    expect(first.problems).toEqual([]);
    expect(g.precomputed!.outputs.map((o) => o.name)).toEqual(["folded.0"]);
    expect(g.precomputed!.nodes.map((n) => n.op)).toEqual(["Relu"]);
    expect(first.stats.get("precomputed-values-removed")).toBe(1);

    g.outputs[0]!.value = x;
    runPass(deadCodeElimination, module);
    expect(g.nodes).toEqual([]);
    expect(g.precomputed).toBeUndefined();
  });
});

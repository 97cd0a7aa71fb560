// The rewrite engine: pattern matching (nesting, bindings, commutative inputs, `where`), the
// driver's fires, near misses, provenance stamps, dead-node cleanup, type guard and iteration cap.

import { describe, expect, it } from "vitest";
import { InternalError } from "../diagnostics/diagnostic.js";
import { Graph } from "../ir/graph.js";
import { printGraph } from "../ir/printer.js";
import { tensorType } from "../ir/types.js";
import { verifyGraph } from "../ir/verify.js";
import { constant, node, recordingContext } from "../../test/helpers/graph-fixtures.js";
import { applyRules, match, op, v, type RewriteRule } from "./rewrite.js";

function graphWithX(): { g: Graph; x: ReturnType<Graph["addInput"]> } {
  const g = new Graph("g");
  return { g, x: g.addInput("x", tensorType("f32", [2, 3])) };
}

describe("patterns", () => {
  it("match nested producers and bind nodes and values", () => {
    const { g, x } = graphWithX();
    const r = node(g, "Relu", [node(g, "Neg", [x])]);
    const m = match(op("Relu", op("Neg", v("x")).as("neg")), r.producer!, g)!;
    expect(m.value("x")).toBe(x);
    expect(m.node("neg").op).toBe("Neg");
    expect(match(op("Relu", op("Abs", v())), r.producer!, g)).toBeUndefined();
  });

  it("require one name to bind one value", () => {
    const { g, x } = graphWithX();
    const y = g.addInput("y", x.type);
    const same = op("Add", v("a"), v("a"));
    expect(match(same, node(g, "Add", [x, x]).producer!, g)).toBeDefined();
    expect(match(same, node(g, "Add", [x, y]).producer!, g)).toBeUndefined();
  });

  it("try both orders of a commutative pattern, and apply `where` to the node", () => {
    const { g, x } = graphWithX();
    const one = constant(g, 1);
    const pattern = op(
      "Mul",
      v("x"),
      op("Constant").where((n) => n.attrs["value"] === 1),
    );
    expect(match(pattern, node(g, "Mul", [one, x], x.type.shape).producer!, g)).toBeUndefined();
    const m = match(pattern.commutative(), node(g, "Mul", [one, x], x.type.shape).producer!, g)!;
    expect(m.value("x")).toBe(x);
    expect(
      match(pattern.commutative(), node(g, "Mul", [constant(g, 2), x], x.type.shape).producer!, g),
    ).toBeUndefined();
  });

  it("refuse a commutative pattern that does not have two inputs", () => {
    expect(() => op("Relu", v()).commutative()).toThrow(InternalError);
  });
});

const negNeg: RewriteRule = { name: "neg-neg", pattern: op("Neg", op("Neg", v("x"))), rewrite: (m) => m.value("x") };

describe("applyRules", () => {
  it("rewires uses, drops what died, stamps what it creates, and counts fires", () => {
    const { g, x } = graphWithX();
    g.setOutput("y", node(g, "Relu", [node(g, "Neg", [node(g, "Neg", [x])])]));
    const absOfRelu: RewriteRule = {
      name: "relu-to-abs",
      pattern: op("Relu", v("x")),
      rewrite: (m, b) => b.add("Abs", [m.value("x")], m.root.outputs[0]!.type),
    };
    const { ctx, fires } = recordingContext();
    expect(applyRules(g, [negNeg, absOfRelu], ctx)).toBe(true);
    expect(printGraph(g)).toBe(
      ["graph g(%x: f32[2, 3]) {", "  %1: f32[2, 3] = Abs(%x)  // /test", "  return y: %1", "}"].join("\n"),
    );
    expect(g.nodes[0]!.rules).toEqual(["relu-to-abs"]);
    expect(Object.fromEntries(fires)).toEqual({ "neg-neg": 1, "relu-to-abs": 1 });
    expect(verifyGraph(g)).toEqual([]);
    expect(applyRules(g, [negNeg, absOfRelu], recordingContext().ctx)).toBe(false);
  });

  it("reports near misses the check refused, once per node, and only while the node stands", () => {
    const { g, x } = graphWithX();
    const kept = node(g, "Neg", [node(g, "Neg", [x])]);
    g.setOutput("y", kept);
    const refusing: RewriteRule = { ...negNeg, check: () => "not today" };
    const { ctx, nearMisses } = recordingContext();
    expect(applyRules(g, [refusing], ctx)).toBe(false);
    expect(nearMisses.map((m) => [m.rule, m.node, m.reason])).toEqual([["neg-neg", kept.producer, "not today"]]);
  });

  it("keeps a producer that something else still uses", () => {
    const { g, x } = graphWithX();
    const inner = node(g, "Neg", [x]);
    g.setOutput("a", node(g, "Neg", [inner]));
    g.setOutput("b", inner);
    applyRules(g, [negNeg], recordingContext().ctx);
    expect(g.nodes.map((n) => n.op)).toEqual(["Neg"]);
    expect(g.outputs.map((o) => o.value)).toEqual([x, inner]);
  });

  it("throws an InternalError when a rewrite changes a type", () => {
    const { g, x } = graphWithX();
    g.setOutput("y", node(g, "Relu", [x]));
    const bad: RewriteRule = {
      name: "bad",
      pattern: op("Relu", v("x")),
      rewrite: (m, b) => b.add("Relu", [m.value("x")], tensorType("f16", [2, 3])),
    };
    expect(() => applyRules(g, [bad], recordingContext().ctx)).toThrow(
      /rule bad replaced f32\[2, 3\] with f16\[2, 3\]/,
    );
  });

  it("stops at the iteration cap and says so", () => {
    const { g, x } = graphWithX();
    g.setOutput("y", node(g, "Relu", [x]));
    const forever: RewriteRule = {
      name: "forever",
      pattern: op("Relu", v("x")),
      rewrite: (m, b) => b.add("Relu", [m.value("x")], m.root.outputs[0]!.type),
    };
    const { ctx, caps, fires } = recordingContext({ maxIterations: 3 });
    expect(applyRules(g, [forever], ctx)).toBe(true);
    expect(fires.get("forever")).toBe(3);
    expect(caps).toHaveLength(1);
    expect(verifyGraph(g)).toEqual([]);
  });
});

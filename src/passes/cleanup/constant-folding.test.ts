// constant-folding: each rule on a small before graph against the expected IR, the refusals
// (near misses), training stages, idempotence and the verifier.

import { describe, expect, it } from "vitest";
import { sym, type Dim } from "../../ir/dims.js";
import { Graph, type Param, type Value } from "../../ir/graph.js";
import { printGraph } from "../../ir/printer.js";
import { tensorType } from "../../ir/types.js";
import { constantFolding } from "./constant-folding.js";
import {
  constant,
  learnedQueries,
  node,
  runPass,
  testModule,
  testParam,
} from "../../../test/helpers/graph-fixtures.js";

const B = sym("B");

/** Runs the pass twice: the second run must change nothing. Returns the first run. */
function fold(
  g: Graph,
  params: Param[] = [],
  options: Parameters<typeof runPass>[2] = {},
  stages: { name: string; trains: string[] }[] = [],
) {
  const module = testModule([g], params, [], stages);
  const first = runPass(constantFolding, module, options);
  expect(first.problems).toEqual([]);
  const second = runPass(constantFolding, module, options);
  expect(second.changed).toBe(false);
  expect(second.ir).toBe(first.ir);
  return first;
}

function graph(shape: Dim[] = [2, 3]): { g: Graph; x: Value } {
  const g = new Graph("forward");
  return { g, x: g.addInput("x", tensorType("f32", shape)) };
}

/** The printed params and nodes, without the signature and the return. */
const body = (g: Graph): string[] => printGraph(g).split("\n").slice(1, -2);

describe("scalar constants", () => {
  it("evaluates arithmetic on constants, rounding to the dtype", () => {
    const g = new Graph("forward");
    g.setOutput("six", node(g, "Mul", [constant(g, 2), constant(g, 3)]));
    g.setOutput("two", node(g, "Sqrt", [node(g, "Add", [constant(g, 2), constant(g, 2)])]));
    g.setOutput("third", node(g, "Div", [constant(g, 1), constant(g, 3)]));
    g.setOutput("int", node(g, "Div", [constant(g, -7, "i64"), constant(g, 2, "i64")]));
    g.setOutput("cast", node(g, "Cast", [constant(g, 2.7)], [], { to: "i64" }, "i64"));
    const result = fold(g);
    expect(g.nodes.every((n) => n.op === "Constant")).toBe(true);
    expect(g.outputs.map((o) => o.value.producer!.attrs["value"])).toEqual([6, 2, Math.fround(1 / 3), -3, 2]);
    expect(g.outputs[4]!.value.producer!.attrs["dtype"]).toBe("i64");
    expect(g.outputs[0]!.value.producer!.rules).toEqual(["fold-scalar-binary"]);
    expect(result.fires.get("fold-scalar-binary")).toBe(4);
  });

  it("leaves a result that is not a finite number, and says why", () => {
    const g = new Graph("forward");
    g.setOutput("y", node(g, "Log", [constant(g, 0)]));
    const result = fold(g);
    expect(result.changed).toBe(false);
    expect(result.nearMisses.map((m) => [m.rule, m.reason])).toEqual([
      ["fold-scalar-unary", "the result is not a finite number"],
    ]);
  });
});

describe("layout ops that do nothing", () => {
  it("composes transposes, and drops a composition that is the identity", () => {
    const { g, x } = graph([2, 3, 4]);
    const t = (v: Value, perm: number[]) =>
      node(
        g,
        "Transpose",
        [v],
        perm.map((p) => v.type.shape[p]!),
        { perm },
      );
    g.setOutput("y", t(t(x, [1, 2, 0]), [1, 0, 2]));
    g.setOutput("z", t(t(x, [2, 0, 1]), [1, 2, 0]));
    g.setOutput("w", t(x, [0, 1, 2]));
    fold(g);
    expect(body(g)).toEqual(["  %1: f32[4, 3, 2] = Transpose{perm=[2, 1, 0]}(%x)  // /test"]);
    expect(g.outputs.map((o) => o.value === x)).toEqual([false, true, true]);
  });

  it("collapses reshape chains and drops reshapes, casts and slices that keep the tensor", () => {
    const { g, x } = graph([B, 6]);
    const r1 = node(g, "Reshape", [x], [B, 2, 3], { shape: [-1, 2, 3] });
    g.setOutput("flat", node(g, "Reshape", [r1], [B, 3, 2], { shape: [-1, 3, 2] }));
    g.setOutput(
      "back",
      node(g, "Reshape", [node(g, "Reshape", [x], [B, 3, 2], { shape: [-1, 3, 2] })], [B, 6], { shape: [-1, 6] }),
    );
    g.setOutput("same", node(g, "Reshape", [x], [B, 6], { shape: [-1, 6] }));
    g.setOutput("cast", node(g, "Cast", [x], undefined, { to: "f32" }));
    g.setOutput("all", node(g, "Slice", [x], [B, 6], { starts: [0], ends: [6], axes: [1], steps: [1] }));
    g.setOutput("tail", node(g, "Slice", [x], [B, 5], { starts: [1], ends: [6], axes: [1], steps: [1] }));
    g.setOutput("reversed", node(g, "Slice", [x], [B, 6], { starts: [-1], ends: [-7], axes: [1], steps: [-1] }));
    const result = fold(g);
    expect(body(g)).toEqual([
      "  %1: f32[B, 3, 2] = Reshape{shape=[-1, 3, 2]}(%x)  // /test",
      "  %2: f32[B, 5] = Slice{axes=[1], ends=[6], starts=[1], steps=[1]}(%x)  // /test",
      "  %3: f32[B, 6] = Slice{axes=[1], ends=[-7], starts=[-1], steps=[-1]}(%x)  // /test",
    ]);
    expect(g.outputs.slice(1, 5).every((o) => o.value === x)).toBe(true);
    expect(Object.fromEntries(result.fires)).toEqual({
      "reshape-of-reshape": 2,
      "identity-reshape": 1,
      "identity-cast": 1,
      "slice-everything": 1,
    });
  });
});

describe("neutral operands", () => {
  it("drops x*1, 1*x, x/1, 0+x and x-0, but not 0-x or x*2", () => {
    const { g, x } = graph();
    const ops: [string, Value, Value][] = [
      ["Mul", x, constant(g, 1)],
      ["Mul", constant(g, 1), x],
      ["Div", x, constant(g, 1)],
      ["Add", constant(g, 0), x],
      ["Sub", x, constant(g, 0)],
      ["Sub", constant(g, 0), x],
      ["Mul", x, constant(g, 2)],
    ];
    ops.forEach(([op, a, b], i) => g.setOutput(`o${i}`, node(g, op, [a, b], x.type.shape)));
    const result = fold(g);
    expect(g.outputs.map((o) => (o.value === x ? "x" : o.value.producer!.op))).toEqual([
      "x",
      "x",
      "x",
      "x",
      "x",
      "Sub",
      "Mul",
    ]);
    expect(result.fires.get("multiply-by-one")).toBe(2);
  });

  it("keeps a neutral operand that changes the type, as a near miss", () => {
    const g = new Graph("forward");
    const x = g.addInput("x", tensorType("f16", [2]));
    g.setOutput("y", node(g, "Mul", [x, constant(g, 1)], [2], {}, "f32"));
    const result = fold(g);
    expect(result.changed).toBe(false);
    expect(result.nearMisses.map((m) => m.reason)).toEqual(["it broadcasts f16[2] to f32[2]"]);
  });
});

describe("batch broadcasts of input-independent tensors", () => {
  it("move below the work on the learned queries", () => {
    const { g, params } = learnedQueries();
    const result = fold(g, params);
    expect(body(g)).toEqual([
      "  param @q.query_tokens: f32[1, 4, 8]",
      "  param @q.norm.weight: f32[8]",
      "  param @q.norm.bias: f32[8]",
      "  param @q.to_q.weight: f32[8, 8]",
      "  param @q.to_k.weight: f32[8, 8]",
      "  param @q.to_v.weight: f32[8, 8]",
      "  param @q.pos: f32[4, 8]",
      "  %8: f32[1, 4, 8] = Add(@q.query_tokens, @q.pos)  // /test",
      "  %9: f32[1, 4, 8] = LayerNorm{eps=0.00001}(%8, @q.norm.weight, @q.norm.bias)  // /test",
      "  %10: f32[1, 4, 8] = Linear(%9, @q.to_q.weight, _)  // /test",
      "  %11: f32[B, 4, 8] = Expand{shape=[-1, 4, 8]}(%10)  // /test",
      "  %12: f32[B, 6, 8] = Linear(%image, @q.to_k.weight, _)  // /test",
      "  %13: f32[B, 6, 8] = Linear(%image, @q.to_v.weight, _)  // /test",
      "  %14: f32[B, 4, 8] = Attention{heads=2}(%11, %12, %13, _)  // /test",
    ]);
    expect(Object.fromEntries(result.fires)).toEqual({ "expand-through-binary": 1, "expand-through-row-op": 2 });
    // Each node carries the rules that made it: the Expand was moved three times.
    expect(g.nodes.find((n) => n.op === "Linear")!.rules).toEqual(["expand-through-row-op"]);
    expect(g.nodes.find((n) => n.op === "Expand")!.rules).toEqual(["expand-through-binary", "expand-through-row-op"]);
  });

  it("move through attention when queries, keys and values are all broadcast", () => {
    const g = new Graph("forward");
    const image = g.addInput("image", tensorType("f32", [B, 6, 8]));
    const t = testParam("q.tokens", [1, 4, 8]);
    const e = node(g, "Expand", [g.paramValue(t)], [B, 4, 8], { shape: [-1, 4, 8] });
    const self = node(g, "Attention", [e, e, e, undefined], undefined, { heads: 2 });
    g.setOutput(
      "y",
      node(g, "Add", [self, node(g, "Slice", [image], [B, 4, 8], { starts: [0], ends: [4], axes: [1], steps: [1] })]),
    );
    const result = fold(g, [t]);
    expect(g.nodes.map((n) => n.op)).toEqual(["Attention", "Expand", "Slice", "Add"]);
    expect(g.nodes[0]!.outputs[0]!.type.shape).toEqual([1, 4, 8]);
    expect(result.nearMisses.map((m) => [m.rule, m.reason])).toEqual([
      ["expand-through-binary", "its input 1 depends on a graph input or on a parameter this compile trains"],
    ]);
  });

  it("stay where they are when a stage trains the weights after them", () => {
    const { g, params } = learnedQueries();
    const before = printGraph(g);
    const result = fold(g, params, { stage: "pretrain" }, [{ name: "pretrain", trains: ["q"] }]);
    expect(result.changed).toBe(false);
    expect(printGraph(g)).toBe(before);
  });
});

// precompute-constants: hoisting the learned-query path (hand-built, and from std blocks elaborated
// from a tiny spec), the weight-growth refusal, training stages, incremental hoisting, the report.

import { describe, expect, it } from "vitest";
import { Graph } from "../../ir/graph.js";
import { printGraph } from "../../ir/printer.js";
import { tensorType } from "../../ir/types.js";
import { constantFolding } from "./constant-folding.js";
import {
  elaborateSpec,
  learnedQueries,
  node,
  runPass,
  testModule,
  testParam,
} from "../../../test/helpers/graph-fixtures.js";
import { createPassManager } from "../index.js";
import { precomputeConstants } from "./precompute-constants.js";
import { PRECOMPUTED } from "../../ir/ops.js";

describe("precompute-constants", () => {
  it("moves the learned-query path into the precomputed graph and reports what it saved", () => {
    const { g, params } = learnedQueries();
    const module = testModule([g], params);
    runPass(constantFolding, module);
    const first = runPass(precomputeConstants, module);
    expect(first.changed).toBe(true);
    expect(first.problems).toEqual([]);
    expect(printGraph(g).split("\n")).toEqual([
      "graph forward(%image: f32[B, 6, 8]) {",
      "  param @q.to_k.weight: f32[8, 8]",
      "  param @q.to_v.weight: f32[8, 8]",
      '  %3: f32[1, 4, 8] = Precomputed{name="folded.0"}()  // /test',
      "  %4: f32[B, 4, 8] = Expand{shape=[-1, 4, 8]}(%3)  // /test",
      "  %5: f32[B, 6, 8] = Linear(%image, @q.to_k.weight, _)  // /test",
      "  %6: f32[B, 6, 8] = Linear(%image, @q.to_v.weight, _)  // /test",
      "  %7: f32[B, 4, 8] = Attention{heads=2}(%4, %5, %6, _)  // /test",
      "  return y: %7",
      "}",
    ]);
    expect(g.precomputed!.nodes.map((n) => n.op)).toEqual(["Add", "LayerNorm", "Linear"]);
    expect(g.precomputed!.inputs).toEqual([]);
    expect(g.nodes.find((n) => n.op === PRECOMPUTED)!.rules).toEqual([
      "expand-through-row-op",
      "hoist-input-independent",
    ]);
    expect(Object.fromEntries(first.stats)).toEqual({
      "values-precomputed": 1,
      "nodes-hoisted": 3,
      "flops-hoisted": 2 * 4 * 8 * 8, // the query projection, once instead of per call
      "params-released": 5,
      "weight-values-added": 32,
      "weight-values-released": 32 + 8 + 8 + 64 + 32,
    });

    const second = runPass(precomputeConstants, module);
    expect(second.changed).toBe(false);
    expect(second.ir).toBe(first.ir);
  });

  it("adds to an existing precomputed graph, reading its values rather than recomputing them", () => {
    const g = new Graph("forward");
    const x = g.addInput("x", tensorType("f32", [4]));
    const p = testParam("a.weight", [4]);
    g.setOutput("y", node(g, "Add", [x, node(g, "Relu", [g.paramValue(p)])]));
    const module = testModule([g], [p]);
    runPass(precomputeConstants, module);
    // A later rewrite makes more work input-independent: Neg of the precomputed value.
    const stand = g.nodes.find((n) => n.op === PRECOMPUTED)!.outputs[0]!;
    const add = g.nodes.find((n) => n.op === "Add")!;
    const neg = g.insertBefore(add, "Neg", [stand], [stand.type], {}, "/test", add.span).outputs[0]!;
    g.setInput(add, 1, neg);
    const again = runPass(precomputeConstants, module);
    expect(again.problems).toEqual([]);
    expect(g.nodes.map((n) => n.op)).toEqual([PRECOMPUTED, "Add"]);
    expect(g.nodes[0]!.attrs["name"]).toBe("folded.1");
    expect(printGraph(g.precomputed!).split("\n").slice(2)).toEqual([
      "  %1: f32[4] = Relu(@a.weight)  // /test",
      "  %2: f32[4] = Neg(%1)  // /test",
      "  return folded.0: %1, folded.1: %2",
      "}",
    ]);
  });

  it("refuses to duplicate a large table, and says why", () => {
    const g = new Graph("forward");
    const ids = g.addInput("ids", tensorType("i64", [2, 3]));
    const table = testParam("embed.weight", [10000, 8]);
    const h = node(g, "Embedding", [g.paramValue(table), ids], [2, 3, 8], {}, "f32");
    const tied = node(g, "Transpose", [g.paramValue(table)], [8, 10000], { perm: [1, 0] });
    g.setOutput("logits", node(g, "MatMul", [h, tied], [2, 3, 10000]));
    const result = runPass(precomputeConstants, testModule([g], [table]));
    expect(result.changed).toBe(false);
    expect(result.nearMisses.map((m) => [m.rule, m.node.op, m.reason])).toEqual([
      ["hoist-input-independent", "Transpose", "precomputing f32[8, 10000] would add 80,000 weight values and free 0"],
    ]);
  });

  it("leaves parameters the stage trains where they are", () => {
    const { g, params } = learnedQueries();
    const module = testModule([g], params, [], [{ name: "pretrain", trains: ["q"] }]);
    runPass(constantFolding, module, { stage: "pretrain" });
    expect(runPass(precomputeConstants, module, { stage: "pretrain" }).changed).toBe(false);
    expect(g.precomputed).toBeUndefined();
  });
});

describe("learned queries from std blocks", () => {
  const spec = `import { qformer } from "std"

// Learned queries read image features: everything before the attention is input-independent.
block learned_queries(width, queries, heads, kv_width) {
  param query_tokens: [1, queries, width] = normal(0.02)
  norm = layer_norm(width)
  to_q = linear(width, width)
  to_k = linear(kv_width, width)
  to_v = linear(kv_width, width)

  forward(image) {
    q = to_q(norm(expand(query_tokens, [dim(image, 0), queries, width])))
    return attention(q, to_k(image), to_v(image), heads: heads)
  }
}

model reader {
  encoder vision = linear(16, 16)
  fusion queries = learned_queries(32, 4, 2, 16)
  forward(image: f32[B, 8, 16]) { return tokens: queries(vision(image)) }
}

model tiny_blip {
  encoder vision = linear(16, 16)
  fusion qformer = qformer(width: 32, depth: 2, heads: 2, ffn: 64, queries: 4, kv_width: 16, cross_every: 2)
  forward(image: f32[B, 8, 16]) { return tokens: qformer(vision(image)) }
  stage pretrain { train qformer }
}
`;
  const compileModel = (name: string, stage?: string) => {
    const result = elaborateSpec(spec);
    expect(result.diagnostics).toEqual([]);
    const module = result.models.find((m) => m.decl.name === name)!.module!;
    const report = createPassManager().run(module, { verify: true, ...(stage ? { stage } : {}) });
    return { module, report, run: report.runs.find((r) => r.pass === "precompute-constants")! };
  };

  it("hoists LayerNorm and the query projection, and reports it", () => {
    const { module, run } = compileModel("reader");
    const g = module.graphs[0]!;
    expect(g.precomputed!.nodes.map((n) => `${n.op} ${n.scope}`)).toEqual([
      "LayerNorm /queries/norm",
      "Linear /queries/to_q",
    ]);
    expect(g.nodes.map((n) => n.op)).toEqual(["Linear", PRECOMPUTED, "Expand", "Linear", "Linear", "Attention"]);
    expect(g.usedParams().some((p) => p.name.startsWith("queries.to_q") || p.name === "queries.query_tokens")).toBe(
      false,
    );
    expect(run.fires).toEqual({ "hoist-input-independent": 1 });
    expect(run.stats).toMatchObject({
      "values-precomputed": 1,
      "nodes-hoisted": 2,
      "flops-hoisted": 2 * 4 * 32 * 32,
      "params-released": 5,
    });
  });

  it("hoists the Q-Former's LayerNorm and first self-attention", () => {
    const { module, run } = compileModel("tiny_blip");
    const hoisted = module.graphs[0]!.precomputed!.nodes;
    expect(hoisted.map((n) => n.op)).toContain("Attention");
    expect(hoisted[0]!.scope).toBe("/qformer/layernorm");
    expect(
      hoisted.filter((n) => n.scope.startsWith("/qformer/encoder/layer/0/attention/")).length,
    ).toBeGreaterThanOrEqual(7);
    expect(run.stats["flops-hoisted"]).toBeGreaterThan(0);
  });

  it("hoists nothing when the stage trains the Q-Former", () => {
    const { module, run } = compileModel("tiny_blip", "pretrain");
    expect(module.graphs[0]!.precomputed).toBeUndefined();
    expect(run.changed).toBe(false);
  });
});

// Property test of the cleanup passes on 200 seeded random graphs of Add, Mul, MatMul, Transpose,
// Reshape, Relu, Concat and Slice. The pipeline: the verifier holds after every pass, the
// optimised graph prints no more nodes than the original, outputs keep their types, every node
// left serves an output, and a second run changes nothing. Numerically: the graph after the
// pipeline, and after each fp32 cleanup pass alone (itself verified and idempotent), gives the
// outputs of the graph as built in onnxruntime, within 1e-5 of each output's scale.

import { describe, expect, it } from "vitest";
import type { Graph } from "../ir/graph.js";
import { printGraph } from "../ir/printer.js";
import { typeToString } from "../ir/types.js";
import { randomModule } from "../../test/helpers/graph-fixtures.js";
import { createPassManager } from "./index.js";
import { relativeErrors } from "../../test/helpers/numeric-fixtures.js";
import { coneOf } from "../ir/analysis.js";

const printedNodes = (g: Graph): number =>
  printGraph(g)
    .split("\n")
    .filter((l) => / = /.test(l)).length;
const outputTypes = (g: Graph): string[] => g.outputs.map((o) => `${o.name}: ${typeToString(o.value.type)}`);
const CLEANUP = ["-unused-values", "-output-dependence"];
/** The passes of CLEANUP that change a portable fp32 graph. */
const FP32_CLEANUP_PASSES = [
  "constant-folding",
  "common-subexpression-elimination",
  "dead-code-elimination",
  "precompute-constants",
];
const SEEDS = Array.from({ length: 200 }, (_, i) => i + 1);

describe("cleanup on random graphs", () => {
  it("keeps 200 graphs valid, no larger, with their outputs, and settles", () => {
    const pm = createPassManager();
    const fires = new Map<string, number>();
    let shrunk = 0;
    for (const seed of SEEDS) {
      const module = randomModule(seed);
      const g = module.graphs[0]!;
      const nodesBefore = printedNodes(g);
      const outputsBefore = outputTypes(g);
      const report = pm.run(module, { passes: CLEANUP, verify: true });
      for (const run of report.runs)
        for (const [rule, n] of Object.entries(run.fires)) fires.set(rule, (fires.get(rule) ?? 0) + n);
      expect(report.caps, `seed ${seed}`).toEqual([]);
      expect(printedNodes(g), `seed ${seed}`).toBeLessThanOrEqual(nodesBefore);
      if (printedNodes(g) < nodesBefore) shrunk++;
      expect(outputTypes(g), `seed ${seed}`).toEqual(outputsBefore);
      expect(
        coneOf(
          g,
          g.outputs.map((o) => o.value),
        ).nodes.size,
        `seed ${seed}: dead nodes left`,
      ).toBe(g.nodes.length + (g.precomputed?.nodes.length ?? 0));
      const again = pm.run(module, { passes: CLEANUP, verify: true });
      expect(
        again.runs.filter((r) => r.changed).map((r) => r.pass),
        `seed ${seed}: not idempotent`,
      ).toEqual([]);
    }
    // The generator must give every cleanup something to do.
    expect(shrunk).toBeGreaterThan(100);
    for (const rule of [
      "cse",
      "transpose-of-transpose",
      "identity-transpose",
      "reshape-of-reshape",
      "identity-reshape",
      "multiply-by-one",
      "add-zero",
      "slice-everything",
      "hoist-input-independent",
    ]) {
      expect(fires.get(rule) ?? 0, rule).toBeGreaterThan(0);
    }
  });

  it("keeps the outputs of 200 graphs in onnxruntime, through the pipeline and through each pass alone", async () => {
    const pm = createPassManager();
    const selections = [CLEANUP, ...FP32_CLEANUP_PASSES.map((p) => [p])];
    const changed = new Map<string, number>();
    let worst = 0;
    for (const seed of SEEDS) {
      const versions = selections.map((passes) => {
        const module = randomModule(seed);
        const report = pm.run(module, { passes, verify: true });
        if (report.runs.some((r) => r.changed)) changed.set(passes.join(" "), (changed.get(passes.join(" ")) ?? 0) + 1);
        const again = pm.run(module, { passes, verify: true });
        expect(
          again.runs.filter((r) => r.changed).map((r) => r.pass),
          `seed ${seed}, ${passes.join(" ")}: not idempotent`,
        ).toEqual([]);
        return module;
      });
      const errors = await relativeErrors(randomModule(seed), versions, seed);
      selections.forEach((passes, i) =>
        expect(errors[i], `seed ${seed}, ${passes.join(" ")}: max |Δ| / max |y|`).toBeLessThanOrEqual(1e-5),
      );
      worst = Math.max(worst, ...errors);
    }
    if (process.env["VLMC_PASS_REPORT"])
      console.log(
        `cleanup on random graphs: worst relative error ${worst.toExponential(1)}; graphs changed ${JSON.stringify(Object.fromEntries(changed))}`,
      );
    // Each selection must have changed most graphs, or the comparison would prove little.
    for (const passes of selections)
      expect(changed.get(passes.join(" ")) ?? 0, passes.join(" ")).toBeGreaterThan(SEEDS.length / 4);
  });
});

// Property test of the cleanup pipeline on 200 seeded random graphs of Add, Mul, MatMul, Transpose,
// Reshape, Relu, Concat and Slice: the verifier holds after every pass, the optimised graph prints
// no more nodes than the original, outputs keep their types, every node left serves an output,
// and a second run changes nothing. (Numerical equivalence joins once codegen runs both graphs.)

import { describe, expect, it } from "vitest";
import type { Graph } from "../ir/graph.js";
import { printGraph } from "../ir/printer.js";
import { typeToString } from "../ir/types.js";
import { randomModule } from "./graph-fixtures.js";
import { createPassManager } from "./index.js";
import { coneOf } from "./reach.js";

const printedNodes = (g: Graph): number => printGraph(g).split("\n").filter((l) => / = /.test(l)).length;
const outputTypes = (g: Graph): string[] => g.outputs.map((o) => `${o.name}: ${typeToString(o.value.type)}`);
const CLEANUP = ["-unused-values", "-output-dependence"];

describe("cleanup on random graphs", () => {
  it("keeps 200 graphs valid, no larger, with their outputs, and settles", () => {
    const pm = createPassManager();
    const fires = new Map<string, number>();
    let shrunk = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const module = randomModule(seed);
      const g = module.graphs[0]!;
      const nodesBefore = printedNodes(g);
      const outputsBefore = outputTypes(g);
      const report = pm.run(module, { passes: CLEANUP, verify: true });
      for (const run of report.runs) for (const [rule, n] of Object.entries(run.fires)) fires.set(rule, (fires.get(rule) ?? 0) + n);
      expect(report.caps, `seed ${seed}`).toEqual([]);
      expect(printedNodes(g), `seed ${seed}`).toBeLessThanOrEqual(nodesBefore);
      if (printedNodes(g) < nodesBefore) shrunk++;
      expect(outputTypes(g), `seed ${seed}`).toEqual(outputsBefore);
      expect(coneOf(g, g.outputs.map((o) => o.value)).nodes.size, `seed ${seed}: dead nodes left`).toBe(g.nodes.length + (g.precomputed?.nodes.length ?? 0));
      const again = pm.run(module, { passes: CLEANUP, verify: true });
      expect(again.runs.filter((r) => r.changed).map((r) => r.pass), `seed ${seed}: not idempotent`).toEqual([]);
    }
    // The generator must give every cleanup something to do.
    expect(shrunk).toBeGreaterThan(100);
    for (const rule of ["cse", "transpose-of-transpose", "identity-transpose", "reshape-of-reshape", "identity-reshape", "multiply-by-one", "add-zero", "slice-everything", "hoist-input-independent"]) {
      expect(fires.get(rule) ?? 0, rule).toBeGreaterThan(0);
    }
  });
});

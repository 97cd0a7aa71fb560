// Small graphs for the fusion pass tests: a pass run twice on a one-graph module for a target,
// with the verifier's findings and whether the second run left the IR alone.

import type { Graph, Param } from "../../src/ir/graph.js";
import { printGraph } from "../../src/ir/printer.js";
import { runPass, testModule } from "./graph-fixtures.js";
import type { Pass } from "../../src/passes/pass.js";
import type { TargetName } from "../../src/target/target.js";

/** The first run's report, plus `idempotent`: the second run changed nothing. */
export function fuseTwice(pass: Pass, g: Graph, params: Param[], target: TargetName = "ort-cpu") {
  const module = testModule([g], params);
  const first = runPass(pass, module, { target });
  const second = runPass(pass, module, { target });
  return { ...first, idempotent: !second.changed && second.ir === first.ir };
}

/** The printed nodes of `g`, without the signature, the parameters and the return. */
export const nodeLines = (g: Graph): string[] =>
  printGraph(g)
    .split("\n")
    .filter((l) => l.startsWith("  %"));

/** Near misses as [rule, reason] pairs. */
export const misses = (r: { nearMisses: readonly { rule: string; reason: string }[] }): [string, string][] =>
  r.nearMisses.map((m) => [m.rule, m.reason]);

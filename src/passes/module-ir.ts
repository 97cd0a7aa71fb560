// A whole module as passes see it: every graph together with the precomputed graph it may carry.
// The manager prints and verifies through these so hoisted values are never left out.

import type { IrModule } from "../ir/graph.js";
import { printGraph } from "../ir/printer.js";
import { verifyGraph } from "../ir/verify.js";
import { verifyPrecomputed } from "./precomputed.js";

export function printModule(module: IrModule): string {
  return module.graphs
    .map((g) => [printGraph(g), ...(g.precomputed ? [printGraph(g.precomputed)] : [])].join("\n"))
    .join("\n\n");
}

/** Every broken invariant, each prefixed with its graph's name; empty when the module is sound. */
export function verifyModule(module: IrModule): string[] {
  return module.graphs.flatMap((g) => [...verifyGraph(g), ...verifyPrecomputed(g)].map((p) => `${g.name}: ${p}`));
}

/** Nodes that run per call (the precomputed graphs run once, at build time). */
export function runtimeNodeCount(module: IrModule): number {
  return module.graphs.reduce((a, g) => a + g.nodes.length, 0);
}

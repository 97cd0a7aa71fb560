// dead-code-elimination: drops what no graph output depends on. A head a graph never calls, or a
// branch whose result is discarded, leaves the graph, and parameters only it read leave the
// graph's used set with it (codegen writes no initializer for them).

import type { Graph } from "../../ir/graph.js";
import { eachGraph, type Pass } from "../pass.js";
import { PRECOMPUTED } from "../../ir/ops.js";
import { coneOf } from "../../ir/analysis.js";

export interface Eliminated {
  readonly nodes: number;
  readonly precomputedValues: number;
}

/** Removes `g`'s dead nodes, then the precomputed values no `Precomputed` node still names. */
export function eliminateDeadCode(g: Graph): Eliminated {
  const live = coneOf(
    g,
    g.outputs.map((o) => o.value),
  ).nodes;
  const dead = new Set(g.nodes.filter((n) => !live.has(n)));
  g.removeNodes(dead);
  const sub = g.precomputed;
  if (!sub) return { nodes: dead.size, precomputedValues: 0 };
  const named = new Set(g.nodes.filter((n) => n.op === PRECOMPUTED).map((n) => n.attrs["name"]));
  const before = sub.outputs.length;
  for (let i = sub.outputs.length - 1; i >= 0; i--) if (!named.has(sub.outputs[i]!.name)) sub.outputs.splice(i, 1);
  eliminateDeadCode(sub);
  if (sub.outputs.length === 0) g.precomputed = undefined;
  return { nodes: dead.size, precomputedValues: before - sub.outputs.length };
}

/**
 * dead-code-elimination. Rules:
 *  1. a node none of whose outputs reaches a graph output → removed
 *  2. a precomputed value no Precomputed node names any more → removed from graph.precomputed,
 *     with the nodes only it needed (and the precomputed graph when nothing is left)
 * Reports nodes-removed, precomputed-values-removed and params-released (parameters a graph no
 * longer uses).
 */
export const deadCodeElimination: Pass = {
  name: "dead-code-elimination",
  description: "remove nodes no graph output depends on, and the parameters only they used",
  run: (module, ctx) =>
    eachGraph(module, (g) => {
      const paramsBefore = g.usedParams().length;
      const { nodes, precomputedValues } = eliminateDeadCode(g);
      ctx.stat("nodes-removed", nodes);
      ctx.stat("precomputed-values-removed", precomputedValues);
      ctx.stat("params-released", paramsBefore - g.usedParams().length);
      return nodes > 0 || precomputedValues > 0;
    }),
};

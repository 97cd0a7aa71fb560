// precompute-constants: takes the work that does not depend on a graph's inputs out of the graph,
// to be computed once when the model is built (see precomputed.ts for how codegen evaluates it).

import type { Dim } from "../../ir/dims.js";
import type { Graph, Node, Param, Value } from "../../ir/graph.js";
import { typeToString } from "../../ir/types.js";
import { Constness } from "../constness.js";
import { eachGraph, type Pass, type PassContext } from "../pass.js";
import { hoist } from "../precomputed.js";

const RULE = "hoist-input-independent";

/** Weight values a hoist may add beyond those it frees: small tables are always worth it. */
const GROWTH_SLACK = 1 << 16;

/** Input-independent values and parameters have static shapes. */
const elements = (shape: readonly Dim[]): number => shape.reduce<number>((a, d) => a * (d as number), 1);

/** The region's nodes in the backward cone of `f` (the nodes a hoist of `f` would move). */
function coneIn(f: Value, inRegion: (n: Node) => boolean): Set<Node> {
  const cone = new Set<Node>();
  const stack = [f];
  for (let v = stack.pop(); v !== undefined; v = stack.pop()) {
    const n = v.producer;
    if (!n || cone.has(n) || !inRegion(n)) continue;
    cone.add(n);
    for (const i of n.inputs) if (i) stack.push(i);
  }
  return cone;
}

/**
 * The values where input-independent work meets run-time work (or a graph output). A value whose
 * precomputed tensor would add more weight values than its cone frees is refused (a tied
 * embedding's transpose would duplicate the vocabulary matrix), and its producer stays at run
 * time, so its own inputs become candidates instead.
 */
function chooseFrontier(g: Graph, k: Constness, ctx: PassContext): Value[] {
  const outputs = new Set(g.outputs.map((o) => o.value));
  const refused = new Set<Node>();
  const inRegion = (n: Node) => !refused.has(n) && n.outputs.every((o) => k.isConstant(o));
  for (;;) {
    const frontier: Value[] = [];
    for (const n of g.nodes) {
      // Nodes without inputs (Constant, Range, Precomputed) are already as cheap as a weight.
      if (n.inputs.length === 0 || !inRegion(n)) continue;
      for (const o of n.outputs) if (outputs.has(o) || o.uses.some((u) => !inRegion(u.node))) frontier.push(o);
    }
    const cones = frontier.map((f) => coneIn(f, inRegion));
    const moved = new Set(cones.flatMap((c) => [...c]));
    const frees = (p: Param) => !outputs.has(g.paramValue(p)) && g.paramValue(p).uses.every((u) => moved.has(u.node));
    let refusedOne = false;
    frontier.forEach((f, i) => {
      const params = new Set(
        [...cones[i]!].flatMap((n) => n.inputs.flatMap((v) => (v?.source.kind === "param" ? [v.source.param] : []))),
      );
      const freed = [...params].filter(frees).reduce((a, p) => a + elements(p.type.shape), 0);
      const added = elements(f.type.shape);
      if (added > freed + GROWTH_SLACK) {
        refused.add(f.producer!);
        refusedOne = true;
        ctx.nearMiss({
          rule: RULE,
          node: f.producer!,
          reason: `precomputing ${typeToString(f.type)} would add ${added.toLocaleString("en-US")} weight values and free ${freed.toLocaleString("en-US")}`,
        });
      }
    });
    if (!refusedOne) return frontier;
  }
}

/**
 * precompute-constants. Rule, stamped on the `Precomputed` node it creates:
 *  1. hoist-input-independent: a maximal subgraph computed from constants and untrained
 *     parameters alone, read by a run-time node or a graph output → Precomputed{name}, with the
 *     subgraph moved to `graph.precomputed` (refused when the result would grow the weights by
 *     more than it frees, plus a small allowance).
 * Constant folding runs first, so the learned queries of a Q-Former (through LayerNorm and the
 * first self-attention) and the latents of a Perceiver (through their projections) arrive here
 * unbroadcast. Reports values-precomputed, nodes-hoisted, flops-hoisted (per call, batch 1),
 * params-released (parameters the graph no longer reads at run time) and the weight values added
 * and released.
 */
export const precomputeConstants: Pass = {
  name: "precompute-constants",
  description: "move input-independent work (learned queries, latents) into a subgraph evaluated once at build time",
  run: (module, ctx) =>
    eachGraph(module, (g) => {
      const frontier = chooseFrontier(g, Constness.of(module, ctx.options).prime(g), ctx);
      if (frontier.length === 0) return false;
      const { removed, released, flops } = hoist(g, frontier, RULE);
      for (let i = 0; i < frontier.length; i++) ctx.fired(RULE);
      ctx.stat("values-precomputed", frontier.length);
      ctx.stat("nodes-hoisted", removed.length);
      ctx.stat("flops-hoisted", flops);
      ctx.stat("params-released", released.length);
      ctx.stat(
        "weight-values-added",
        frontier.reduce((a, f) => a + elements(f.type.shape), 0),
      );
      ctx.stat(
        "weight-values-released",
        released.reduce((a, p) => a + elements(p.type.shape), 0),
      );
      return true;
    }),
};

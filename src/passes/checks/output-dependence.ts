// output-dependence: an entry point whose output is the same on every call is almost always a
// mistake in the spec (a returned parameter, a branch that dropped the input), so it is an error.

import { diagnostic } from "../../diagnostics/diagnostic.js";
import type { Pass } from "../pass.js";
import { coneOf } from "../../ir/analysis.js";

/**
 * output-dependence. Check:
 *  1. VLM3006 (error): a graph output whose cone holds no graph input and no symbolic dim (a
 *     symbol is read from an input's shape, so `arange(T)` does depend on the input); at the node
 *     that computes the output, or the parameter it returns
 */
export const outputDependence: Pass = {
  name: "output-dependence",
  description: "reject graph outputs that depend on no graph input",
  run(module, ctx) {
    for (const g of module.graphs) {
      for (const o of g.outputs) {
        const cone = coneOf(g, [o.value]);
        if (cone.inputs.size > 0 || cone.symbols.size > 0) continue;
        const s = o.value.source;
        const span = s.kind === "node" ? s.node.span : s.kind === "param" ? s.param.span : ctx.options.modelSpan;
        ctx.accept(
          diagnostic(
            "VLM3006",
            `output "${o.name}" of ${g.name} depends on no graph input: every call returns the same tensor`,
            span,
            { hint: "compute it from an input, or drop it from the return" },
          ),
        );
      }
    }
    return { changed: false };
  },
};

// common-subexpression-elimination: computes each distinct expression once. Std blocks often
// project the same tensor twice (keys and values of one input, the same mask per layer), and
// elaboration emits one Constant per literal.

import type { AttrValue, Node } from "../../ir/graph.js";
import { typeToString } from "../../ir/types.js";
import { eachGraph, type Pass } from "../pass.js";

const RULE = "cse";

/** Ops whose two inputs may be swapped without changing the result. */
const COMMUTATIVE = new Set(["Add", "Mul", "And", "Or", "Equal"]);

function attrKey(a: AttrValue): string {
  if (Array.isArray(a)) return `[${a.map((x: AttrValue) => attrKey(x)).join(",")}]`;
  // String() keeps NaN and ±Infinity apart, which JSON would all write as null; -0 is not 0.
  if (typeof a === "number") return Object.is(a, -0) ? "-0" : String(a);
  return JSON.stringify(a);
}

/**
 * Two nodes with equal keys compute the same values. Output types are part of the key: a Reshape
 * or Expand records symbolic target dims only in its output type.
 */
function keyOf(n: Node): string {
  const inputs = n.inputs.map((v) => (v ? String(v.id) : "_"));
  if (COMMUTATIVE.has(n.op)) inputs.sort();
  const attrs = Object.keys(n.attrs)
    .sort()
    .map((k) => `${k}=${attrKey(n.attrs[k]!)}`);
  return `${n.op}{${attrs.join(",")}}(${inputs.join(",")}):${n.outputs.map((o) => typeToString(o.type)).join(",")}`;
}

/**
 * common-subexpression-elimination. Rule, stamped on the node that stays:
 *  1. cse: two nodes with the same op, attributes, inputs (by identity; either order for
 *     Add|Mul|And|Or|Equal) and output types → the first; that includes nodes without inputs
 *     (Constant, Range, Precomputed) with equal attributes
 * One pass in graph order suffices: merging rewires later nodes before they are keyed.
 */
export const commonSubexpressionElimination: Pass = {
  name: "common-subexpression-elimination",
  description: "compute each distinct expression once",
  run: (module, ctx) =>
    eachGraph(module, (g) => {
      const first = new Map<string, Node>();
      const merged = new Set<Node>();
      for (const n of g.nodes) {
        const key = keyOf(n);
        const kept = first.get(key);
        if (!kept) {
          first.set(key, n);
          continue;
        }
        n.outputs.forEach((o, i) => g.replaceAllUses(o, kept.outputs[i]!));
        if (!kept.rules.includes(RULE)) kept.rules.push(RULE);
        merged.add(n);
        ctx.fired(RULE);
      }
      g.removeNodes(merged);
      ctx.stat("nodes-merged", merged.size);
      return merged.size > 0;
    }),
};

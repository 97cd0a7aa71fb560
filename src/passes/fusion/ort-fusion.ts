// What the fusion passes share: a pass that rewrites only for ONNX Runtime targets (its rules are
// built for the target, so their checks can ask which kernels it has), and the graph edits the
// rewriter has no word for: nodes with several outputs, placed before a node other than the root.

import type { AttrValue, Graph, IrModule, Node, Value } from "../../ir/graph.js";
import type { DType, TensorType } from "../../ir/types.js";
import { readers } from "../../ir/analysis.js";
import type { Target } from "../../target/target.js";
import { eachGraph, type Pass, type PassContext } from "../pass.js";
import { applyRules, type RewriteRule } from "../rewrite.js";

/** A pass applying `rules(target, module, ctx)` to every graph; on a target without ONNX Runtime's ops it does nothing. */
export function ortFusionPass(
  name: string,
  description: string,
  rules: (target: Target, module: IrModule, ctx: PassContext) => readonly RewriteRule[],
): Pass {
  return {
    name,
    description,
    run: (module, ctx) => {
      const target = ctx.options.target;
      if (!target.runsOrtOps) return { changed: false };
      const built = rules(target, module, ctx);
      return eachGraph(module, (g) => applyRules(g, built, ctx));
    },
  };
}

/** True if `v` is available right before `node`: a graph input, a parameter, or made earlier. */
export function definedBefore(g: Graph, v: Value, node: Node): boolean {
  const p = v.producer;
  return p === undefined || g.nodes.indexOf(p) < g.nodes.indexOf(node);
}

/**
 * Adds a node right before `before` with `like`'s scope and span, stamped with `like`'s rules and
 * `rule` (what Rewriter.add does for one output before the root).
 */
export function insertNode(
  g: Graph,
  before: Node,
  like: Node,
  rule: string,
  op: string,
  inputs: (Value | undefined)[],
  types: TensorType[],
  attrs: Record<string, AttrValue>,
): Node {
  const node = g.insertBefore(before, op, inputs, types, attrs, like.scope, like.span);
  node.rules.push(...new Set([...like.rules, rule]));
  return node;
}

/** Points every use of `from` except `keep`'s, and any graph output, at `to`. */
export function redirectUses(g: Graph, from: Value, to: Value, keep: Node): void {
  for (const u of [...from.uses]) if (u.node !== keep) g.setInput(u.node, u.index, to);
  for (const o of g.outputs) if (o.value === from) o.value = to;
}

/** `inputs` without the absent optional ones at the end. */
export function trimmed(inputs: readonly (Value | undefined)[]): (Value | undefined)[] {
  const out = [...inputs];
  while (out.length > 0 && out[out.length - 1] === undefined) out.pop();
  return out;
}

export const dtypeOf = (n: Node): DType => n.outputs[0]!.type.dtype;

/** The Linear that makes `v`, when it has a bias and `v` has no other reader: its bias can move into the fused op reading `v`. */
export function biasedLinear(g: Graph, v: Value): Node | undefined {
  const p = v.producer;
  return p?.op === "Linear" && p.inputs[2] !== undefined && readers(g, v) === 1 ? p : undefined;
}

/** `linear` without its bias, added right before it (the old one dies with its last reader). */
export function withoutBias(g: Graph, linear: Node, rule: string): Value {
  const [x, w] = linear.inputs;
  return insertNode(g, linear, linear, rule, "Linear", [x, w, undefined], [linear.outputs[0]!.type], {
    ...linear.attrs,
  }).outputs[0]!;
}

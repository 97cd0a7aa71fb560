// Hoisted values: how a graph stands for values that do not depend on its inputs. The values are
// computed by `graph.precomputed`, a graph with no inputs that reads only parameters and
// constants; the graph itself holds a `Precomputed{name}` node (no inputs) per value. Codegen,
// once the weights exist, evaluates the precomputed graph (lowered like any graph and run in
// onnxruntime, or by an interpreter) and writes each named output as an initializer, so a
// deployed model computes the learned-query path of a Q-Former once at build time, not per call.

import { Graph, type Node, type Param, type Value } from "../ir/graph.js";
import { shapesEqual, typeToString } from "../ir/types.js";
import { verifyGraph } from "../ir/verify.js";
import { nodeFlops, precomputedSource } from "../ir/analysis.js";
import { PRECOMPUTED } from "../ir/ops.js";

export interface Hoisted {
  /** Nodes taken out of the graph. */
  readonly removed: readonly Node[];
  /** Parameters the graph no longer reads at run time (the precomputed graph still does). */
  readonly released: readonly Param[];
  /** What the removed nodes cost per call (summary's estimate: batch 1, symbols at their bound). */
  readonly flops: number;
}

/**
 * Moves the input-independent cone of each `frontier` value into `g.precomputed` and replaces the
 * value with a `Precomputed` node stamped with `rule`. The caller guarantees the cone is
 * input-independent; the cone's nodes that nothing else uses leave the graph.
 */
export function hoist(g: Graph, frontier: readonly Value[], rule: string): Hoisted {
  const sub = (g.precomputed ??= new Graph(`${g.name}.precomputed`));
  const paramsBefore = g.usedParams();
  const cone = new Set<Node>();
  const stack = [...frontier];
  for (let v = stack.pop(); v !== undefined; v = stack.pop()) {
    const n = v.producer;
    if (!n || cone.has(n)) continue;
    cone.add(n);
    for (const input of n.inputs) if (input) stack.push(input);
  }
  // Clones in graph order, so every clone's inputs exist before it.
  const clones = new Map<Value, Value>();
  const inSub = (v: Value): Value => (v.source.kind === "param" ? sub.paramValue(v.source.param) : clones.get(v)!);
  for (const n of g.nodes) {
    if (!cone.has(n)) continue;
    if (n.op === PRECOMPUTED) {
      clones.set(n.outputs[0]!, precomputedSource(g, n));
      continue;
    }
    const c = sub.addNode(
      n.op,
      n.inputs.map((v) => v && inSub(v)),
      n.outputs.map((o) => o.type),
      { ...n.attrs },
      n.scope,
      n.span,
    );
    c.rules.push(...n.rules);
    n.outputs.forEach((o, i) => clones.set(o, c.outputs[i]!));
  }
  const taken = new Set(sub.outputs.map((o) => o.name));
  let next = sub.outputs.length;
  for (const v of frontier) {
    while (taken.has(`folded.${next}`)) next++;
    const name = `folded.${next}`;
    taken.add(name);
    sub.setOutput(name, clones.get(v)!);
    const producer = v.producer!;
    const stand = g.insertBefore(producer, PRECOMPUTED, [], [v.type], { name }, producer.scope, producer.span);
    stand.rules.push(...new Set([...producer.rules, rule]));
    g.replaceAllUses(v, stand.outputs[0]!);
  }
  // Cone nodes still used outside the cone (a constant shared with run-time nodes) stay.
  const dead = new Set<Node>();
  const outputs = new Set(g.outputs.map((o) => o.value));
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (cone.has(n) && n.outputs.every((o) => !outputs.has(o) && o.uses.every((u) => dead.has(u.node)))) dead.add(n);
  }
  const flops = [...dead].reduce((a, n) => a + nodeFlops(n, g), 0);
  g.removeNodes(dead);
  const paramsAfter = new Set(g.usedParams());
  return { removed: [...dead], released: paramsBefore.filter((p) => !paramsAfter.has(p)), flops };
}

/** The invariants of hoisting: a precomputed graph without inputs that computes every named value. */
export function verifyPrecomputed(g: Graph): string[] {
  const sub = g.precomputed;
  const stands = g.nodes.filter((n) => n.op === PRECOMPUTED);
  if (!sub) return stands.length > 0 ? [`graph ${g.name} has ${PRECOMPUTED} nodes but no precomputed graph`] : [];
  const problems = verifyGraph(sub).map((p) => `${sub.name}: ${p}`);
  if (sub.inputs.length > 0) problems.push(`${sub.name} has inputs`);
  if (sub.nodes.some((n) => n.op === PRECOMPUTED)) problems.push(`${sub.name} refers to precomputed values itself`);
  for (const n of stands) {
    const out = sub.outputs.find((o) => o.name === n.attrs["name"]);
    if (n.inputs.length > 0) problems.push(`${PRECOMPUTED}#${n.id} has inputs`);
    if (!out)
      problems.push(`${PRECOMPUTED}#${n.id} names "${String(n.attrs["name"])}", which ${sub.name} does not compute`);
    else if (
      out.value.type.dtype !== n.outputs[0]!.type.dtype ||
      !shapesEqual(out.value.type.shape, n.outputs[0]!.type.shape)
    ) {
      problems.push(
        `${PRECOMPUTED}#${n.id} is ${typeToString(n.outputs[0]!.type)} but ${sub.name} computes ${typeToString(out.value.type)}`,
      );
    }
  }
  return problems;
}

// Questions passes, codegen and the driver ask of a graph, answered once: what a set of values
// depends on (liveness), what dies with a node, who reads a value, and the size and cost of the
// work (parameter counts, FLOPs). None of them changes the graph.

import { InternalError } from "../diagnostics/diagnostic.js";
import { dimMax, isStatic, symbolsOf, type Dim } from "./dims.js";
import type { Graph, Node, Param, Value } from "./graph.js";
import { PRECOMPUTED } from "./ops.js";

/** The value in `g.precomputed` that a `Precomputed` node of `g` stands for. */
export function precomputedSource(g: Graph, node: Node): Value {
  const name = node.attrs["name"];
  const out = g.precomputed?.outputs.find((o) => o.name === name);
  if (!out)
    throw new InternalError(
      `${PRECOMPUTED} node #${node.id} of graph ${g.name} names "${String(name)}", which its precomputed graph does not compute`,
    );
  return out.value;
}

/**
 * What a set of values depends on: the nodes, graph inputs and parameters in their backward cone,
 * and the symbolic dims on the way (a symbol is read from an input's shape at run time, so a value
 * with a symbolic dim depends on an input even when no edge leads there).
 */
export interface Cone {
  /** Nodes of the graph, and of its precomputed graph, that the roots depend on. */
  readonly nodes: Set<Node>;
  readonly inputs: Set<Value>;
  readonly params: Set<Param>;
  readonly symbols: Set<string>;
}

/**
 * The backward cone of `roots`: the one liveness question. Dead-code elimination, the unused-value
 * and output-dependence checks and codegen (which emits only the cone of the graph's outputs) ask it.
 */
export function coneOf(g: Graph, roots: Iterable<Value>): Cone {
  const cone: Cone = { nodes: new Set(), inputs: new Set(), params: new Set(), symbols: new Set() };
  const seen = new Set<Value>();
  const stack = [...roots];
  for (let v = stack.pop(); v !== undefined; v = stack.pop()) {
    if (seen.has(v)) continue;
    seen.add(v);
    for (const d of v.type.shape) for (const s of symbolsOf(d)) cone.symbols.add(s);
    const source = v.source;
    if (source.kind === "input") cone.inputs.add(v);
    else if (source.kind === "param") cone.params.add(source.param);
    else if (!cone.nodes.has(source.node)) {
      cone.nodes.add(source.node);
      for (const input of source.node.inputs) if (input) stack.push(input);
      // A hoisted value depends on what its precomputed graph reads.
      if (source.node.op === PRECOMPUTED) stack.push(precomputedSource(g, source.node));
    }
  }
  return cone;
}

/** The symbols a graph input's shape defines. */
export function inputSymbols(input: Value): string[] {
  return input.type.shape.flatMap(symbolsOf);
}

/**
 * `start` and every producer that only these nodes read, when nothing outside them reads `start`
 * (the incremental form of liveness a rewrite needs after replacing one node: O(what dies), not O(graph)).
 */
export function deadFrom(g: Graph, start: Node): Set<Node> {
  const dead = new Set<Node>();
  const stack = [start];
  for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
    if (dead.has(n) || n.outputs.some((o) => g.isOutput(o) || o.uses.some((u) => !dead.has(u.node)))) continue;
    dead.add(n);
    for (const input of n.inputs) if (input?.producer) stack.push(input.producer);
  }
  return dead;
}

/** How many places read `v`: node inputs and graph outputs. */
export function readers(g: Graph, v: Value): number {
  return v.uses.length + g.outputs.filter((o) => o.value === v).length;
}

/** The number of values in a parameter (its shape is static). */
export function paramCount(p: Param): number {
  return p.type.shape.reduce<number>((a, d) => a * (d as number), 1);
}

/** Symbols count as their bound when they have one, else as 1 (batch 1). */
function concrete(d: Dim, g: Graph): number {
  if (isStatic(d)) return d;
  const bounds = new Map(g.bounds);
  for (const k of d.keys()) for (const s of k.split("*")) if (s && !bounds.has(s)) bounds.set(s, 1);
  return dimMax(d, bounds) ?? 1;
}

function elements(shape: readonly Dim[], g: Graph): number {
  return shape.reduce<number>((a, d) => a * concrete(d, g), 1);
}

/** An estimate of a node's floating-point operations per call: matrix products, convolutions and attention. */
export function nodeFlops(n: Node, g: Graph): number {
  const out = n.outputs[0];
  if (!out) return 0;
  switch (n.op) {
    case "Linear": {
      const w = n.inputs[1]!.type.shape;
      return 2 * elements(out.type.shape, g) * concrete(w[1]!, g);
    }
    case "MatMul": {
      const a = n.inputs[0]!.type.shape;
      return 2 * elements(out.type.shape, g) * concrete(a[a.length - 1]!, g);
    }
    case "Conv": {
      const w = n.inputs[1]!.type.shape;
      return 2 * elements(out.type.shape, g) * concrete(w[1]!, g) * concrete(w[2]!, g) * concrete(w[3]!, g);
    }
    case "Attention": {
      const q = n.inputs[0]!.type.shape;
      const k = n.inputs[1]!.type.shape;
      return 4 * concrete(q[0]!, g) * concrete(q[1]!, g) * concrete(k[1]!, g) * concrete(q[2]!, g);
    }
    default:
      return 0;
  }
}

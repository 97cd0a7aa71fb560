// What a set of values depends on: the nodes, graph inputs and parameters in their backward cone,
// and the symbolic dims on the way (a symbol is read from an input's shape at run time, so a value
// with a symbolic dim depends on an input even when no edge leads there). Dead-code elimination,
// the unused-value check and the output-dependence check all ask this one question.

import type { Graph, Node, Param, Value } from "../ir/graph.js";
import { symbolsOf } from "../ir/dims.js";
import { PRECOMPUTED, precomputedSource } from "./precomputed.js";

export interface Cone {
  /** Nodes of the graph, and of its precomputed graph, that the roots depend on. */
  readonly nodes: Set<Node>;
  readonly inputs: Set<Value>;
  readonly params: Set<Param>;
  readonly symbols: Set<string>;
}

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

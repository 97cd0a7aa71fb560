// Which values are the same on every call of a graph: constants, parameters that this compile does
// not train, and whatever nodes compute from those alone. A value with a symbolic dim is never
// one, because its size is read from an input at run time (an `expand` to the batch, an `arange`
// over the sequence).

import { InternalError } from "../diagnostics/diagnostic.js";
import { isStatic } from "../ir/dims.js";
import type { Graph, IrModule, Param, Value } from "../ir/graph.js";
import type { PassOptions } from "./pass.js";

export class Constness {
  private readonly known = new Map<Value, boolean>();

  private constructor(private readonly variable: (p: Param) => boolean) {}

  /** Parameters are constants unless `options.stage` trains their component. */
  static of(module: IrModule, options: PassOptions): Constness {
    if (options.stage === undefined) return new Constness(() => false);
    const stage = module.stages.find((s) => s.name === options.stage);
    if (!stage)
      throw new InternalError(`model ${module.name} has no stage "${options.stage}" (the pass manager checks this)`);
    const trained = new Set(stage.trains);
    return new Constness((p) => trained.has(p.component));
  }

  /** Fills the cache in graph order, so later questions about new nodes recurse only shallowly. */
  prime(g: Graph): this {
    for (const n of g.nodes) for (const o of n.outputs) this.isConstant(o);
    return this;
  }

  isConstant(v: Value): boolean {
    let c = this.known.get(v);
    if (c === undefined) {
      c = this.compute(v);
      this.known.set(v, c);
    }
    return c;
  }

  private compute(v: Value): boolean {
    const s = v.source;
    if (s.kind === "input") return false;
    if (s.kind === "param") return !this.variable(s.param);
    // SizeValue has no inputs yet reads a symbol's size from the graph inputs.
    if (s.node.op === "SizeValue") return false;
    return v.type.shape.every(isStatic) && s.node.inputs.every((i) => !i || this.isConstant(i));
  }
}

// The tensor-graph IR: values with one producer and a use list, nodes with fixed outputs, graphs
// with named inputs and outputs, and parameters shared by the graphs of a module. All edits go
// through the methods here so use lists never drift.

import type { Span } from "../diagnostics/source.js";
import type { TensorType } from "./types.js";

export type Role = "encoder" | "fusion" | "head";

export type Initializer =
  | { kind: "zeros" }
  | { kind: "ones" }
  | { kind: "full"; value: number }
  | { kind: "normal"; std: number; mean: number }
  | { kind: "uniform"; bound: number };

export interface Param {
  /** Full dotted name from the declaration tree (`vision.encoder.layers.3.self_attn.q_proj.weight`). */
  readonly name: string;
  readonly type: TensorType;
  readonly init: Initializer;
  /** Top-level model component that owns it ("" for model-level params without a role). */
  readonly component: string;
  readonly role: Role | undefined;
  readonly frozen: boolean;
  /** Buffers (batch-norm statistics) are state, not trainable parameters, and are not counted. */
  readonly buffer: boolean;
  readonly span: Span;
}

export type AttrValue = number | string | boolean | readonly number[] | readonly string[];

export type ValueSource =
  | { kind: "input"; name: string; span?: Span }
  | { kind: "param"; param: Param }
  | { kind: "node"; node: Node; index: number };

export interface Use {
  readonly node: Node;
  readonly index: number;
}

export class Value {
  readonly uses: Use[] = [];
  constructor(
    readonly id: number,
    public type: TensorType,
    public source: ValueSource,
  ) {}

  get producer(): Node | undefined {
    return this.source.kind === "node" ? this.source.node : undefined;
  }
}

export class Node {
  /** Names of the rewrite rules that created or changed this node (provenance). */
  readonly rules: string[] = [];
  constructor(
    readonly id: number,
    readonly op: string,
    public attrs: Readonly<Record<string, AttrValue>>,
    readonly inputs: (Value | undefined)[],
    readonly outputs: Value[],
    /** Hierarchical scope from the module path (`vision/encoder/layers.3/self_attn`). */
    readonly scope: string,
    readonly span: Span,
  ) {}
}

export interface GraphOutput {
  readonly name: string;
  value: Value;
}

export class Graph {
  readonly inputs: Value[] = [];
  readonly outputs: GraphOutput[] = [];
  readonly nodes: Node[] = [];
  private readonly paramValues = new Map<Param, Value>();
  private nextId = 0;
  /**
   * Input-independent values hoisted out by constant folding: a graph without inputs whose named
   * outputs this graph's `Precomputed{name}` nodes stand for. Codegen evaluates it once the
   * weights exist and emits each output as an initializer (see src/passes/precomputed.ts).
   */
  precomputed: Graph | undefined;
  /**
   * Sub-modules (dotted name prefixes) the spec leaves out of this graph by a compile-time choice:
   * the elements of a stack it indexes (`layers[i]` for i below a `layer:` selection) and the
   * modules named only in an `if` branch not taken. The unused-parameter check excuses them.
   */
  readonly optional = new Set<string>();
  /**
   * Names of inputs and outputs that carry state from one run of the graph to the next (a
   * decoder's key/value cache): they are stored in the type the computation that reads or writes
   * them runs in, not their declared one, so reduced precision neither casts nor copies them.
   */
  readonly carried = new Set<string>();

  constructor(
    readonly name: string,
    /** Symbol bounds from input types (`T <= 3520`). */
    readonly bounds: Map<string, number> = new Map(),
  ) {}

  addInput(name: string, type: TensorType, span?: Span): Value {
    const v = new Value(this.nextId++, type, span ? { kind: "input", name, span } : { kind: "input", name });
    this.inputs.push(v);
    return v;
  }

  /** The graph-local value of a parameter (created on first use). */
  paramValue(p: Param): Value {
    let v = this.paramValues.get(p);
    if (!v) {
      v = new Value(this.nextId++, p.type, { kind: "param", param: p });
      this.paramValues.set(p, v);
    }
    return v;
  }

  /** Whether `v` is an output of this graph (O(outputs)). */
  isOutput(v: Value): boolean {
    return this.outputs.some((o) => o.value === v);
  }

  /** Parameters used by at least one node or output, in first-use order of creation. */
  usedParams(): Param[] {
    return [...this.paramValues].filter(([, v]) => v.uses.length > 0 || this.isOutput(v)).map(([p]) => p);
  }

  addNode(
    op: string,
    inputs: (Value | undefined)[],
    outputTypes: TensorType[],
    attrs: Record<string, AttrValue>,
    scope: string,
    span: Span,
  ): Node {
    const outputs: Value[] = [];
    const node = new Node(this.nextId++, op, attrs, inputs, outputs, scope, span);
    outputTypes.forEach((t, index) => outputs.push(new Value(this.nextId++, t, { kind: "node", node, index })));
    inputs.forEach((v, index) => v?.uses.push({ node, index }));
    this.nodes.push(node);
    return node;
  }

  setOutput(name: string, value: Value): void {
    this.outputs.push({ name, value });
  }

  /** Points every use of `from` (and any graph output) at `to`. */
  replaceAllUses(from: Value, to: Value): void {
    if (from === to) return;
    for (const u of from.uses) {
      u.node.inputs[u.index] = to;
      to.uses.push(u);
    }
    from.uses.length = 0;
    for (const o of this.outputs) if (o.value === from) o.value = to;
  }

  /** Replaces one input of a node, keeping both use lists right. */
  setInput(node: Node, index: number, value: Value | undefined): void {
    const old = node.inputs[index];
    if (old) {
      const at = old.uses.findIndex((u) => u.node === node && u.index === index);
      if (at >= 0) old.uses.splice(at, 1);
    }
    node.inputs[index] = value;
    value?.uses.push({ node, index });
  }

  /** Removes a node whose outputs are unused. */
  removeNode(node: Node): void {
    if (node.outputs.some((o) => o.uses.length > 0 || this.outputs.some((g) => g.value === o))) {
      throw new Error(`internal: removing node ${node.op}#${node.id} whose outputs are still used`);
    }
    node.inputs.forEach((_, i) => this.setInput(node, i, undefined));
    const at = this.nodes.indexOf(node);
    if (at >= 0) this.nodes.splice(at, 1);
  }

  /** Removes a set of nodes whose outputs are used only inside the set, in one sweep over the node list. */
  removeNodes(dead: ReadonlySet<Node>): void {
    for (const node of dead) {
      if (node.outputs.some((o) => o.uses.some((u) => !dead.has(u.node)) || this.outputs.some((g) => g.value === o))) {
        throw new Error(`internal: removing node ${node.op}#${node.id} whose outputs are still used`);
      }
    }
    for (const node of dead) node.inputs.forEach((_, i) => this.setInput(node, i, undefined));
    let at = 0;
    for (const n of this.nodes) if (!dead.has(n)) this.nodes[at++] = n;
    this.nodes.length = at;
  }

  /** Inserts a new node right before `before` (keeps topological order for rewrites). */
  insertBefore(
    before: Node,
    op: string,
    inputs: (Value | undefined)[],
    outputTypes: TensorType[],
    attrs: Record<string, AttrValue>,
    scope: string,
    span: Span,
  ): Node {
    const node = this.addNode(op, inputs, outputTypes, attrs, scope, span);
    this.nodes.pop();
    this.nodes.splice(this.nodes.indexOf(before), 0, node);
    return node;
  }
}

export interface ComponentInfo {
  readonly name: string;
  readonly role: Role | undefined;
  readonly frozen: boolean;
  readonly block: string;
  readonly span: Span;
  /** The block's compile-time arguments after defaults (numbers, flags, words), e.g. llama's `heads`: checked against checkpoint configs, read by the package writer. */
  readonly config?: Readonly<Record<string, number | boolean | string>>;
}

/** One entry of a `package { … }` declaration: a name (graph, component, parameter, word), an integer or pinpoints. */
export interface PackageEntry {
  readonly value: string | number | readonly (readonly [number, number])[];
  readonly span: Span;
}

/** A model's `package { … }` declaration, evaluated: which graphs and components form the package. */
export interface PackagePlan {
  readonly span: Span;
  readonly entries: ReadonlyMap<string, PackageEntry>;
}

export interface StagePlan {
  readonly name: string;
  readonly trains: readonly string[];
}

export interface PolicyRule {
  readonly selector: string;
  readonly quantize?: "none" | "int8" | "int4";
  readonly precision?: "fp32" | "fp16" | "bf16";
}

/** A rule of a checkpoint key map: rename the key prefix `from` to `to` (null: not weights), or tie. */
export type KeyRule =
  | { readonly kind: "rename"; readonly from: string; readonly to: string | null }
  | { readonly kind: "tie"; readonly param: string; readonly source: string };

/** A model's `weights` declaration: where a checkpoint is and how its keys map to parameter names. */
export interface WeightsDeclaration {
  /** The component it loads; undefined for the whole model. */
  readonly target: string | undefined;
  /** Undefined for a layout declaration: the path comes from `--weights`. */
  readonly path: string | undefined;
  /** `prefix "P"` is the rule `"P": ""`; no rules at all means every key as it is. */
  readonly rules: readonly KeyRule[];
  readonly span: Span | undefined;
}

/** A model after elaboration: its parameters, components, entry-point graphs and plans. */
export interface IrModule {
  readonly name: string;
  readonly params: readonly Param[];
  readonly components: readonly ComponentInfo[];
  readonly graphs: readonly Graph[];
  readonly stages: readonly StagePlan[];
  readonly policies: readonly PolicyRule[];
  /** The model's generation package, when it declares one. */
  readonly package?: PackagePlan;
  readonly weights: readonly WeightsDeclaration[];
}

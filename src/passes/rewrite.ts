// The rewrite-rule engine. A rule is data: a name, a pattern (an op tree written with `op` and
// `v` below, the way the builder would write the expression; `where` adds conditions on a node's
// attributes that make it simply not match), a check that may refuse a match with a reason, and
// a rewrite that builds the replacement. The driver walks a graph in order, tries the rules whose
// root op matches, rewires uses, drops what became dead, stamps the rule's name on every node it
// creates, records fires and near misses (matches the check refused), and repeats until nothing
// fires or the iteration cap is reached.

import { InternalError } from "../diagnostics/diagnostic.js";
import type { AttrValue, Graph, Node, Value } from "../ir/graph.js";
import { shapesEqual, typeToString, type TensorType } from "../ir/types.js";
import { deadFrom } from "../ir/analysis.js";
import type { NearMiss, PassContext } from "./pass.js";

/** Matches any value; binds it to `bind` when given. */
export interface ValuePattern {
  readonly kind: "value";
  readonly bind: string | undefined;
}

export interface OpSpec {
  readonly ops: readonly string[];
  readonly inputs: readonly Pattern[];
  readonly bind?: string;
  /** Two inputs that may match in either order (Add, Mul). */
  readonly commutative?: boolean;
  /** Conditions on the node itself (attributes, types); a node failing them is simply no match. */
  readonly where?: (n: Node) => boolean;
}

/** Matches a node with one of `ops` whose first inputs match `inputs` (a value's producer, output 0). */
export class OpPattern {
  readonly kind = "op";
  constructor(readonly spec: OpSpec) {}

  /** Binds the matched node to `name`. */
  as(name: string): OpPattern {
    return new OpPattern({ ...this.spec, bind: name });
  }

  commutative(): OpPattern {
    if (this.spec.inputs.length !== 2)
      throw new InternalError(`a commutative pattern needs two inputs, not ${this.spec.inputs.length}`);
    return new OpPattern({ ...this.spec, commutative: true });
  }

  where(test: (n: Node) => boolean): OpPattern {
    const before = this.spec.where;
    return new OpPattern({ ...this.spec, where: before ? (n) => before(n) && test(n) : test });
  }
}

export type Pattern = ValuePattern | OpPattern;

export function op(ops: string | readonly string[], ...inputs: Pattern[]): OpPattern {
  return new OpPattern({ ops: typeof ops === "string" ? [ops] : ops, inputs });
}

export function v(bind?: string): ValuePattern {
  return { kind: "value", bind };
}

/** What a pattern matched: the root node and the named nodes and values. */
export class Match {
  constructor(
    readonly graph: Graph,
    readonly root: Node,
    private readonly nodes: ReadonlyMap<string, Node>,
    private readonly values: ReadonlyMap<string, Value>,
  ) {}

  node(name: string): Node {
    const n = this.nodes.get(name);
    if (!n) throw new InternalError(`pattern binds no node "${name}"`);
    return n;
  }

  value(name: string): Value {
    const v = this.values.get(name);
    if (!v) throw new InternalError(`pattern binds no value "${name}"`);
    return v;
  }
}

export interface RewriteRule {
  /** kebab-case; stamped on the nodes the rule creates. */
  readonly name: string;
  readonly pattern: OpPattern;
  /** Why this match must stay as it is, or undefined to rewrite it. */
  readonly check?: (m: Match) => string | undefined;
  /** The replacements for the root's outputs, in order: existing values or ones built with `b`. */
  readonly rewrite: (m: Match, b: Rewriter) => Value | readonly Value[];
}

/** Builds replacement nodes right before the matched root, carrying provenance. */
export class Rewriter {
  constructor(
    readonly graph: Graph,
    private readonly root: Node,
    private readonly rule: string,
  ) {}

  /**
   * Adds a node with one output. It takes the scope and span of `like` (default: the root), so
   * the ONNX node still points at the DSL line that asked for the computation, and the rules
   * that made `like` plus this one.
   */
  add(
    op: string,
    inputs: (Value | undefined)[],
    type: TensorType,
    attrs: Record<string, AttrValue> = {},
    like: Node = this.root,
  ): Value {
    const node = this.graph.insertBefore(this.root, op, inputs, [type], attrs, like.scope, like.span);
    node.rules.push(...new Set([...like.rules, this.rule]));
    return node.outputs[0]!;
  }
}

interface Bindings {
  readonly nodes: ReadonlyMap<string, Node>;
  readonly values: ReadonlyMap<string, Value>;
}

function bindNode(b: Bindings, name: string | undefined, n: Node): Bindings | undefined {
  if (name === undefined) return b;
  const had = b.nodes.get(name);
  if (had) return had === n ? b : undefined;
  return { nodes: new Map(b.nodes).set(name, n), values: b.values };
}

function bindValue(b: Bindings, name: string | undefined, val: Value): Bindings | undefined {
  if (name === undefined) return b;
  const had = b.values.get(name);
  if (had) return had === val ? b : undefined;
  return { nodes: b.nodes, values: new Map(b.values).set(name, val) };
}

function matchOp({ spec: p }: OpPattern, n: Node, b: Bindings): Bindings | undefined {
  if (!p.ops.includes(n.op) || n.inputs.length < p.inputs.length || (p.where && !p.where(n))) return undefined;
  const orders = p.commutative
    ? [
        [0, 1],
        [1, 0],
      ]
    : [p.inputs.map((_, i) => i)];
  for (const order of orders) {
    let cur = bindNode(b, p.bind, n);
    for (let i = 0; i < p.inputs.length && cur; i++) cur = matchValue(p.inputs[i]!, n.inputs[order[i]!], cur);
    if (cur) return cur;
  }
  return undefined;
}

function matchValue(p: Pattern, val: Value | undefined, b: Bindings): Bindings | undefined {
  if (!val) return undefined;
  if (p.kind === "value") return bindValue(b, p.bind, val);
  const s = val.source;
  return s.kind === "node" && s.index === 0 ? matchOp(p, s.node, b) : undefined;
}

export function match(pattern: OpPattern, root: Node, graph: Graph): Match | undefined {
  const b = matchOp(pattern, root, { nodes: new Map(), values: new Map() });
  return b && new Match(graph, root, b.nodes, b.values);
}

function replaceRoot(g: Graph, rule: RewriteRule, m: Match): Set<Node> {
  const root = m.root;
  const built = rule.rewrite(m, new Rewriter(g, root, rule.name));
  const replacements: readonly Value[] = Array.isArray(built) ? built : [built as Value];
  if (replacements.length !== root.outputs.length)
    throw new InternalError(
      `rule ${rule.name} gave ${replacements.length} values for ${root.outputs.length} outputs of ${root.op}`,
    );
  root.outputs.forEach((out, i) => {
    const r = replacements[i]!;
    if (root.outputs.includes(r))
      throw new InternalError(`rule ${rule.name} replaced ${root.op}#${root.id} with itself`);
    if (r.type.dtype !== out.type.dtype || !shapesEqual(r.type.shape, out.type.shape)) {
      throw new InternalError(`rule ${rule.name} replaced ${typeToString(out.type)} with ${typeToString(r.type)}`);
    }
    g.replaceAllUses(out, r);
  });
  const dead = deadFrom(g, root);
  g.removeNodes(dead);
  return dead;
}

/**
 * Applies `rules` to `g` until none fires, at most `ctx.options.maxIterations` sweeps. Reports
 * each fire, the near misses still standing at the end, and hitting the cap. True if it changed `g`.
 */
export function applyRules(g: Graph, rules: readonly RewriteRule[], ctx: PassContext): boolean {
  const byOp = new Map<string, RewriteRule[]>();
  for (const r of rules) for (const o of r.pattern.spec.ops) byOp.set(o, [...(byOp.get(o) ?? []), r]);
  // Keyed by rule and node: a later sweep's reason replaces an earlier one, a fire clears it.
  const misses = new Map<string, NearMiss>();
  let changed = false;
  for (let sweep = 1; ; sweep++) {
    let fired = false;
    const removed = new Set<Node>();
    for (const node of [...g.nodes]) {
      if (removed.has(node)) continue;
      for (const rule of byOp.get(node.op) ?? []) {
        const m = match(rule.pattern, node, g);
        if (!m) continue;
        const key = `${rule.name}#${node.id}`;
        const reason = rule.check?.(m);
        if (reason !== undefined) {
          misses.set(key, { rule: rule.name, node, reason });
          continue;
        }
        misses.delete(key);
        for (const n of replaceRoot(g, rule, m)) removed.add(n);
        ctx.fired(rule.name);
        fired = true;
        break;
      }
    }
    if (!fired) break;
    changed = true;
    if (sweep >= ctx.options.maxIterations) {
      ctx.capped(`rewrite rules on graph ${g.name} still fired after ${sweep} sweeps`);
      break;
    }
  }
  const present = new Set(g.nodes);
  for (const miss of misses.values()) if (present.has(miss.node)) ctx.nearMiss(miss);
  return changed;
}

// constant-folding: evaluates in TypeScript what the compiler already knows, strips layout ops that
// do nothing, and moves batch broadcasts below input-independent work so precompute-constants can
// take that work out of the graph.

import { dimEq, isStatic, type Dim } from "../../ir/dims.js";
import type { Node, Value } from "../../ir/graph.js";
import type { CoreOp } from "../../ir/ops.js";
import { shapesEqual, tensorType, typeToString, type DType } from "../../ir/types.js";
import { Constness } from "../constness.js";
import { eachGraph, type Pass } from "../pass.js";
import { applyRules, op, v, type Match, type OpPattern, type Rewriter, type RewriteRule } from "../rewrite.js";

const UNARY_EVAL: Readonly<Record<string, (x: number) => number>> = {
  Neg: (x) => -x,
  Abs: Math.abs,
  Sqrt: Math.sqrt,
  Exp: Math.exp,
  Log: Math.log,
  Tanh: Math.tanh,
  Sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  Relu: (x) => Math.max(0, x),
  Cast: (x) => x, // the conversion is the rounding to the target dtype below
};

const BINARY_EVAL: Readonly<Record<string, (a: number, b: number) => number>> = {
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  Div: (a, b) => a / b,
  Pow: Math.pow,
};

/** Ops applied element by element to one tensor. */
const UNARY_OPS = [
  "Relu",
  "Gelu",
  "GeluTanh",
  "QuickGelu",
  "SquaredRelu",
  "Silu",
  "Tanh",
  "Sigmoid",
  "Exp",
  "Sqrt",
  "Log",
  "Abs",
  "Neg",
  "Not",
  "Cast",
];
/** Ops applied element by element to two broadcast tensors. */
const BINARY_OPS: CoreOp[] = [
  "Add",
  "Sub",
  "Mul",
  "Div",
  "Pow",
  "Mod",
  "Equal",
  "Less",
  "LessOrEqual",
  "Greater",
  "GreaterOrEqual",
  "And",
  "Or",
];
/** Ops that treat each row (the last axis) on its own. */
const ROW_OPS: CoreOp[] = ["LayerNorm", "RMSNorm", "Linear", "Softmax", "L2Normalize"];

/** A number as the IR's dtype holds it: integer division truncates, f32 rounds. */
function toDType(x: number, dtype: DType): number {
  if (dtype === "f32") return Math.fround(x);
  if (dtype === "bool") return x !== 0 ? 1 : 0;
  if (dtype === "f64" || dtype === "f16" || dtype === "bf16") return x; // codegen rounds f16/bf16 when it writes them
  return Math.trunc(x);
}

const scalarOf = (n: Node): number => n.attrs["value"] as number;
const isScalarConstant = (n: Node): boolean =>
  n.outputs[0]!.type.shape.length === 0 && typeof n.attrs["value"] === "number";
const scalarConstant = () => op("Constant").where(isScalarConstant);
const out = (n: Node): Value => n.outputs[0]!;
const sameType = (a: Value, b: Value): boolean =>
  a.type.dtype === b.type.dtype && shapesEqual(a.type.shape, b.type.shape);

function foldedScalar(m: Match): number {
  const root = m.root;
  const operands = root.inputs.map((i) => toDType(scalarOf(i!.producer!), i!.type.dtype));
  const raw =
    operands.length === 1 ? UNARY_EVAL[root.op]!(operands[0]!) : BINARY_EVAL[root.op]!(operands[0]!, operands[1]!);
  return toDType(raw, out(root).type.dtype);
}

function scalarRule(name: string, pattern: OpPattern): RewriteRule {
  return {
    name,
    pattern,
    check: (m) => (Number.isFinite(foldedScalar(m)) ? undefined : `the result is not a finite number`),
    rewrite: (m, b) =>
      b.add("Constant", [], out(m.root).type, { value: foldedScalar(m), dtype: out(m.root).type.dtype }),
  };
}

/** `op(x, k)` (and `op(k, x)` when commutative) is `x`. */
function neutralOperandRule(name: string, opName: string, k: number, commutative: boolean): RewriteRule {
  const pattern = op(
    opName,
    v("x"),
    scalarConstant().where((n) => scalarOf(n) === k),
  );
  return {
    name,
    pattern: commutative ? pattern.commutative() : pattern,
    check: (m) =>
      sameType(m.value("x"), out(m.root))
        ? undefined
        : `it broadcasts ${typeToString(m.value("x").type)} to ${typeToString(out(m.root).type)}`,
    rewrite: (m) => m.value("x"),
  };
}

/** A rule whose match is already a no-op: the root's input 0 replaces it. */
function identityRule(name: string, pattern: OpPattern): RewriteRule {
  return { name, pattern: pattern.where((n) => sameType(n.inputs[0]!, out(n))), rewrite: (m) => m.root.inputs[0]! };
}

const perm = (n: Node): readonly number[] => n.attrs["perm"] as readonly number[];
const isIdentityPerm = (p: readonly number[]): boolean => p.every((a, i) => a === i);

/** Output axes along which an Expand repeats its input: new leading axes and stretched size-1 axes. */
function broadcastAxes(e: Node): number[] {
  const from = e.inputs[0]!.type.shape;
  const to = out(e).type.shape;
  const lead = to.length - from.length;
  return to.map((_, i) => i).filter((i) => i < lead || !dimEq(from[i - lead]!, to[i]!));
}

/** Right-aligned broadcast of two static shapes. */
function broadcastShape(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const rank = Math.max(a.length, b.length);
  return Array.from({ length: rank }, (_, i) => {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    return da === 1 ? db : da;
  });
}

/** Broadcasts `x` to `like`'s type, as the DSL's expand would. */
function expandTo(b: Rewriter, x: Value, like: Value, from: Node): Value {
  return b.add("Expand", [x], like.type, { shape: like.type.shape.map((d) => (isStatic(d) ? d : -1)) }, from);
}

function foldingRules(k: Constness): RewriteRule[] {
  // A broadcast of a constant to a shape read at run time (the batch); one to a static shape is a
  // constant itself and precompute-constants takes it as it is.
  const constantExpand = (bind: string) =>
    op("Expand", v(bind)).where((e) => k.isConstant(e.inputs[0]!) && !k.isConstant(out(e)));
  /** The input-independent tensor behind `x`: the source of an Expand of a constant, else `x`. */
  const unexpanded = (x: Value | undefined): Value | undefined => {
    const p = x?.producer;
    return p?.op === "Expand" && k.isConstant(p.inputs[0]!) ? p.inputs[0]! : x;
  };
  const variableInput = (n: Node, from: number): string | undefined => {
    const at = n.inputs.findIndex((i, idx) => idx >= from && i !== undefined && !k.isConstant(unexpanded(i)!));
    return at < 0 ? undefined : `its input ${at} depends on a graph input or on a parameter this compile trains`;
  };

  return [
    scalarRule("fold-scalar-unary", op(Object.keys(UNARY_EVAL), scalarConstant())),
    scalarRule("fold-scalar-binary", op(Object.keys(BINARY_EVAL), scalarConstant(), scalarConstant())),
    identityRule(
      "identity-transpose",
      op("Transpose", v()).where((n) => isIdentityPerm(perm(n))),
    ),
    {
      name: "transpose-of-transpose",
      pattern: op("Transpose", op("Transpose", v("x")).as("inner")),
      rewrite: (m, b) => {
        const composed = perm(m.root).map((a) => perm(m.node("inner"))[a]!);
        return isIdentityPerm(composed)
          ? m.value("x")
          : b.add("Transpose", [m.value("x")], out(m.root).type, { perm: composed });
      },
    },
    identityRule("identity-reshape", op("Reshape", v())),
    {
      name: "reshape-of-reshape",
      pattern: op("Reshape", op("Reshape", v("x"))),
      rewrite: (m, b) =>
        sameType(m.value("x"), out(m.root))
          ? m.value("x")
          : b.add("Reshape", [m.value("x")], out(m.root).type, { ...m.root.attrs }),
    },
    identityRule("identity-cast", op("Cast", v())),
    neutralOperandRule("multiply-by-one", "Mul", 1, true),
    neutralOperandRule("divide-by-one", "Div", 1, false),
    neutralOperandRule("add-zero", "Add", 0, true),
    neutralOperandRule("subtract-zero", "Sub", 0, false),
    identityRule(
      "slice-everything",
      op("Slice", v()).where((n) => (n.attrs["steps"] as readonly number[]).every((s) => s === 1)),
    ),
    {
      name: "expand-through-unary",
      pattern: op(UNARY_OPS, constantExpand("c").as("e")),
      rewrite: (m, b) => {
        const c = m.value("c");
        const inner = b.add(m.root.op, [c], tensorType(out(m.root).type.dtype, c.type.shape), { ...m.root.attrs });
        return expandTo(b, inner, out(m.root), m.node("e"));
      },
    },
    {
      name: "expand-through-row-op",
      pattern: op(ROW_OPS, constantExpand("c").as("e")),
      check: (m) => {
        const rank = out(m.root).type.shape.length;
        const axis = m.root.attrs["axis"];
        if (axis !== undefined && axis !== rank - 1) return `it works along axis ${String(axis)}, not the last`;
        if (broadcastAxes(m.node("e")).includes(rank - 1)) return "the expand stretches the last axis";
        return variableInput(m.root, 1);
      },
      rewrite: (m, b) => {
        const c = m.value("c");
        const o = out(m.root).type;
        const shape = [...c.type.shape.slice(0, -1), o.shape[o.shape.length - 1]!];
        const attrs = "axis" in m.root.attrs ? { ...m.root.attrs, axis: c.type.shape.length - 1 } : { ...m.root.attrs };
        const inner = b.add(m.root.op, [c, ...m.root.inputs.slice(1)], tensorType(o.dtype, shape), attrs);
        return expandTo(b, inner, out(m.root), m.node("e"));
      },
    },
    {
      name: "expand-through-binary",
      pattern: op(BINARY_OPS, constantExpand("c").as("e"), v()).commutative(),
      check: (m) => variableInput(m.root, 0),
      rewrite: (m, b) => {
        const [x, y] = m.root.inputs.map((i) => unexpanded(i)!);
        const inner = b.add(
          m.root.op,
          [x, y],
          tensorType(out(m.root).type.dtype, broadcastShape(x!.type.shape, y!.type.shape)),
          { ...m.root.attrs },
        );
        return expandTo(b, inner, out(m.root), m.node("e"));
      },
    },
    {
      name: "expand-through-attention",
      pattern: op(
        "Attention",
        constantExpand("q").as("eq"),
        constantExpand("k").as("ek"),
        constantExpand("v").as("ev"),
      ),
      check: (m) => {
        if (m.root.inputs[3]) return "it has a mask";
        const batchOnly = ["eq", "ek", "ev"].every((e) => {
          const axes = broadcastAxes(m.node(e));
          return m.node(e).inputs[0]!.type.shape.length === 3 && axes.length === 1 && axes[0] === 0;
        });
        return batchOnly ? undefined : "an expand stretches more than the batch axis";
      },
      rewrite: (m, b) => {
        const q = m.value("q");
        const o = out(m.root).type;
        const inner = b.add(
          "Attention",
          [q, m.value("k"), m.value("v"), undefined],
          tensorType(o.dtype, [1, q.type.shape[1]!, o.shape[2]!]),
          { ...m.root.attrs },
        );
        return expandTo(b, inner, out(m.root), m.node("eq"));
      },
    },
  ];
}

/**
 * constant-folding. Rules, each stamped on what it creates:
 *  1. fold-scalar-unary:        Neg|Abs|Sqrt|Exp|Log|Tanh|Sigmoid|Relu|Cast(Constant) → Constant
 *  2. fold-scalar-binary:       Add|Sub|Mul|Div|Pow(Constant, Constant) → Constant
 *  3. identity-transpose:       Transpose{perm = identity}(x) → x
 *  4. transpose-of-transpose:   Transpose{p}(Transpose{q}(x)) → Transpose{q∘p}(x), or x when that is the identity
 *  5. identity-reshape:         Reshape(x) to x's own shape → x
 *  6. reshape-of-reshape:       Reshape(Reshape(x)) → Reshape(x)
 *  7. identity-cast:            Cast{to = dtype of x}(x) → x
 *  8. multiply-by-one:          Mul(x, 1), Mul(1, x) → x            (when the 1 does not broadcast x)
 *  9. divide-by-one:            Div(x, 1) → x
 * 10. add-zero:                 Add(x, 0), Add(0, x) → x
 * 11. subtract-zero:            Sub(x, 0) → x
 * 12. slice-everything:         Slice{steps = 1}(x) keeping x's shape → x
 * 13. expand-through-unary:     U(Expand(c)) → Expand(U(c))                                  (c input-independent)
 * 14. expand-through-row-op:    LayerNorm|RMSNorm|Linear|Softmax|L2Normalize(Expand(c), w…) → Expand(op(c, w…))
 *                               (the expand leaves the last axis alone; w input-independent)
 * 15. expand-through-binary:    B(Expand(c), d) → Expand(B(c, d'))  (d' = d, or its source when d is Expand(constant))
 * 16. expand-through-attention: Attention(Expand(q), Expand(k), Expand(v)) → Expand(Attention(q, k, v))
 *                               (batch broadcasts only, no mask)
 * Rules 13–16 exist for the learned queries of a Q-Former and the latents of a Perceiver: the DSL
 * broadcasts them to the batch first, which makes everything after depend on the batch size;
 * computed on the unbroadcast tensor the same work is input-independent and can be precomputed.
 */
export const constantFolding: Pass = {
  name: "constant-folding",
  description: "evaluate scalar constants, drop no-op layout ops, move batch broadcasts below input-independent work",
  run: (module, ctx) =>
    eachGraph(module, (g) => applyRules(g, foldingRules(Constness.of(module, ctx.options).prime(g)), ctx)),
};

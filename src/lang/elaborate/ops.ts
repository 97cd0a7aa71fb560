// The primitives implemented in TypeScript: shape/type inference and IR emission for each
// builtin function and module primitive listed in signatures.ts.

import { DiagnosticError, diagnostic, message } from "../../diagnostics/diagnostic.js";
import type { DiagnosticCode } from "../../diagnostics/catalog.js";
import type { Span } from "../../diagnostics/source.js";
import { dimAdd, dimDiv, dimEq, dimMul, dimToString, isStatic, type Dim, type Poly } from "../../ir/dims.js";
import type { AttrValue, Graph, Value } from "../../ir/graph.js";
import {
  isDType,
  isFloat,
  shapeToString,
  tensorType,
  typeToString,
  type DType,
  type TensorType,
} from "../../ir/types.js";
import { checkArgmaxAxis, checkRelativeBuckets, checkWindow } from "./shape-rules.js";
import { describeVal, INEXACT_DIVISIONS, int, type Val } from "./values.js";

export interface OpCtx {
  readonly graph: Graph | undefined;
  readonly scope: string;
  readonly span: Span;
}

export function fail(code: DiagnosticCode, message: string, span: Span): never {
  throw new DiagnosticError(diagnostic(code, message, span));
}

/** Fails with the catalog's message for `code`. */
export function failWith(code: DiagnosticCode, fields: Readonly<Record<string, string | number>>, span: Span): never {
  return fail(code, message(code, fields), span);
}

const got = (v: Val | undefined) => (v ? describeVal(v) : "nothing");

export function needGraph(ctx: OpCtx, what: string): Graph {
  if (!ctx.graph) failWith("VLM2315", { what }, ctx.span);
  return ctx.graph;
}

export function emit(
  ctx: OpCtx,
  op: string,
  inputs: (Value | undefined)[],
  out: TensorType[],
  attrs: Record<string, AttrValue> = {},
): Value[] {
  const g = needGraph(ctx, op);
  return g.addNode(op, inputs, out, attrs, ctx.scope, ctx.span).outputs;
}

export function emit1(
  ctx: OpCtx,
  op: string,
  inputs: (Value | undefined)[],
  out: TensorType,
  attrs: Record<string, AttrValue> = {},
): Value {
  return emit(ctx, op, inputs, [out], attrs)[0]!;
}

// ---- argument coercion ----

export function asTensor(v: Val | undefined, what: string, ctx: OpCtx): Value {
  if (v?.k === "tensor") return v.v;
  if (v?.k === "param") return needGraph(ctx, `parameter ${v.p.name}`).paramValue(v.p);
  if (v && ((v.k === "int" && isStatic(v.v)) || v.k === "float"))
    return constant(ctx, v.k === "int" ? (v.v as number) : v.v, "f32");
  if (v?.k === "int") return sizeValue(ctx, v.v as Poly, "i64");
  return failWith("VLM2316", { what, got: got(v) }, ctx.span);
}

export function asInt(v: Val | undefined, what: string, span: Span): number {
  if (v?.k === "int" && isStatic(v.v)) return v.v;
  if (v?.k === "int") failWith("VLM2317", { what, got: dimToString(v.v) }, span);
  const division = v && INEXACT_DIVISIONS.get(v);
  if (division)
    fail("VLM2104", `${what} must be an integer, but ${division.a} is not divisible by ${division.b}`, span);
  return asDim(v, what, span) as never;
}

export function asDim(v: Val | undefined, what: string, span: Span): Dim {
  if (v?.k === "int") return v.v;
  return failWith("VLM2313", { what, got: got(v) }, span);
}

export function asNumber(v: Val | undefined, what: string, span: Span): number {
  if (v?.k === "float") return v.v;
  if (v?.k === "int" && isStatic(v.v)) return v.v;
  return failWith("VLM2318", { what, got: got(v) }, span);
}

export function asBool(v: Val | undefined, what: string, span: Span): boolean {
  if (v?.k === "bool") return v.v;
  return failWith("VLM2319", { what, got: got(v) }, span);
}

function asIntList(v: Val | undefined, what: string, span: Span): number[] {
  if (v?.k === "int") return [asInt(v, what, span)];
  return asDimList(v, what, span).map((d) => asInt(int(d), what, span));
}

function asDimList(v: Val | undefined, what: string, span: Span): Dim[] {
  if (v?.k !== "list" && v?.k !== "tuple") return failWith("VLM2320", { what, got: got(v) }, span);
  return v.items.map((i) => asDim(i, what, span));
}

function axis(a: number, rank: number, span: Span, what = "axis"): number {
  const r = a < 0 ? a + rank : a;
  if (r < 0 || r >= rank) fail("VLM2105", `${what} ${a} is out of range for a tensor of rank ${rank}`, span);
  return r;
}

/**
 * A symbolic size as a rank-0 tensor, read from the graph inputs at run time, so sizes meet tensors
 * in arithmetic (`where(col < IMAGE_TOKENS + P, …)`). The polynomial travels as two attributes.
 */
function sizeValue(ctx: OpCtx, d: Poly, dtype: DType): Value {
  return emit1(ctx, "SizeValue", [], tensorType(dtype, []), {
    monomials: [...d.keys()],
    coefficients: [...d.values()],
    dtype,
  });
}

export function constant(ctx: OpCtx, value: number, dtype: DType): Value {
  return emit1(ctx, "Constant", [], tensorType(dtype, []), { value, dtype });
}

// ---- shapes ----

export function broadcast(a: TensorType, b: TensorType, ctx: OpCtx, op: string): Dim[] {
  const rank = Math.max(a.shape.length, b.shape.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a.shape[a.shape.length - rank + i] ?? 1;
    const db = b.shape[b.shape.length - rank + i] ?? 1;
    if (dimEq(da, db) || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else
      fail(
        "VLM2102",
        `${op}: shapes ${shapeToString(a.shape)} and ${shapeToString(b.shape)} do not broadcast (axis ${i}: ${dimToString(da)} vs ${dimToString(db)})`,
        ctx.span,
      );
  }
  return out;
}

function resultDType(a: TensorType, b: TensorType, ctx: OpCtx, op: string): DType {
  if (a.dtype === b.dtype) return a.dtype;
  // A constant scalar adapts to the other side.
  if (a.shape.length === 0 && isFloat(a.dtype) === isFloat(b.dtype)) return b.dtype;
  if (b.shape.length === 0 && isFloat(a.dtype) === isFloat(b.dtype)) return a.dtype;
  return fail(
    "VLM2106",
    `${op}: dtypes ${a.dtype} and ${b.dtype} differ (cast one with cast(x, ${a.dtype}))`,
    ctx.span,
  );
}

const BINARY_OPS: Record<string, string> = { "+": "Add", "-": "Sub", "*": "Mul", "/": "Div", "**": "Pow", "%": "Mod" };
const COMPARE_OPS: Record<string, string> = {
  "==": "Equal",
  "<": "Less",
  "<=": "LessOrEqual",
  ">": "Greater",
  ">=": "GreaterOrEqual",
  and: "And",
  or: "Or",
};

export function tensorBinary(op: string, a: Value, b: Value, ctx: OpCtx): Value {
  if (op === "@") return matmul(a, b, ctx);
  const shape = broadcast(a.type, b.type, ctx, op);
  if (op === "!=") return emit1(ctx, "Not", [tensorBinary("==", a, b, ctx)], tensorType("bool", shape));
  const cmp = COMPARE_OPS[op];
  if (cmp) {
    if (op !== "and" && op !== "or") {
      const aa = castScalarTo(a, b, ctx);
      const bb = castScalarTo(b, a, ctx);
      resultDType(aa.type, bb.type, ctx, op);
      return emit1(ctx, cmp, [aa, bb], tensorType("bool", shape));
    }
    return emit1(ctx, cmp, [a, b], tensorType("bool", shape));
  }
  const onnxOp = BINARY_OPS[op];
  if (!onnxOp) return failWith("VLM2310", { op, left: "tensors", right: "tensors" }, ctx.span);
  const aa = castScalarTo(a, b, ctx);
  const bb = castScalarTo(b, a, ctx);
  return emit1(ctx, onnxOp, [aa, bb], tensorType(resultDType(aa.type, bb.type, ctx, op), shape));
}

/** Scalar constants take the dtype of the tensor they meet, as Python scalars do in PyTorch. */
function castScalarTo(x: Value, other: Value, ctx: OpCtx): Value {
  const producer = x.producer;
  if (x.type.shape.length === 0 && producer?.op === "Constant" && x.type.dtype !== other.type.dtype) {
    return constant(ctx, producer.attrs["value"] as number, other.type.dtype);
  }
  if (producer?.op === "SizeValue" && x.type.dtype !== other.type.dtype) {
    const monomials = producer.attrs["monomials"] as readonly string[];
    const coefficients = producer.attrs["coefficients"] as readonly number[];
    return sizeValue(ctx, new Map(monomials.map((m, i) => [m, coefficients[i]!])), other.type.dtype);
  }
  return x;
}

export function matmul(a: Value, b: Value, ctx: OpCtx): Value {
  const sa = a.type.shape;
  const sb = b.type.shape;
  if (sa.length < 1 || sb.length < 1)
    fail("VLM2107", `matmul needs tensors of rank ≥ 1, got ${shapeToString(sa)} @ ${shapeToString(sb)}`, ctx.span);
  const ka = sa[sa.length - 1]!;
  const kb = sb.length === 1 ? sb[0]! : sb[sb.length - 2]!;
  if (!dimEq(ka, kb))
    fail(
      "VLM2101",
      `matmul inner dimensions differ: ${shapeToString(sa)} @ ${shapeToString(sb)} (${dimToString(ka)} ≠ ${dimToString(kb)})`,
      ctx.span,
    );
  const batchA = { dtype: a.type.dtype, shape: sa.slice(0, -2) };
  const batchB = { dtype: b.type.dtype, shape: sb.slice(0, -2) };
  const batch = broadcast(batchA, batchB, ctx, "matmul");
  const shape = [
    ...batch,
    ...(sa.length >= 2 ? [sa[sa.length - 2]!] : []),
    ...(sb.length >= 2 ? [sb[sb.length - 1]!] : []),
  ];
  return emit1(ctx, "MatMul", [a, b], tensorType(resultDType(a.type, b.type, ctx, "@"), shape));
}

// ---- builtin functions ----

/** Bound arguments by parameter name; `spans` says where each was written, for precise errors. */
export type Bound = Map<string, Val> & { rest?: Val[]; spans?: ReadonlyMap<string, Span> };

/** Where argument `key` was written (the call when it was left out). */
export const argSpan = (a: Bound, key: string, ctx: OpCtx): Span => a.spans?.get(key) ?? ctx.span;

type FnImpl = (a: Bound, ctx: OpCtx) => Val;

const ACTIVATIONS: Record<string, string> = {
  gelu: "Gelu",
  gelu_tanh: "GeluTanh",
  quick_gelu: "QuickGelu",
  relu: "Relu",
  squared_relu: "SquaredRelu",
  silu: "Silu",
  tanh: "Tanh",
  sigmoid: "Sigmoid",
  exp: "Exp",
  sqrt: "Sqrt",
  log: "Log",
  abs: "Abs",
  hardswish: "HardSwish",
  hardsigmoid: "HardSigmoid",
  relu6: "Relu6",
};

export function applyActivation(name: string, x: Value, ctx: OpCtx): Value {
  const op = ACTIVATIONS[name];
  if (!op) return failWith("VLM2321", { name }, ctx.span);
  if (!isFloat(x.type.dtype))
    fail("VLM2106", `${name} needs a floating-point tensor, got ${typeToString(x.type)}`, ctx.span);
  return emit1(ctx, op, [x], x.type);
}

function tensorList(a: Bound, ctx: OpCtx, what: string): Value[] {
  const rest = a.rest ?? [];
  const items =
    rest.length === 1 && (rest[0]!.k === "list" || rest[0]!.k === "tuple") ? (rest[0] as { items: Val[] }).items : rest;
  if (items.length === 0) fail("VLM2004", `${what} needs at least one tensor`, ctx.span);
  return items.map((v) => asTensor(v, `${what} operand`, ctx));
}

function concatTensors(xs: Value[], ax: number, ctx: OpCtx): Value {
  const first = xs[0]!;
  const rank = first.type.shape.length;
  const at = axis(ax, rank, ctx.span);
  let total: Dim = 0;
  for (const x of xs) {
    if (x.type.shape.length !== rank)
      fail(
        "VLM2107",
        `concat: ranks differ: ${shapeToString(first.type.shape)} and ${shapeToString(x.type.shape)}`,
        ctx.span,
      );
    if (x.type.dtype !== first.type.dtype)
      fail("VLM2106", `concat: dtypes differ: ${first.type.dtype} and ${x.type.dtype}`, ctx.span);
    x.type.shape.forEach((d, i) => {
      if (i !== at && !dimEq(d, first.type.shape[i]!))
        fail(
          "VLM2102",
          `concat along axis ${ax}: shapes ${shapeToString(first.type.shape)} and ${shapeToString(x.type.shape)} differ on axis ${i}`,
          ctx.span,
        );
    });
    total = dimAdd(total, x.type.shape[at]!);
  }
  if (xs.length === 1) return first;
  const shape = first.type.shape.map((d, i) => (i === at ? total : d));
  return emit1(ctx, "Concat", xs, tensorType(first.type.dtype, shape), { axis: at });
}

export function reshape(x: Value, target: Dim[], ctx: OpCtx): Value {
  const total = x.type.shape.reduce<Dim>((p, d) => dimMul(p, d), 1);
  const inferAt = target.indexOf(-1);
  if (target.filter((d) => d === -1).length > 1) fail("VLM2102", "reshape: at most one dimension may be -1", ctx.span);
  let dims = target;
  if (inferAt >= 0) {
    const known = target.reduce<Dim>((p, d, i) => (i === inferAt ? p : dimMul(p, d)), 1);
    const inferred = dimDiv(total, known);
    if (inferred === undefined)
      fail(
        "VLM2104",
        `reshape: ${shapeToString(x.type.shape)} (${dimToString(total)} elements) cannot be split into ${shapeToString(target)}`,
        ctx.span,
      );
    dims = target.map((d, i) => (i === inferAt ? inferred : d));
  }
  const product = dims.reduce<Dim>((p, d) => dimMul(p, d), 1);
  if (!dimEq(product, total))
    fail(
      "VLM2102",
      `reshape: ${shapeToString(x.type.shape)} has ${dimToString(total)} elements, ${shapeToString(dims)} has ${dimToString(product)}`,
      ctx.span,
    );
  return emit1(ctx, "Reshape", [x], tensorType(x.type.dtype, dims), { shape: dims.map((d) => (isStatic(d) ? d : -1)) });
}

export function transpose(x: Value, perm: number[], ctx: OpCtx): Value {
  const rank = x.type.shape.length;
  const sorted = [...perm].map((p) => (p < 0 ? p + rank : p)).sort((a, b) => a - b);
  if (perm.length !== rank || sorted.some((p, i) => p !== i))
    fail(
      "VLM2107",
      `transpose: [${perm.join(", ")}] is not a permutation of the ${rank} axes of ${shapeToString(x.type.shape)}`,
      ctx.span,
    );
  const p = perm.map((q) => (q < 0 ? q + rank : q));
  return emit1(
    ctx,
    "Transpose",
    [x],
    tensorType(
      x.type.dtype,
      p.map((i) => x.type.shape[i]!),
    ),
    { perm: p },
  );
}

function reduce(op: string, a: Bound, ctx: OpCtx): Val {
  const x = asTensor(a.get("x"), "x", ctx);
  const rank = x.type.shape.length;
  const ax = a.get("axis");
  const axes =
    ax === undefined || ax.k === "none"
      ? x.type.shape.map((_, i) => i)
      : asIntList(ax, "axis", ctx.span).map((i) => axis(i, rank, ctx.span));
  const keep = a.has("keepdim") ? asBool(a.get("keepdim"), "keepdim", argSpan(a, "keepdim", ctx)) : false;
  const shape = keep
    ? x.type.shape.map((d, i) => (axes.includes(i) ? 1 : d))
    : x.type.shape.filter((_, i) => !axes.includes(i));
  return {
    k: "tensor",
    v: emit1(ctx, op, [x], tensorType(x.type.dtype, shape), {
      axes: [...axes].sort((p, q) => p - q),
      keepdims: keep ? 1 : 0,
    }),
  };
}

function pool(op: string, a: Bound, ctx: OpCtx): Val {
  const x = asTensor(a.get("x"), "x", ctx);
  if (x.type.shape.length !== 4)
    fail("VLM2107", `${op} needs an NCHW tensor of rank 4, got ${shapeToString(x.type.shape)}`, ctx.span);
  const k = asInt(a.get("kernel"), "kernel", argSpan(a, "kernel", ctx));
  const s =
    a.has("stride") && a.get("stride")!.k !== "none" ? asInt(a.get("stride"), "stride", argSpan(a, "stride", ctx)) : k;
  const p = a.has("padding") ? asInt(a.get("padding"), "padding", argSpan(a, "padding", ctx)) : 0;
  checkWindow(op, x.type.shape.slice(2).filter(isStatic), k, s, p, true, ctx.span);
  const out = x.type.shape.map((d, i) => {
    if (i < 2) return d;
    const n = asInt(int(d), "spatial size", ctx.span);
    return Math.floor((n + 2 * p - k) / s) + 1;
  });
  return { k: "tensor", v: emit1(ctx, op, [x], tensorType(x.type.dtype, out), { kernel: k, stride: s, padding: p }) };
}

export const FUNCTIONS: Record<string, FnImpl> = {
  ...Object.fromEntries(
    Object.keys(ACTIVATIONS).map((name) => [
      name,
      (a: Bound, ctx: OpCtx): Val => ({ k: "tensor", v: applyActivation(name, asTensor(a.get("x"), "x", ctx), ctx) }),
    ]),
  ),
  matmul: (a, ctx) => ({ k: "tensor", v: matmul(asTensor(a.get("a"), "a", ctx), asTensor(a.get("b"), "b", ctx), ctx) }),
  softmax: (a, ctx) => {
    const x = asTensor(a.get("x"), "x", ctx);
    const ax = axis(
      a.has("axis") ? asInt(a.get("axis"), "axis", argSpan(a, "axis", ctx)) : -1,
      x.type.shape.length,
      ctx.span,
    );
    return { k: "tensor", v: emit1(ctx, "Softmax", [x], x.type, { axis: ax }) };
  },
  concat: (a, ctx) => {
    const xs = tensorList(a, ctx, "concat");
    return {
      k: "tensor",
      v: concatTensors(xs, a.has("axis") ? asInt(a.get("axis"), "axis", argSpan(a, "axis", ctx)) : 0, ctx),
    };
  },
  stack: (a, ctx) => {
    const xs = tensorList(a, ctx, "stack");
    const ax = a.has("axis") ? asInt(a.get("axis"), "axis", argSpan(a, "axis", ctx)) : 0;
    const rank = xs[0]!.type.shape.length + 1;
    const at = axis(ax, rank, ctx.span);
    const expanded = xs.map((x) =>
      emit1(
        ctx,
        "Unsqueeze",
        [x],
        tensorType(x.type.dtype, [...x.type.shape.slice(0, at), 1, ...x.type.shape.slice(at)]),
        { axes: [at] },
      ),
    );
    return { k: "tensor", v: concatTensors(expanded, at, ctx) };
  },
  reshape: (a, ctx) => ({
    k: "tensor",
    v: reshape(asTensor(a.get("x"), "x", ctx), asDimList(a.get("shape"), "shape", argSpan(a, "shape", ctx)), ctx),
  }),
  transpose: (a, ctx) => ({
    k: "tensor",
    v: transpose(asTensor(a.get("x"), "x", ctx), asIntList(a.get("perm"), "perm", argSpan(a, "perm", ctx)), ctx),
  }),
  flatten: (a, ctx) => {
    const x = asTensor(a.get("x"), "x", ctx);
    const start = axis(
      a.has("start") ? asInt(a.get("start"), "start", argSpan(a, "start", ctx)) : 1,
      x.type.shape.length,
      ctx.span,
    );
    const rest = x.type.shape.slice(start).reduce<Dim>((p, d) => dimMul(p, d), 1);
    return { k: "tensor", v: reshape(x, [...x.type.shape.slice(0, start), rest], ctx) };
  },
  unsqueeze: (a, ctx) => {
    const x = asTensor(a.get("x"), "x", ctx);
    const at = axis(asInt(a.get("axis"), "axis", argSpan(a, "axis", ctx)), x.type.shape.length + 1, ctx.span);
    return {
      k: "tensor",
      v: emit1(
        ctx,
        "Unsqueeze",
        [x],
        tensorType(x.type.dtype, [...x.type.shape.slice(0, at), 1, ...x.type.shape.slice(at)]),
        { axes: [at] },
      ),
    };
  },
  expand: (a, ctx) => {
    const x = asTensor(a.get("x"), "x", ctx);
    const shape = asDimList(a.get("shape"), "shape", argSpan(a, "shape", ctx));
    const out = broadcast(x.type, { dtype: x.type.dtype, shape }, ctx, "expand");
    return {
      k: "tensor",
      v: emit1(ctx, "Expand", [x], tensorType(x.type.dtype, out), { shape: out.map((d) => (isStatic(d) ? d : -1)) }),
    };
  },
  mean: (a, ctx) => reduce("ReduceMean", a, ctx),
  sum: (a, ctx) => reduce("ReduceSum", a, ctx),
  reduce_max: (a, ctx) => reduce("ReduceMax", a, ctx),
  argmax: (a, ctx) => {
    const x = asTensor(a.get("x"), "x", ctx);
    const at = axis(asInt(a.get("axis"), "axis", argSpan(a, "axis", ctx)), x.type.shape.length, ctx.span);
    checkArgmaxAxis(x, at, ctx.span);
    const keep = a.has("keepdim") ? asBool(a.get("keepdim"), "keepdim", argSpan(a, "keepdim", ctx)) : false;
    const shape = keep ? x.type.shape.map((d, i) => (i === at ? 1 : d)) : x.type.shape.filter((_, i) => i !== at);
    return {
      k: "tensor",
      v: emit1(ctx, "ArgMax", [x], tensorType("i64", shape), { axis: at, keepdims: keep ? 1 : 0 }),
    };
  },
  clamp: (a, ctx) => {
    const x = asTensor(a.get("x"), "x", ctx);
    if (!isFloat(x.type.dtype))
      fail("VLM2106", `clamp needs a floating-point tensor, got ${typeToString(x.type)}`, ctx.span);
    const bound = (key: string) => {
      const v = a.get(key);
      return v === undefined || v.k === "none" ? undefined : asNumber(v, key, ctx.span);
    };
    const [lo, hi] = [bound("min"), bound("max")];
    if (lo === undefined && hi === undefined) fail("VLM2004", "clamp needs min:, max: or both", ctx.span);
    if (lo !== undefined && hi !== undefined && lo > hi) failWith("VLM2326", { lo, hi }, ctx.span);
    return {
      k: "tensor",
      v: emit1(ctx, "Clip", [x], x.type, {
        ...(lo !== undefined ? { min: lo } : {}),
        ...(hi !== undefined ? { max: hi } : {}),
      }),
    };
  },
  adaptive_avg_pool2d: (a, ctx) => {
    const x = asTensor(a.get("x"), "x", ctx);
    if (x.type.shape.length !== 4)
      fail(
        "VLM2107",
        `adaptive_avg_pool2d needs an NCHW tensor of rank 4, got ${shapeToString(x.type.shape)}`,
        ctx.span,
      );
    const size = asIntList(a.get("size"), "size", argSpan(a, "size", ctx));
    if (size.length < 1 || size.length > 2)
      failWith("VLM2320", { what: "size", got: `${size.length} integers` }, ctx.span);
    const [oh, ow] = [size[0]!, size[1] ?? size[0]!];
    const [h, w] = x.type.shape.slice(2);
    if (!isStatic(h!) || !isStatic(w!))
      failWith(
        "VLM2324",
        { op: "adaptive_avg_pool2d", what: "spatial sizes", shape: shapeToString(x.type.shape) },
        ctx.span,
      );
    if (oh < 1 || ow < 1 || oh > h || ow > w)
      failWith("VLM2327", { size: `${oh}×${ow}`, input: `${h}×${w}` }, ctx.span);
    return {
      k: "tensor",
      v: emit1(ctx, "AdaptiveAvgPool", [x], tensorType(x.type.dtype, [x.type.shape[0]!, x.type.shape[1]!, oh, ow]), {
        out_h: oh,
        out_w: ow,
      }),
    };
  },
  max_pool2d: (a, ctx) => pool("MaxPool", a, ctx),
  avg_pool2d: (a, ctx) => pool("AveragePool", a, ctx),
  l2_normalize: (a, ctx) => {
    const x = asTensor(a.get("x"), "x", ctx);
    const ax = axis(
      a.has("axis") ? asInt(a.get("axis"), "axis", argSpan(a, "axis", ctx)) : -1,
      x.type.shape.length,
      ctx.span,
    );
    return { k: "tensor", v: emit1(ctx, "L2Normalize", [x], x.type, { axis: ax }) };
  },
  where: (a, ctx) => {
    const c = asTensor(a.get("cond"), "cond", ctx);
    if (c.type.dtype !== "bool") fail("VLM2106", `where: the condition must be bool, got ${c.type.dtype}`, ctx.span);
    const x = asTensor(a.get("a"), "a", ctx);
    const y = castScalarTo(asTensor(a.get("b"), "b", ctx), x, ctx);
    const xy = broadcast(x.type, y.type, ctx, "where");
    const shape = broadcast(c.type, { dtype: x.type.dtype, shape: xy }, ctx, "where");
    return {
      k: "tensor",
      v: emit1(ctx, "Where", [c, x, y], tensorType(resultDType(x.type, y.type, ctx, "where"), shape)),
    };
  },
  cumsum: (a, ctx) => {
    const x = asTensor(a.get("x"), "x", ctx);
    const ax = axis(
      a.has("axis") ? asInt(a.get("axis"), "axis", argSpan(a, "axis", ctx)) : -1,
      x.type.shape.length,
      ctx.span,
    );
    const dtype = x.type.dtype === "bool" ? "i64" : x.type.dtype;
    const input = x.type.dtype === "bool" ? emit1(ctx, "Cast", [x], tensorType("i64", x.type.shape), { to: "i64" }) : x;
    return { k: "tensor", v: emit1(ctx, "CumSum", [input], tensorType(dtype, x.type.shape), { axis: ax }) };
  },
  arange: (a, ctx) => {
    const n = asDim(a.get("n"), "n", argSpan(a, "n", ctx));
    const d = a.get("dtype");
    const dtype = d?.k === "fn" && isDType(d.name) ? d.name : "i64";
    return { k: "tensor", v: emit1(ctx, "Range", [], tensorType(dtype, [n]), { n: isStatic(n) ? n : -1, dtype }) };
  },
  cast: (a, ctx) => {
    const x = asTensor(a.get("x"), "x", ctx);
    const d = a.get("dtype");
    if (d?.k !== "fn" || !isDType(d.name))
      return fail("VLM2011", `cast needs a dtype (f32, i64, bool…), got ${d ? describeVal(d) : "nothing"}`, ctx.span);
    return { k: "tensor", v: emit1(ctx, "Cast", [x], tensorType(d.name, x.type.shape), { to: d.name }) };
  },
  relative_position_bucket: (a, ctx) => {
    const q = asInt(a.get("q_len"), "q_len", argSpan(a, "q_len", ctx));
    const k = asInt(a.get("k_len"), "k_len", argSpan(a, "k_len", ctx));
    const buckets = asInt(a.get("buckets"), "buckets", argSpan(a, "buckets", ctx));
    const maxDistance = asInt(a.get("max_distance"), "max_distance", argSpan(a, "max_distance", ctx));
    const bidirectional = a.has("bidirectional")
      ? asBool(a.get("bidirectional"), "bidirectional", argSpan(a, "bidirectional", ctx))
      : true;
    checkRelativeBuckets(buckets, maxDistance, bidirectional, ctx.span);
    return {
      k: "tensor",
      v: emit1(ctx, "RelativePositionBucket", [], tensorType("i64", [q, k]), {
        q_len: q,
        k_len: k,
        buckets,
        max_distance: maxDistance,
        bidirectional,
      }),
    };
  },
  tokens: (a, ctx) => {
    const x = asTensor(a.get("x"), "x", ctx);
    if (x.type.shape.length < 2)
      fail("VLM2107", `tokens() needs a [batch, tokens, …] tensor, got ${shapeToString(x.type.shape)}`, ctx.span);
    return int(x.type.shape[1]!);
  },
  dim: (a, ctx) => {
    const x = asTensor(a.get("x"), "x", ctx);
    return int(
      x.type.shape[axis(asInt(a.get("axis"), "axis", argSpan(a, "axis", ctx)), x.type.shape.length, ctx.span)]!,
    );
  },
  len: (a, ctx) => {
    const x = a.get("x");
    if (x?.k === "stack") return int(x.items.length);
    if (x?.k === "list" || x?.k === "tuple") return int(x.items.length);
    return failWith("VLM2322", { got: got(x) }, ctx.span);
  },
  range: (a, ctx) => {
    const n = asInt(a.get("n"), "n", argSpan(a, "n", ctx));
    if (n > 100_000) fail("VLM2108", `range(${n}) is too long to unroll`, ctx.span);
    return { k: "list", items: Array.from({ length: Math.max(0, n) }, (_, i) => int(i)) };
  },
  // Python's math.isqrt: the largest r with r² ≤ n, for grid sides (`isqrt(576)` is 24).
  isqrt: (a, ctx) => {
    const n = asInt(a.get("n"), "n", argSpan(a, "n", ctx));
    if (n < 0) failWith("VLM2323", { op: "isqrt", what: "n", got: n }, ctx.span);
    let r = Math.floor(Math.sqrt(n));
    while (r * r > n) r--;
    while ((r + 1) * (r + 1) <= n) r++;
    return int(r);
  },
  min: (a, ctx) => extremum(a, ctx, Math.min),
  max: (a, ctx) => extremum(a, ctx, Math.max),
};

function extremum(a: Bound, ctx: OpCtx, pick: (...n: number[]) => number): Val {
  const items = a.rest ?? [];
  if (items.length === 0) fail("VLM2004", "min/max need at least one argument", ctx.span);
  const nums = items.map((v) => asNumber(v, "operand", ctx.span));
  const r = pick(...nums);
  return items.every((v) => v.k === "int") ? int(r) : { k: "float", v: r };
}

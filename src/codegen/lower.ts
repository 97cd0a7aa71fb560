// IR graph → ONNX model description for the `portable` target: standard ONNX opset 17 and IR
// version 8 only, so any runtime of the last years loads it. Each IR node becomes one or more ONNX
// nodes named `${scope}/${op}_${index}/${onnxOp}` and documented with the DSL location they come
// from. Graph inputs and outputs keep their DSL names, parameters their full dotted names.
//
// Linear weights are stored transposed, [in, out] instead of PyTorch's [out, in], under the
// parameter's own name (`vision.encoder.layers.0.mlp.fc1.weight`), so Linear is a plain MatMul;
// the metadata key `vlmc.transposed` lists them. A weight also used in its own layout elsewhere in
// the graph keeps that layout and is transposed at run time instead.
//
// ONNX Runtime targets add lowerings of their fused and quantized IR ops (`targetLowerings`), which
// may emit other domains' ops (com.microsoft, imported at version 1); every emitted op is checked
// against what the target implements (target-ops.ts).

import type { Span } from "../diagnostics/source.js";
import { InternalError } from "../diagnostics/diagnostic.js";
import { dimEq, dimToString, type Dim } from "../ir/dims.js";
import type { Graph, IrModule, Node, Param, Value } from "../ir/graph.js";
import { DTYPE_BYTES, isFloat, type DType, type TensorType } from "../ir/types.js";
import type { Target } from "../target/target.js";
import { coneOf } from "../ir/analysis.js";
import { PRECOMPUTED, STORED_CAST, type CoreOp } from "../ir/ops.js";
import { VERSION } from "../version.js";
import { encodeValues, fail, float, int, ints, OnnxEmitter, ONNX_TYPE_CODES, onnxDataType } from "./emitter.js";
import { lowerAttention } from "./lower-attention.js";
import { transposeBytes } from "../numerics/layout.js";
import type { Allocate } from "../numerics/scratch.js";
import type { OnnxAttribute, OnnxModel, OnnxValueInfo } from "../onnx/onnx-writer.js";
import { relativePositionBuckets } from "../numerics/tables.js";
import { BOUNDS_METADATA, GUARD_SCOPE } from "../onnx/manifest.js";
import { domainVersion, opKey } from "../target/target-ops.js";

export const PORTABLE_IR_VERSION = 8;

export interface LowerOptions {
  /**
   * A parameter's little-endian bytes in its IR layout and dtype; called lazily, once per write.
   * The result is only read before the next call but one (it may live in a ScratchRing), unless
   * `allocate` is given: then it is in memory from there.
   */
  readonly paramBytes: (p: Param, allocate?: Allocate) => Uint8Array;
  /** Memory for weights transposed at build time, with the lifetime of paramBytes' results (default: fresh). */
  readonly allocate?: Allocate;
  /** `file:line:col` of a span, for doc strings. */
  readonly location: (span: Span) => string;
  /** Model-level metadata added to every graph's model (source hash…). */
  readonly metadata: Readonly<Record<string, string>>;
  /** The bytes of a value the precompute pass hoisted (`Precomputed{name}`), evaluated at build time. */
  readonly precomputed?: (name: string) => Uint8Array;
  /** Lowerings of target-specific IR ops (fused and quantized ops), consulted before the portable ones. */
  readonly targetLowerings?: Readonly<Record<string, Lowering>>;
  /** What the model will run on: every emitted op must be one it implements. */
  readonly target: Target;
}

type Inputs = readonly (string | undefined)[];
export interface Context {
  readonly graph: Graph;
  /** Parameters stored transposed (Linear weights). */
  readonly transposed: ReadonlySet<string>;
  readonly options: LowerOptions;
}
/** Emits a node's ONNX form; returns the names of its results, one per IR output (a bare name for one). */
export type Lowering = (e: OnnxEmitter, node: Node, ins: Inputs, ctx: Context) => string | readonly string[];

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

const inType = (node: Node, i: number): TensorType => node.inputs[i]!.type;
const outType = (node: Node): TensorType => node.outputs[0]!.type;
const attr = (node: Node, key: string): number => node.attrs[key] as number;
const list = (node: Node, key: string): number[] => [...(node.attrs[key] as readonly number[])];

const direct =
  (op: string): Lowering =>
  (e, _node, ins) =>
    e.op(op, ins);

/** Operands cast to the result dtype first: the IR lets a rank-0 operand of another float width through. */
const arithmetic =
  (op: string): Lowering =>
  (e, node, ins) =>
    e.op(
      op,
      ins.map((x, i) => e.cast(x!, inType(node, i).dtype, outType(node).dtype)),
    );

/** Comparisons need equal operand dtypes; a rank-0 operand takes the other's. */
const comparison =
  (op: string): Lowering =>
  (e, node, ins) => {
    const [a, b] = [inType(node, 0), inType(node, 1)];
    const to = a.shape.length === 0 ? b.dtype : a.dtype;
    return e.op(op, [e.cast(ins[0]!, a.dtype, to), e.cast(ins[1]!, b.dtype, to)]);
  };

/** Whether a Linear weight is a parameter stored transposed, read directly or through its reduced-precision copy. */
function storedTransposed(w: Value, ctx: Context): boolean {
  const v = w.producer?.op === STORED_CAST ? w.producer.inputs[0]! : w;
  return v.source.kind === "param" && ctx.transposed.has(v.source.param.name);
}

/** A float constant in the dtype of the node's result. */
const c = (e: OnnxEmitter, node: Node, value: number) => e.scalar(value, outType(node).dtype);

/** Square kernel, stride and symmetric padding of Conv and the pools, as ONNX attributes. */
function window(node: Node): Record<string, OnnxAttribute> {
  const [k, s, p] = [attr(node, "kernel"), attr(node, "stride"), attr(node, "padding")];
  return { kernel_shape: ints([k, k]), strides: ints([s, s]), pads: ints([p, p, p, p]) };
}

const reduceWithAxesAttribute =
  (op: string): Lowering =>
  (e, node, ins) =>
    e.op(op, ins, { axes: ints(list(node, "axes")), keepdims: int(attr(node, "keepdims")) });

/** Exactly the core ops and Precomputed (the type makes the table cover ir/ops.ts's CORE_OPS). */
const LOWERINGS: Readonly<Record<CoreOp | typeof PRECOMPUTED, Lowering>> = {
  Constant: (e, node) => e.scalar(attr(node, "value"), node.attrs["dtype"] as DType),
  // A value computed once at build time (see src/passes/precomputed.ts): an initializer.
  [PRECOMPUTED]: (e, node, _ins, ctx) => {
    const name = String(node.attrs["name"]);
    const t = outType(node);
    const evaluate = ctx.options.precomputed;
    if (!evaluate)
      throw new InternalError(`graph ${ctx.graph.name} has precomputed value ${name} but nothing evaluated it`);
    return e.initializer(`${ctx.graph.name}.${name}`, onnxDataType(t.dtype, name), t.shape as number[], () =>
      evaluate(name),
    );
  },
  Linear: (e, node, [x, w, b], ctx) => {
    const stored = storedTransposed(node.inputs[1]!, ctx);
    const y = e.op("MatMul", [x, stored ? w : e.op("Transpose", [w], { perm: ints([1, 0]) })]);
    return b === undefined ? y : e.op("Add", [y, b]);
  },
  Conv: (e, node, ins) => e.op("Conv", ins, { ...window(node), group: int(attr(node, "groups")) }),
  Embedding: (e, _node, [weight, ids]) => e.op("Gather", [weight, ids], { axis: int(0) }),
  LayerNorm: (e, node, [x, w, b]) => {
    const t = inType(node, 1);
    const bias = b ?? e.constant(new Array<number>(t.shape[0] as number).fill(0), t.dtype, t.shape as number[]);
    return e.op("LayerNormalization", [x, w, bias], { axis: int(-1), epsilon: float(attr(node, "eps")) });
  },
  RMSNorm: (e, node, [x, w]) => {
    const meanSquare = e.op("ReduceMean", [e.op("Pow", [x, c(e, node, 2)])], { axes: ints([-1]), keepdims: int(1) });
    const rms = e.op("Sqrt", [e.op("Add", [meanSquare, c(e, node, attr(node, "eps"))])]);
    return e.op("Mul", [e.op("Div", [x, rms]), w]);
  },
  BatchNorm: (e, node, ins) => e.op("BatchNormalization", ins, { epsilon: float(attr(node, "eps")) }),
  Attention: (e, node, ins, ctx) => lowerAttention(e, node, ctx.graph.bounds, ins),

  // opset 17 has no Gelu: x·½·(1 + erf(x/√2)) and the tanh form, as PyTorch writes them.
  Gelu: (e, node, [x]) =>
    e.op("Mul", [
      e.op("Mul", [x, c(e, node, 0.5)]),
      e.op("Add", [e.op("Erf", [e.op("Mul", [x, c(e, node, Math.SQRT1_2)])]), c(e, node, 1)]),
    ]),
  GeluTanh: (e, node, [x]) => {
    const cube = e.op("Mul", [e.op("Mul", [x, x]), x]);
    const inner = e.op("Mul", [
      e.op("Add", [x, e.op("Mul", [cube, c(e, node, 0.044715)])]),
      c(e, node, SQRT_2_OVER_PI),
    ]);
    return e.op("Mul", [e.op("Mul", [x, c(e, node, 0.5)]), e.op("Add", [e.op("Tanh", [inner]), c(e, node, 1)])]);
  },
  QuickGelu: (e, node, [x]) => e.op("Mul", [x, e.op("Sigmoid", [e.op("Mul", [x, c(e, node, 1.702)])])]),
  Silu: (e, _node, [x]) => e.op("Mul", [x, e.op("Sigmoid", [x])]),
  SquaredRelu: (e, _node, [x]) => {
    const r = e.op("Relu", [x]);
    return e.op("Mul", [r, r]);
  },
  Relu: direct("Relu"),
  // PyTorch's hardsigmoid is relu6(x + 3) / 6: ONNX HardSigmoid with α = 1/6, β = 1/2 (HardSwish's own).
  HardSigmoid: (e, _node, [x]) => e.op("HardSigmoid", [x], { alpha: float(1 / 6), beta: float(0.5) }),
  HardSwish: direct("HardSwish"),
  Relu6: (e, node, [x]) => e.op("Clip", [x, c(e, node, 0), c(e, node, 6)]),
  Clip: (e, node, [x]) => {
    const bound = (key: string) => (node.attrs[key] === undefined ? undefined : c(e, node, attr(node, key)));
    return e.op("Clip", [x, bound("min"), bound("max")]);
  },
  // torch's adaptive_avg_pool2d as two averaging matrices, rows × x × columns: window i of n over
  // an axis of size s spans [⌊i·s/n⌋, ⌈(i+1)·s/n⌉), uneven windows included.
  AdaptiveAvgPool: (e, node, [x]) => {
    const [h, w] = inType(node, 0).shape.slice(2) as [number, number];
    const dtype = outType(node).dtype;
    const rows = averaging(attr(node, "out_h"), h);
    const columns = transposed(averaging(attr(node, "out_w"), w), attr(node, "out_w"), w);
    const left = e.constant(rows, dtype, [attr(node, "out_h"), h]);
    const right = e.constant(columns, dtype, [w, attr(node, "out_w")]);
    return e.op("MatMul", [e.op("MatMul", [left, x]), right]);
  },
  Tanh: direct("Tanh"),
  Sigmoid: direct("Sigmoid"),
  Exp: direct("Exp"),
  Sqrt: direct("Sqrt"),
  Log: direct("Log"),
  Abs: direct("Abs"),
  Neg: direct("Neg"),
  Not: direct("Not"),

  Add: arithmetic("Add"),
  Sub: arithmetic("Sub"),
  Mul: arithmetic("Mul"),
  Div: arithmetic("Div"),
  MatMul: arithmetic("MatMul"),
  // Pow's exponent may have its own type in ONNX.
  Pow: (e, node, [x, y]) => e.op("Pow", [e.cast(x!, inType(node, 0).dtype, outType(node).dtype), y]),
  Mod: (e, node, ins) => {
    const dtype = outType(node).dtype;
    const [a, b] = ins.map((x, i) => e.cast(x!, inType(node, i).dtype, dtype));
    if (!isFloat(dtype)) return e.op("Mod", [a, b]); // integers: the divisor's sign, as Python
    // Floats need fmod=1 (C's fmod, the dividend's sign); PyTorch's `%` takes the divisor's sign,
    // so a non-zero remainder whose sign differs from the divisor's gets the divisor added.
    const m = e.op("Mod", [a, b], { fmod: int(1) });
    const zero = c(e, node, 0);
    const signsDiffer = e.op("Xor", [e.op("Less", [m, zero]), e.op("Less", [b, zero])]);
    const fix = e.op("And", [signsDiffer, e.op("Not", [e.op("Equal", [m, zero])])]);
    return e.op("Where", [fix, e.op("Add", [m, b]), m]);
  },
  Equal: comparison("Equal"),
  Less: comparison("Less"),
  LessOrEqual: comparison("LessOrEqual"),
  Greater: comparison("Greater"),
  GreaterOrEqual: comparison("GreaterOrEqual"),
  And: direct("And"),
  Or: direct("Or"),
  Where: (e, node, [cond, a, b]) => {
    const dtype = outType(node).dtype;
    return e.op("Where", [cond, e.cast(a!, inType(node, 1).dtype, dtype), e.cast(b!, inType(node, 2).dtype, dtype)]);
  },

  Softmax: (e, node, ins) => e.op("Softmax", ins, { axis: int(attr(node, "axis")) }),
  Concat: (e, node, ins) => e.op("Concat", ins, { axis: int(attr(node, "axis")) }),
  Unsqueeze: (e, node, [x]) => e.op("Unsqueeze", [x, e.int64s(list(node, "axes"))]),
  Squeeze: (e, node, [x]) => e.op("Squeeze", [x, e.int64s(list(node, "axes"))]),
  // Ends beyond the axis (the IR's "to the end" is 2^53 − 1) are clamped by ONNX Slice.
  Slice: (e, node, [x]) =>
    e.op("Slice", [x, ...["starts", "ends", "axes", "steps"].map((k) => e.int64s(list(node, k)))]),
  Transpose: (e, node, ins) => e.op("Transpose", ins, { perm: ints(list(node, "perm")) }),
  Reshape: (e, node, [x]) => {
    const dims = outType(node).shape;
    // One symbolic dim is left to Reshape to infer (-1); more are computed from the graph inputs.
    const symbolic = dims.filter((d) => typeof d !== "number").length;
    return e.op("Reshape", [
      x,
      symbolic === 1 ? e.int64s(dims.map((d) => (typeof d === "number" ? d : -1))) : e.shape(dims),
    ]);
  },
  Expand: (e, node, [x]) => {
    const from = inType(node, 0).shape;
    const to = outType(node).shape;
    // Expand broadcasts both ways, so 1 keeps an axis the input already has at its full size.
    const target = to.map((d, i): Dim => {
      const have = from[i - (to.length - from.length)];
      return have !== undefined && dimEq(have, d) ? 1 : d;
    });
    return e.op("Expand", [x, e.shape(target)]);
  },
  // ReduceMean's and ReduceMax's axes are an attribute until opset 18, ReduceSum's an input since opset 13.
  ReduceMean: reduceWithAxesAttribute("ReduceMean"),
  ReduceMax: reduceWithAxesAttribute("ReduceMax"),
  // ArgMax picks the first maximum, as torch.argmax does for CLIP's end-of-text lookup.
  ArgMax: (e, node, ins) =>
    e.op("ArgMax", ins, {
      axis: int(attr(node, "axis")),
      keepdims: int(attr(node, "keepdims")),
      select_last_index: int(0),
    }),
  ReduceSum: (e, node, [x]) =>
    e.op("ReduceSum", [x, e.int64s(list(node, "axes"))], { keepdims: int(attr(node, "keepdims")) }),
  MaxPool: (e, node, ins) => e.op("MaxPool", ins, window(node)),
  // PyTorch's avg_pool2d counts padding in the divisor by default (count_include_pad=True).
  AveragePool: (e, node, ins) => e.op("AveragePool", ins, { ...window(node), count_include_pad: int(1) }),
  // x / max(‖x‖, 1e-12), as torch.nn.functional.normalize.
  L2Normalize: (e, node, [x]) => {
    const norm = e.op("ReduceL2", [x], { axes: ints([attr(node, "axis")]), keepdims: int(1) });
    return e.op("Div", [x, e.op("Max", [norm, c(e, node, 1e-12)])]);
  },
  CumSum: (e, node, [x]) => e.op("CumSum", [x, e.scalar(attr(node, "axis"), "i64")]),
  Range: (e, node) => {
    const dtype = node.attrs["dtype"] as DType;
    const n = outType(node).shape[0]!;
    if (typeof n === "number")
      return e.constant(
        Array.from({ length: n }, (_, i) => i),
        dtype,
        [n],
      );
    const range = e.op("Range", [e.scalar(0, "i64"), e.toScalar(e.dim(n)), e.scalar(1, "i64")]);
    return e.cast(range, "i64", dtype);
  },
  // A symbolic size as a scalar: its polynomial is read from the graph inputs' shapes.
  SizeValue: (e, node) => {
    const monomials = node.attrs["monomials"] as readonly string[];
    const coefficients = node.attrs["coefficients"] as readonly number[];
    const size = e.toScalar(e.dim(new Map(monomials.map((m, i) => [m, coefficients[i]!]))));
    return e.cast(size, "i64", outType(node).dtype);
  },
  Cast: (e, node, [x]) => e.op("Cast", [x], { to: int(ONNX_TYPE_CODES[node.attrs["to"] as DType]) }),
  // Computed here, as T5 does once per forward; every layer with the same sizes shares the table.
  RelativePositionBucket: (e, node) => {
    const [q, k, buckets, maxDistance] = ["q_len", "k_len", "buckets", "max_distance"].map((key) =>
      attr(node, key),
    ) as [number, number, number, number];
    const bidirectional = node.attrs["bidirectional"] === true;
    const name = `/relative_position_bucket/${q}x${k}/buckets_${buckets}/max_${maxDistance}/${bidirectional ? "bidirectional" : "causal"}`;
    return e.initializer(name, "int64", [q, k], () =>
      encodeValues(relativePositionBuckets(q, k, buckets, maxDistance, bidirectional), "int64"),
    );
  },
};

/**
 * Run-time guards for what only the inputs tell: each axis sized by a bounded symbol (`T <= 200`)
 * is checked by a Gather from a table of bound + 1 zeros at index size, which onnxruntime refuses
 * when the size passes the bound, naming the node: `/check/input ids axis 1: T must be at most
 * 200/Gather`. Nodes read the input through `x + guards` (`x or guards` for bool), exact since the
 * guards are 0, so that no runtime prunes a check. Returns each guarded input's new name.
 */
function guardInputs(e: OnnxEmitter, graph: Graph): Map<string, string> {
  const guarded = new Map<string, string>();
  for (const v of graph.inputs) {
    if (v.source.kind !== "input") continue;
    const name = v.source.name;
    const checks = v.type.shape.flatMap((d, axis) => {
      if (typeof d === "number" || d.size !== 1) return [];
      const [[symbol, coefficient]] = [...d];
      const bound = graph.bounds.get(symbol);
      return coefficient === 1 && !symbol.includes("*") && bound !== undefined ? [{ axis, symbol, bound }] : [];
    });
    if (checks.length === 0) continue;
    const zeros = checks.map(
      ({ axis, symbol, bound }) =>
        e.within(`${GUARD_SCOPE} ${name} axis ${axis}: ${symbol} must be at most ${bound}`, undefined, undefined, () =>
          e.op("Gather", [e.constant(new Array<number>(bound + 1).fill(0), "i64", [bound + 1]), e.sizeOf(name, axis)]),
        ).result,
    );
    const dtype = v.type.dtype;
    const read = e.within(`${GUARD_SCOPE} ${name}`, undefined, undefined, () => {
      const zero = zeros.reduce((a, b) => e.op("Add", [a, b]));
      return dtype === "bool"
        ? e.op("Or", [name, e.cast(zero, "i64", "bool")])
        : e.op("Add", [name, e.cast(zero, "i64", dtype)]);
    }).result;
    guarded.set(name, read);
  }
  return guarded;
}

/** Throws an InternalError naming every op in `model` that `target` does not implement. */
export function assertTargetOps(model: OnnxModel, target: Target): void {
  const missing = new Set(model.nodes.map((n) => opKey(n.domain ?? "", n.op)).filter((k) => !target.implements(k)));
  if (missing.size > 0)
    throw new InternalError(
      `graph ${model.graphName} uses ${[...missing].sort().join(", ")}, which target ${target.name} does not implement`,
    );
}

/** The [n, s] matrix averaging adaptive-pooling window i of an axis of size s into row i. */
function averaging(n: number, s: number): number[] {
  const m = new Array<number>(n * s).fill(0);
  for (let i = 0; i < n; i++) {
    const [start, end] = [Math.floor((i * s) / n), Math.ceil(((i + 1) * s) / n)];
    for (let j = start; j < end; j++) m[i * s + j] = 1 / (end - start);
  }
  return m;
}

function transposed(m: readonly number[], rows: number, cols: number): number[] {
  return Array.from({ length: rows * cols }, (_, k) => m[(k % rows) * cols + Math.floor(k / rows)]!);
}

function valueInfo(name: string, type: TensorType, what: string, span?: Span): OnnxValueInfo {
  return {
    name,
    dataType: onnxDataType(type.dtype, what, span),
    dims: type.shape.map((d) => (typeof d === "number" ? d : dimToString(d))),
  };
}

/** Lowers one graph of a module; user-facing limits of the target throw DiagnosticError. */
export function lowerGraph(module: IrModule, graph: Graph, options: LowerOptions): OnnxModel {
  const names = new Map<Value, string>();
  const nameOf = (v: Value): string => {
    if (v.source.kind === "param") return v.source.param.name;
    if (v.source.kind === "input") return v.source.name;
    const n = names.get(v);
    if (n === undefined) throw new InternalError(`value ${v.id} of graph ${graph.name} is used before it is computed`);
    return n;
  };
  // Nodes no graph output depends on (left over by elaboration) are not emitted.
  const live = coneOf(
    graph,
    graph.outputs.map((o) => o.value),
  ).nodes;
  const inputNames = new Set(graph.inputs.map((v) => (v.source as { name: string }).name));

  // Parameters in first-use order; Linear weights used only as such are stored transposed.
  const uses = new Map<Param, boolean>(); // param → every use is a Linear weight
  const noteParam = (v: Value, linearWeight: boolean) => {
    if (v.source.kind === "param") uses.set(v.source.param, (uses.get(v.source.param) ?? true) && linearWeight);
  };
  const isLinearWeight = (node: Node, i: number): boolean =>
    (node.op === "Linear" && i === 1) ||
    // A weight stored converted (reduced precision) is transposed before it is converted.
    (node.op === STORED_CAST &&
      !graph.isOutput(node.outputs[0]!) &&
      node.outputs[0]!.uses.every((u) => isLinearWeight(u.node, u.index)));
  for (const node of graph.nodes)
    if (live.has(node)) node.inputs.forEach((v, i) => v && noteParam(v, isLinearWeight(node, i)));
  for (const o of graph.outputs) noteParam(o.value, false);
  const paramNames = new Set([...uses.keys()].map((p) => p.name));

  for (const v of graph.inputs) {
    if (paramNames.has(nameOf(v)))
      fail(
        "VLM2002",
        `input "${nameOf(v)}" of graph ${graph.name} has the name of a parameter it uses, which ONNX does not allow; rename the input`,
      );
  }
  const seen = new Set<string>();
  for (const o of graph.outputs) {
    const span = o.value.producer?.span;
    if (seen.has(o.name))
      fail(
        "VLM2002",
        `graph ${graph.name} has two outputs named "${o.name}"; name them apart with \`return a: x, b: y\``,
        span,
      );
    seen.add(o.name);
    const source = o.value.source;
    const sameTensor =
      (source.kind === "input" && source.name === o.name) || (source.kind === "param" && source.param.name === o.name);
    if ((inputNames.has(o.name) || paramNames.has(o.name)) && !sameTensor) {
      fail(
        "VLM2002",
        `output "${o.name}" of graph ${graph.name} has the name of an input or parameter, which ONNX does not allow; name it with \`return ${o.name}_out: ${o.name}\``,
        span,
      );
    }
  }

  const e = new OnnxEmitter(graph.inputs);
  const transposed = new Set<string>();
  for (const [p, onlyLinear] of uses) {
    const dataType = onnxDataType(p.type.dtype, `parameter ${p.name}`, p.span);
    const dims = p.type.shape as number[];
    if (onlyLinear) {
      const [rows, cols] = dims as [number, number];
      transposed.add(p.name);
      e.initializer(p.name, dataType, [cols, rows], () =>
        transposeBytes(options.paramBytes(p), rows, cols, DTYPE_BYTES[p.type.dtype], options.allocate),
      );
    } else e.initializer(p.name, dataType, dims, () => options.paramBytes(p));
  }

  const guarded = guardInputs(e, graph);

  // The first graph output a node result feeds is written directly under the output's name.
  const claimed = new Map<Value, string>();
  for (const o of graph.outputs)
    if (o.value.source.kind === "node" && !claimed.has(o.value)) claimed.set(o.value, o.name);

  graph.nodes.forEach((node, index) => {
    if (!live.has(node)) return;
    const lower = options.targetLowerings?.[node.op] ?? (LOWERINGS as Readonly<Record<string, Lowering>>)[node.op];
    if (!lower) throw new InternalError(`no lowering for IR op ${node.op}`);
    const doc = options.location(node.span) + (node.rules.length > 0 ? `; rules: ${node.rules.join(",")}` : "");
    const inputs = node.inputs.map((v) =>
      v ? (v.source.kind === "input" ? (guarded.get(v.source.name) ?? v.source.name) : nameOf(v)) : undefined,
    );
    const { result, emitted } = e.within(`${node.scope}/${node.op}_${index}`, doc, node.span, () =>
      lower(e, node, inputs, { graph, transposed, options }),
    );
    const results = typeof result === "string" ? [result] : result;
    if (results.length !== node.outputs.length)
      throw new InternalError(
        `lowering of ${node.op} gave ${results.length} results for ${node.outputs.length} outputs`,
      );
    node.outputs.forEach((value, i) => {
      const made = results[i]!;
      const want = claimed.get(value);
      const producer = emitted.find((n) => n.outputs.includes(made));
      names.set(value, made);
      if (want !== undefined && producer) {
        // Renamed where it is made (and where this node's own later nodes read it) rather than copied.
        for (const n of emitted) n.inputs = n.inputs.map((x) => (x === made ? want : x));
        producer.outputs = producer.outputs.map((o) => (o === made ? want : o));
        names.set(value, want);
      }
    });
  });

  // Outputs not written under their own name (an input, a parameter, a shared constant, a result
  // that an earlier output already names) are copies.
  for (const o of graph.outputs) {
    const from = nameOf(o.value);
    if (from !== o.name) {
      const copy = e.within(`/outputs/${o.name}`, undefined, undefined, () => e.op("Identity", [from])).emitted[0]!;
      copy.outputs = [o.name];
    }
  }

  const params: Record<string, { component: string; role: string | null; frozen: boolean; buffer: boolean }> = {};
  for (const p of uses.keys())
    params[p.name] = { component: p.component, role: p.role ?? null, frozen: p.frozen, buffer: p.buffer };
  const target = options.target;
  const domains = [...new Set(e.nodes.map((n) => n.domain ?? ""))].filter((d) => d !== "").sort();
  const model: OnnxModel = {
    graphName: graph.name,
    inputs: graph.inputs.map((v) => valueInfo(nameOf(v), v.type, `input ${nameOf(v)}`)),
    outputs: graph.outputs.map((o) => valueInfo(o.name, o.value.type, `output ${o.name}`, o.value.producer?.span)),
    nodes: e.nodes,
    initializers: e.initializers,
    opsetImports: [
      { domain: "", version: target.opset },
      ...domains.map((domain) => ({ domain, version: domainVersion(domain) })),
    ],
    irVersion: PORTABLE_IR_VERSION,
    producerName: "vlmc",
    producerVersion: VERSION,
    docString: `${module.name}.${graph.name}, compiled by vlmc ${VERSION} for the ${target.name} target (ONNX opset ${target.opset})`,
    metadata: {
      ...options.metadata,
      "vlmc.version": VERSION,
      "vlmc.model": module.name,
      "vlmc.graph": graph.name,
      "vlmc.target": target.name,
      "vlmc.params": JSON.stringify(params),
      "vlmc.stages": JSON.stringify(module.stages),
      [BOUNDS_METADATA]: JSON.stringify(Object.fromEntries([...graph.bounds].sort(([a], [b]) => a.localeCompare(b)))),
      // Stored [in, out] (PyTorch keeps [out, in]): transpose back when exporting to a checkpoint.
      "vlmc.transposed": JSON.stringify([...transposed]),
    },
  };
  assertTargetOps(model, target);
  return model;
}

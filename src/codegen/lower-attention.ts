// Lowering of the Attention op to standard ONNX: split heads, rotary embeddings, grouped-query
// head repetition, scaled scores with causal and user masks, softmax, and merged heads.
// q is [B, Tq, H·d], k and v [B, Tk, KV·d] and [B, Tk, KV·dv]; the result is [B, Tq, H·dv].

import { dimEq, dimMax, dimToString, isStatic, type Dim } from "../ir/dims.js";
import type { Node } from "../ir/graph.js";
import type { DType } from "../ir/types.js";
import { encodeValues, fail, int, ints, onnxDataType, type OnnxEmitter } from "./emitter.js";
import { rotaryTables } from "../numerics/tables.js";

/** RoPE tables cover this many positions when the key length is symbolic and unbounded. */
const DEFAULT_ROTARY_POSITIONS = 4096;

/** Rows of the RoPE tables for keys of length `tk`: all of them, up to its bound. */
export function rotaryPositions(tk: Dim, bounds: ReadonlyMap<string, number>): number {
  return isStatic(tk) ? tk : (dimMax(tk, bounds) ?? DEFAULT_ROTARY_POSITIONS);
}

/** The most negative finite value of each float dtype: masked scores, as HF's finfo(dtype).min. */
export const LOWEST: Partial<Record<DType, number>> = {
  f32: -3.4028234663852886e38,
  f16: -65504,
  bf16: -3.3895313892515355e38,
};

/** A token count: static, or an int64 [1] tensor read from a tensor's shape at run time. */
type Count = number | string;

export function lowerAttention(
  e: OnnxEmitter,
  node: Node,
  bounds: ReadonlyMap<string, number>,
  ins: readonly (string | undefined)[],
): string {
  const [qv, kv, vv, maskValue, prefixValue] = node.inputs;
  const [q, k, v, mask, prefix] = ins;
  const heads = node.attrs["heads"] as number;
  const kvHeads = node.attrs["kv_heads"] as number;
  const theta = node.attrs["rotary_theta"] as number;
  const dtype = qv!.type.dtype;
  const lowest = LOWEST[dtype] ?? fail("VLM2106", `attention needs floating-point q, k and v, got ${dtype}`, node.span);
  const d = (qv!.type.shape[2] as number) / heads;
  const dv = (vv!.type.shape[2] as number) / kvHeads;
  const tq = qv!.type.shape[1]!;
  const tk = kv!.type.shape[1]!;

  let qh = splitHeads(e, q!, heads, d);
  let kh = splitHeads(e, k!, kvHeads, d);
  let vh = splitHeads(e, v!, kvHeads, dv);

  // Token counts are read from q and k at run time only when something needs them.
  const count = (t: Dim, x: string): (() => Count) => {
    let c: Count | undefined;
    return () => (c ??= isStatic(t) ? t : e.sizeOf(x, 1));
  };
  const qCount = count(tq, q!);
  const kCount = count(tk, k!);

  if (theta > 0) {
    if (d % 2 !== 0) fail("VLM2104", `rotary embeddings need an even head size, got ${d}`, node.span);
    const positions = rotaryPositions(tk, bounds);
    const tables = rotary(e, theta, d, positions, dtype);
    // Keys sit at positions 0..Tk-1; queries are the last Tq of them (aligned at the end, as with
    // a key/value cache), which for self-attention is the same range.
    const kRows = tk === positions ? tables : rows(e, tables, `[0:${compact(tk)}]`, () => [0, kCount()]);
    const qRows = dimEq(tq, tk)
      ? kRows
      : rows(e, tables, `[${compact(tk)}-${compact(tq)}:${compact(tk)}]`, () => [
          difference(e, kCount(), qCount()),
          kCount(),
        ]);
    qh = applyRotary(e, qh, qRows, d);
    kh = applyRotary(e, kh, kRows, d);
  }

  if (kvHeads < heads) {
    kh = repeatHeads(e, kh, heads, kvHeads, d);
    vh = repeatHeads(e, vh, heads, kvHeads, dv);
  }

  const keysT = e.op("Transpose", [kh], { perm: ints([0, 1, 3, 2]) });
  let scores = e.op("Mul", [e.op("MatMul", [qh, keysT]), e.scalar(node.attrs["scale"] as number, dtype)]);
  if (node.attrs["causal"] === true) {
    // The mask depends on the token counts only, so attentions with the same counts share it.
    let allowed = e.once(`/causal/${compact(tq)}/${compact(tk)}`, () => causalMask(e, qCount(), kCount()));
    if (prefix !== undefined) {
      // Prefix-LM: keys before the prefix length are seen by every query; a [B] length is per sample.
      const keyPositions = e.op("Range", [e.scalar(0, "i64"), e.toScalar(asTensor(e, kCount())), e.scalar(1, "i64")]);
      const length = prefixValue!.type.shape.length === 1 ? e.op("Reshape", [prefix, e.int64s([-1, 1, 1, 1])]) : prefix;
      allowed = e.op("Or", [allowed, e.op("Less", [keyPositions, length])]);
    }
    scores = e.op("Where", [allowed, scores, e.scalar(lowest, dtype)]);
  }
  if (mask !== undefined) {
    // A bool mask marks the pairs that may attend (as torch's scaled_dot_product_attention); any
    // other mask is added to the scores.
    const mdt = maskValue!.type.dtype;
    scores =
      mdt === "bool"
        ? e.op("Where", [mask, scores, e.scalar(lowest, dtype)])
        : e.op("Add", [scores, e.cast(mask, mdt, dtype)]);
  }
  const probs = e.op("Softmax", [scores], { axis: int(-1) });
  const merged = e.op("Transpose", [e.op("MatMul", [probs, vh])], { perm: ints([0, 2, 1, 3]) });
  return e.op("Reshape", [merged, e.int64s([0, 0, heads * dv])]);
}

/** [B, T, h·w] → [B, h, T, w]; Reshape's 0 copies B and T from the input. */
export function splitHeads(e: OnnxEmitter, x: string, h: number, w: number): string {
  return e.op("Transpose", [e.op("Reshape", [x, e.int64s([0, 0, h, w])])], { perm: ints([0, 2, 1, 3]) });
}

/** Grouped-query attention: each key/value head serves heads/kvHeads query heads, as HF's repeat_kv. */
export function repeatHeads(e: OnnxEmitter, x: string, heads: number, kvHeads: number, w: number): string {
  const expanded = e.op("Expand", [e.op("Unsqueeze", [x, e.int64s([2])]), e.int64s([1, 1, heads / kvHeads, 1, 1])]);
  return e.op("Reshape", [expanded, e.int64s([0, heads, -1, w])]);
}

function compact(d: Dim): string {
  return dimToString(d).replace(/ /g, "");
}

function asTensor(e: OnnxEmitter, c: Count): string {
  return typeof c === "number" ? e.int64s([c]) : c;
}

function difference(e: OnnxEmitter, a: Count, b: Count): Count {
  return typeof a === "number" && typeof b === "number" ? a - b : e.op("Sub", [asTensor(e, a), asTensor(e, b)]);
}

/** Position i of the queries may see key j ≤ i + (Tk − Tq): a bool [Tq, Tk]. */
function causalMask(e: OnnxEmitter, tq: Count, tk: Count): string {
  const range = (n: Count) => e.op("Range", [e.scalar(0, "i64"), e.toScalar(asTensor(e, n)), e.scalar(1, "i64")]);
  const queryPositions = e.op("Unsqueeze", [range(tq), e.int64s([1])]);
  const offsets = e.op("Sub", [range(tk), queryPositions]);
  return e.op("LessOrEqual", [offsets, asTensor(e, difference(e, tk, tq))]);
}

export interface RotaryTables {
  readonly cos: string;
  readonly sin: string;
}

/** The cos / signed-sin initializers, shared by every attention with the same θ, head size and length. */
export function rotary(e: OnnxEmitter, theta: number, d: number, positions: number, dtype: DType): RotaryTables {
  const t = onnxDataType(dtype, "the rotary table", e.span);
  const base = `/rotary/theta_${theta}/d_${d}/n_${positions}/${dtype}`;
  const table = (which: "cos" | "sin") =>
    e.initializer(`${base}/${which}`, t, [positions, d], () =>
      encodeValues(rotaryTables(theta, d, positions)[which], t),
    );
  return { cos: table("cos"), sin: table("sin") };
}

/** Rows start..end of both tables, sliced once per graph for each `range` as every layer uses the same positions. */
function rows(e: OnnxEmitter, tables: RotaryTables, range: string, bounds: () => [Count, Count]): RotaryTables {
  let b: [Count, Count] | undefined;
  const slice = (table: string) =>
    e.once(`${table}${range}`, () => {
      const [start, end] = (b ??= bounds());
      return e.op("Slice", [table, asTensor(e, start), asTensor(e, end), e.int64s([0])]);
    });
  return { cos: slice(tables.cos), sin: slice(tables.sin) };
}

/** x·cos + rotate_half(x)·sin on [B, h, T, d], with rotate_half's negation folded into the sin table. */
export function applyRotary(e: OnnxEmitter, x: string, t: RotaryTables, d: number): string {
  const half = (from: number, to: number) => e.op("Slice", [x, e.int64s([from]), e.int64s([to]), e.int64s([-1])]);
  const swapped = e.op("Concat", [half(d / 2, d), half(0, d / 2)], { axis: int(-1) });
  return e.op("Add", [e.op("Mul", [x, t.cos]), e.op("Mul", [swapped, t.sin])]);
}

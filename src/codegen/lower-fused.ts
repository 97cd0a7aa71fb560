// Lowerings of the fused IR ops that fusion passes create for ONNX Runtime targets (src/passes/
// fusion/): `ort.X` becomes ONNX Runtime's op X in its domain, with the inputs the IR leaves
// implicit computed here: rotary caches, GroupQueryAttention's sequence lengths, Attention's zero
// bias, and the mask as an attention_bias of rank 4.

import { dimEq, dimToString, type Dim } from "../ir/dims.js";
import type { Node } from "../ir/graph.js";
import type { DType } from "../ir/types.js";
import { ORT_PREFIX } from "../ir/ops.js";
import { encodeValues, float, int, ints, onnxDataType, type OnnxEmitter } from "./emitter.js";
import { LOWEST, rotaryPositions } from "./lower-attention.js";
import type { Lowering } from "./lower.js";
import type { OnnxAttribute } from "../onnx/onnx-writer.js";
import { rotaryTables } from "../numerics/tables.js";
import { FUSED_OP_KERNELS } from "../target/target-ops.js";

type Inputs = readonly (string | undefined)[];

const attr = (node: Node, key: string): number => node.attrs[key] as number;
const compact = (d: Dim): string => dimToString(d).replace(/ /g, "");

/** ONNX Runtime's `op` in its own domain, with the outputs at `outputs`. */
export function ortOp(
  e: OnnxEmitter,
  op: string,
  ins: Inputs,
  attributes: Record<string, OnnxAttribute>,
  outputs: readonly number[] = [0],
): string[] {
  return e.opOutputs(op, ins, attributes, outputs, FUSED_OP_KERNELS[op]!.domain);
}

/** cos and sin caches [positions, d/2], as RotaryEmbedding and GroupQueryAttention take them, from the same table as the portable lowering. */
export function rotaryCaches(
  e: OnnxEmitter,
  theta: number,
  d: number,
  positions: number,
  dtype: DType,
): { cos: string; sin: string } {
  const t = onnxDataType(dtype, "the rotary cache", e.span);
  const half = d / 2;
  const base = `/rotary/theta_${theta}/d_${d}/n_${positions}/${dtype}`;
  // The portable sin table is negated in its first half; its second half is sin itself.
  const cache = (which: "cos" | "sin", from: number) =>
    e.initializer(`${base}/${which}_cache`, t, [positions, half], () => {
      const table = rotaryTables(theta, d, positions)[which];
      return encodeValues(
        Float32Array.from({ length: positions * half }, (_, i) => table[Math.floor(i / half) * d + from + (i % half)]!),
        t,
      );
    });
  return { cos: cache("cos", 0), sin: cache("sin", half) };
}

/**
 * The mask (input `at` of `node`) as attention_bias [B|1, N|1, S, T]: a bool mask as 0 / lowest,
 * leading axes added, S and T expanded to the lengths of axis 1 of `queries` and `keys` (inputs
 * `queriesAt` and `keysAt`).
 */
function attentionBias(e: OnnxEmitter, node: Node, ins: Inputs, at: number, queriesAt: number, keysAt: number): string {
  const m = node.inputs[at]!.type;
  const dtype = node.outputs[0]!.type.dtype;
  let bias =
    m.dtype === "bool" ? e.op("Where", [ins[at], e.scalar(0, dtype), e.scalar(LOWEST[dtype]!, dtype)]) : ins[at]!;
  const lead = 4 - m.shape.length;
  if (lead > 0) bias = e.op("Unsqueeze", [bias, e.int64s(Array.from({ length: lead }, (_, i) => i))]);
  const shape = [...Array<number>(lead).fill(1), ...m.shape];
  if (
    !dimEq(shape[2]!, node.inputs[queriesAt]!.type.shape[1]!) ||
    !dimEq(shape[3]!, node.inputs[keysAt]!.type.shape[1]!)
  ) {
    // Expand broadcasts both ways: the 1s keep the batch and head axes as they are.
    bias = e.op("Expand", [
      bias,
      e.op("Concat", [e.int64s([1, 1]), e.sizeOf(ins[queriesAt]!, 1), e.sizeOf(ins[keysAt]!, 1)], { axis: int(0) }),
    ]);
  }
  return bias;
}

/** GroupQueryAttention's seqlens_k (int32 [B], length − 1) and total_sequence_length (int32 scalar) for a prompt without a past. */
function sequenceLengths(e: OnnxEmitter, node: Node, k: string): { seqlensK: string; total: string } {
  const [b, t] = node.inputs[1]!.type.shape.map(compact);
  const length = e.once(`/group_query_attention/length/${t}`, () => e.cast(e.sizeOf(k, 1), "i64", "i32"));
  return {
    seqlensK: e.once(`/group_query_attention/seqlens_k/${b}x${t}`, () =>
      e.op("Expand", [e.op("Sub", [length, e.constant([1], "i32", [1])]), e.sizeOf(k, 0)]),
    ),
    total: e.once(`/group_query_attention/total_sequence_length/${t}`, () => e.toScalar(length)),
  };
}

const skipNorm =
  (op: string): Lowering =>
  (e, node, ins) =>
    // Output 3 is input + skip + bias, which the next residual reads.
    ortOp(e, op, ins, { epsilon: float(attr(node, "epsilon")) }, node.outputs.length === 2 ? [0, 3] : [0]);

const plain =
  (op: string): Lowering =>
  (e, _node, ins) =>
    ortOp(e, op, ins, {});

/** Lowerings by ONNX Runtime op name; the IR op is that name with ORT_PREFIX. */
const BY_ORT_OP: Readonly<Record<string, Lowering>> = {
  // Self-attention: the input [B, T, in], the packed weight [in, q + k + v widths] and bias, and the mask as attention_bias.
  Attention: (e, node, ins) => {
    const [x, w, b, mask] = ins;
    const widths = node.attrs["qkv_hidden_sizes"] as readonly number[];
    const total = widths.reduce((s, n) => s + n, 0);
    // onnxruntime 1.30's CPU kernel crashes on an Attention without a bias: a projection without one gets zeros.
    const bias = b ?? e.constant(new Array<number>(total).fill(0), node.outputs[0]!.type.dtype, [total]);
    const attributes: Record<string, OnnxAttribute> = {
      num_heads: int(attr(node, "num_heads")),
      scale: float(attr(node, "scale")),
      unidirectional: int(node.attrs["unidirectional"] === true ? 1 : 0),
    };
    // Needed only where values are wider or narrower than queries and keys.
    if (widths[2] !== widths[0]) attributes["qkv_hidden_sizes"] = ints([...widths]);
    return ortOp(
      e,
      "Attention",
      [x, w, bias, undefined, undefined, mask === undefined ? undefined : attentionBias(e, node, ins, 3, 0, 0)],
      attributes,
    );
  },
  MultiHeadAttention: (e, node, ins) => {
    const [q, k, v, mask] = ins;
    const attributes = {
      num_heads: int(attr(node, "num_heads")),
      scale: float(attr(node, "scale")),
      unidirectional: int(node.attrs["unidirectional"] === true ? 1 : 0),
    };
    return ortOp(
      e,
      "MultiHeadAttention",
      [q, k, v, undefined, undefined, mask === undefined ? undefined : attentionBias(e, node, ins, 3, 0, 1)],
      attributes,
    );
  },
  GroupQueryAttention: (e, node, [q, k, v], ctx) => {
    const heads = attr(node, "num_heads");
    const theta = attr(node, "rotary_theta");
    const { seqlensK, total } = sequenceLengths(e, node, k!);
    const qt = node.inputs[0]!.type;
    const caches =
      theta > 0
        ? rotaryCaches(
            e,
            theta,
            (qt.shape[2] as number) / heads,
            rotaryPositions(qt.shape[1]!, ctx.graph.bounds),
            qt.dtype,
          )
        : undefined;
    const attributes = {
      num_heads: int(heads),
      kv_num_heads: int(attr(node, "kv_num_heads")),
      scale: float(attr(node, "scale")),
      do_rotary: int(theta > 0 ? 1 : 0),
    };
    return ortOp(
      e,
      "GroupQueryAttention",
      [q, k, v, undefined, undefined, seqlensK, total, caches?.cos, caches?.sin],
      attributes,
    );
  },
  // Positions start at 0 ([1]-shaped position_ids are an offset), as the rule only fuses self-attention over the whole sequence.
  RotaryEmbedding: (e, node, [x], ctx) => {
    const heads = attr(node, "num_heads");
    const xt = node.inputs[0]!.type;
    const caches = rotaryCaches(
      e,
      attr(node, "rotary_theta"),
      (xt.shape[2] as number) / heads,
      rotaryPositions(xt.shape[1]!, ctx.graph.bounds),
      xt.dtype,
    );
    return ortOp(e, "RotaryEmbedding", [x, e.int64s([0]), caches.cos, caches.sin], { num_heads: int(heads) });
  },
  SkipLayerNormalization: skipNorm("SkipLayerNormalization"),
  SkipSimplifiedLayerNormalization: skipNorm("SkipSimplifiedLayerNormalization"),
  SimplifiedLayerNormalization: (e, node, ins) =>
    ortOp(e, "SimplifiedLayerNormalization", ins, { axis: int(-1), epsilon: float(attr(node, "epsilon")) }),
  Gelu: plain("Gelu"),
  BiasGelu: plain("BiasGelu"),
  FastGelu: plain("FastGelu"),
  QuickGelu: (e, node, ins) => ortOp(e, "QuickGelu", ins, { alpha: float(attr(node, "alpha")) }),
};

export const FUSED_LOWERINGS: Readonly<Record<string, Lowering>> = Object.fromEntries(
  Object.entries(BY_ORT_OP).map(([op, lower]) => [ORT_PREFIX + op, lower]),
);

// fuse-attention: the IR's Attention as one ONNX Runtime attention kernel instead of the dozen
// nodes of the portable lowering: MultiHeadAttention when every query head has its own key/value
// head, GroupQueryAttention for a causal grouped-query decoder; rotary positions become
// RotaryEmbedding nodes on q and k, or GroupQueryAttention's own rotary when its kernel allows.

import { dimEq, dimToString, type Dim } from "../../ir/dims.js";
import type { Node, Value } from "../../ir/graph.js";
import type { DType } from "../../ir/types.js";
import { missingKernel } from "../../codegen/target-ops.js";
import { op, v, type Rewriter, type RewriteRule } from "../rewrite.js";
import { ORT_PREFIX, ortFusionPass, trimmed, type OrtTarget } from "./ort-fusion.js";

/** GroupQueryAttention's CPU kernel wants head sizes in multiples of 8, and of 16 for its own rotary. */
const GQA_HEAD_MULTIPLE = 8;
const GQA_ROTARY_HEAD_MULTIPLE = 16;

/** What the checks and rewrites read off an Attention node. */
interface AttentionShape {
  readonly dtype: DType;
  readonly heads: number;
  readonly kvHeads: number;
  /** Head sizes of queries/keys and of values. */
  readonly d: number;
  readonly dv: number;
  readonly tq: Dim;
  readonly tk: Dim;
  readonly causal: boolean;
  readonly scale: number;
  /** RoPE base; 0 without rotary positions. */
  readonly theta: number;
  readonly mask: Value | undefined;
}

function shapeOf(n: Node): AttentionShape {
  const [q, k, val, mask] = n.inputs;
  const heads = n.attrs["heads"] as number;
  const kvHeads = n.attrs["kv_heads"] as number;
  return {
    dtype: q!.type.dtype,
    heads,
    kvHeads,
    d: (q!.type.shape[2] as number) / heads,
    dv: (val!.type.shape[2] as number) / kvHeads,
    tq: q!.type.shape[1]!,
    tk: k!.type.shape[1]!,
    causal: n.attrs["causal"] === true,
    scale: n.attrs["scale"] as number,
    theta: n.attrs["rotary_theta"] as number,
    mask,
  };
}

/** The Attention attributes these rules translate; a node with others (a later option) stays as it is. */
const KNOWN_ATTRIBUTES = new Set(["heads", "kv_heads", "causal", "scale", "rotary_theta"]);

function unknownOptions(n: Node): string | undefined {
  const unknown = Object.keys(n.attrs).filter((k) => !KNOWN_ATTRIBUTES.has(k));
  if (unknown.length > 0) return `attention option ${unknown.join(", ")} has no fused form here`;
  return n.inputs.length > 4 ? `attention has ${n.inputs.length} inputs; the fused forms take q, k, v and a mask` : undefined;
}

/** The IR counts a causal mask and rotary positions from the end of the keys; the fused ops without a past, from the start. */
function misaligned(a: AttentionShape): string | undefined {
  if ((a.causal || a.theta > 0) && !dimEq(a.tq, a.tk)) {
    return `${dimToString(a.tq)} queries over ${dimToString(a.tk)} keys: the fused kernels align a causal mask and rotary positions at the first key, this attention at the last`;
  }
  return undefined;
}

function rotaryRefusal(a: AttentionShape, target: OrtTarget): string | undefined {
  return missingKernel(target, "RotaryEmbedding", a.dtype) ?? (a.d % 2 !== 0 ? `rotary positions need an even head size, not ${a.d}` : undefined);
}

/** A float mask is MultiHeadAttention's attention_bias as it is; a bool one becomes one when lowered. */
function maskRefusal(a: AttentionShape): string | undefined {
  const m = a.mask?.type.dtype;
  return m === undefined || m === "bool" || m === a.dtype ? undefined : `the mask is ${m} but the attention ${a.dtype}; attention_bias must match`;
}

function rotate(b: Rewriter, x: Value, heads: number, theta: number): Value {
  return b.add(`${ORT_PREFIX}RotaryEmbedding`, [x], x.type, { num_heads: heads, rotary_theta: theta });
}

function attentionRules(target: OrtTarget): RewriteRule[] {
  const attention = (grouped: boolean) => op("Attention", v("q"), v("k"), v("v")).where((n) => (n.attrs["kv_heads"] !== n.attrs["heads"]) === grouped);
  return [
    {
      name: "multi-head-attention",
      pattern: attention(false),
      check: (m) => {
        const a = shapeOf(m.root);
        return unknownOptions(m.root) ?? missingKernel(target, "MultiHeadAttention", a.dtype) ?? misaligned(a) ?? (a.theta > 0 ? rotaryRefusal(a, target) : undefined) ?? maskRefusal(a);
      },
      rewrite: (m, b) => {
        const a = shapeOf(m.root);
        const [q, k] = a.theta > 0 ? [rotate(b, m.value("q"), a.heads, a.theta), rotate(b, m.value("k"), a.heads, a.theta)] : [m.value("q"), m.value("k")];
        return b.add(`${ORT_PREFIX}MultiHeadAttention`, trimmed([q, k, m.value("v"), a.mask]), m.root.outputs[0]!.type, { num_heads: a.heads, scale: a.scale, unidirectional: a.causal });
      },
    },
    {
      name: "group-query-attention",
      pattern: attention(true),
      check: (m) => {
        const a = shapeOf(m.root);
        const refusal = unknownOptions(m.root) ?? missingKernel(target, "GroupQueryAttention", a.dtype) ?? misaligned(a);
        if (refusal) return refusal;
        if (!a.causal) return "GroupQueryAttention is causal only, and this attention sees every key";
        if (a.mask) return "GroupQueryAttention takes no mask";
        if (a.d % GQA_HEAD_MULTIPLE !== 0) return `head size ${a.d} is not a multiple of ${GQA_HEAD_MULTIPLE}, as GroupQueryAttention needs`;
        if (a.dv !== a.d) return `values have ${a.dv}-wide heads and queries ${a.d}-wide ones; GroupQueryAttention needs one head size`;
        return a.theta > 0 && a.d % GQA_ROTARY_HEAD_MULTIPLE !== 0 ? rotaryRefusal(a, target) : undefined;
      },
      rewrite: (m, b) => {
        const a = shapeOf(m.root);
        const inside = a.theta > 0 && a.d % GQA_ROTARY_HEAD_MULTIPLE === 0;
        const outside = a.theta > 0 && !inside;
        const q = outside ? rotate(b, m.value("q"), a.heads, a.theta) : m.value("q");
        const k = outside ? rotate(b, m.value("k"), a.kvHeads, a.theta) : m.value("k");
        const attrs = { num_heads: a.heads, kv_num_heads: a.kvHeads, scale: a.scale, rotary_theta: inside ? a.theta : 0 };
        return b.add(`${ORT_PREFIX}GroupQueryAttention`, [q, k, m.value("v")], m.root.outputs[0]!.type, attrs);
      },
    },
  ];
}

/**
 * fuse-attention (ONNX Runtime targets only). Rules, each stamped on what it creates:
 *  1. multi-head-attention:  Attention{kv_heads = heads}(q, k, v, mask?) →
 *                            MultiHeadAttention{num_heads, scale, unidirectional = causal}(q', k', v, mask?)
 *                            with q' = RotaryEmbedding(q), k' = RotaryEmbedding(k) under rotary positions;
 *                            the mask becomes attention_bias [B|1, N|1, S, T] when lowered (a bool
 *                            mask as 0 / lowest, a lower rank or broadcast axes expanded)
 *  2. group-query-attention: Attention{kv_heads < heads, causal}(q, k, v) →
 *                            GroupQueryAttention{num_heads, kv_num_heads, scale, do_rotary}(q, k, v)
 *                            (head size a multiple of 8; its own rotary at multiples of 16, else
 *                            RotaryEmbedding nodes first; seqlens_k and total_sequence_length are
 *                            computed from k's shape when lowered, for a prompt without a past)
 * Causal masks and rotary positions need as many queries as keys (no past). Every rule needs a
 * kernel for the dtype on the target (codegen/target-ops.ts): GroupQueryAttention has none for f32
 * on CUDA. Not fused: a packed QKV projection (the three Linears stay).
 */
export const fuseAttention = ortFusionPass("fuse-attention", "lower attention to ONNX Runtime's MultiHeadAttention, GroupQueryAttention and RotaryEmbedding", attentionRules);

// Lowering of `KvAttention`, the self-attention of a decoder with a key/value cache (package
// decoders, src/codegen/package/): q [B, S, H·d], k and v [B, S, KV·d], the past keys and values
// [B, KV, P, d], attention_mask [B, P + S] (1 = a real token, 0 = padding, holes allowed) and, for
// the plain form, position_ids [B, S]; results: the attention [B, S, H·d] and the present keys
// and values [B, KV, P + S, d].
//
// Three forms, chosen when the graph is built (attribute `kernel`):
//  - "plain": standard ONNX. Rotary positions from position_ids, past and new keys concatenated,
//    a causal mask shifted by P combined with the attention mask (so padded columns anywhere are
//    never attended), softmax, grouped heads repeated.
//  - "gqa": ONNX Runtime's GroupQueryAttention with its own rotary (do_rotary) from cos/sin caches,
//    seqlens_k = ReduceSum(attention_mask) − 1 and total_sequence_length = its width. The op keeps
//    each row's keys packed from position 0, so it agrees with the plain form when rows are padded
//    on the right and the mask has holes where a shorter row's padding was.
//  - "mha": ONNX Runtime's MultiHeadAttention (no rotary: OPT), past keys/values concatenated inside
//    the op, the plain form's mask as an additive attention_bias [B, 1, S, P + S].

import type { Node } from "../ir/graph.js";
import { float, int, ints, type OnnxEmitter } from "./emitter.js";
import { applyRotary, LOWEST, repeatHeads, rotary, splitHeads } from "./lower-attention.js";
import { ortOp, rotaryCaches } from "./lower-fused.js";
import type { Lowering } from "./lower.js";

type Inputs = readonly (string | undefined)[];

const num = (node: Node, key: string): number => node.attrs[key] as number;

function plain(e: OnnxEmitter, node: Node, ins: Inputs): string[] {
  const [q, k, v, pastK, pastV, mask, positionIds] = ins;
  const heads = num(node, "heads");
  const kvHeads = num(node, "kv_heads");
  const theta = num(node, "rotary_theta");
  const dtype = node.inputs[0]!.type.dtype;
  const d = (node.inputs[0]!.type.shape[2] as number) / heads;
  let qh = splitHeads(e, q!, heads, d);
  let kh = splitHeads(e, k!, kvHeads, d);
  const vh = splitHeads(e, v!, kvHeads, d);
  if (theta > 0) {
    const tables = rotary(e, theta, d, num(node, "positions"), dtype);
    // Rows of the tables at each token's position: [B, 1, S, d], shared by every layer.
    const at = (table: string) =>
      e.once(`${table}[position_ids]`, () =>
        e.op("Unsqueeze", [e.op("Gather", [table, positionIds!], { axis: int(0) }), e.int64s([1])]),
      );
    const rows = { cos: at(tables.cos), sin: at(tables.sin) };
    qh = applyRotary(e, qh, rows, d);
    kh = applyRotary(e, kh, rows, d);
  }
  const presentK = e.op("Concat", [pastK!, kh], { axis: int(2) });
  const presentV = e.op("Concat", [pastV!, vh], { axis: int(2) });
  const keys = kvHeads < heads ? repeatHeads(e, presentK, heads, kvHeads, d) : presentK;
  const values = kvHeads < heads ? repeatHeads(e, presentV, heads, kvHeads, d) : presentV;
  const scores = e.op("Mul", [
    e.op("MatMul", [qh, e.op("Transpose", [keys], { perm: ints([0, 1, 3, 2]) })]),
    e.scalar(num(node, "scale"), dtype),
  ]);
  const masked = e.op("Where", [allowed(e, q!, mask!), scores, e.scalar(LOWEST[dtype]!, dtype)]);
  const probs = e.op("Softmax", [masked], { axis: int(-1) });
  const merged = e.op("Transpose", [e.op("MatMul", [probs, values])], { perm: ints([0, 2, 1, 3]) });
  return [e.op("Reshape", [merged, e.int64s([0, 0, heads * d])]), presentK, presentV];
}

/** Query i (at column P + i) may see key column j ≤ P + i whose mask is 1: bool [B, 1, S, P + S], built once per graph. */
function allowed(e: OnnxEmitter, q: string, mask: string): string {
  return e.once("/kv_attention/allowed", () => {
    const total = e.sizeOf(mask, 1);
    const news = e.sizeOf(q, 1);
    const range = (n: string) => e.op("Range", [e.scalar(0, "i64"), e.toScalar(n), e.scalar(1, "i64")]);
    const last = e.op("Unsqueeze", [e.op("Add", [range(news), e.op("Sub", [total, news])]), e.int64s([1])]);
    const causal = e.op("LessOrEqual", [range(total), last]);
    const real = e.op("Unsqueeze", [e.cast(mask, "i64", "bool"), e.int64s([1, 2])]);
    return e.op("And", [causal, real]);
  });
}

function groupQuery(e: OnnxEmitter, node: Node, ins: Inputs): string[] {
  const [q, k, v, pastK, pastV, mask] = ins;
  const heads = num(node, "heads");
  const theta = num(node, "rotary_theta");
  const dtype = node.inputs[0]!.type.dtype;
  const d = (node.inputs[0]!.type.shape[2] as number) / heads;
  const seqlensK = e.once("/kv_attention/seqlens_k", () =>
    e.cast(
      e.op("Sub", [e.op("ReduceSum", [mask!, e.int64s([1])], { keepdims: int(0) }), e.scalar(1, "i64")]),
      "i64",
      "i32",
    ),
  );
  const total = e.once("/kv_attention/total_sequence_length", () =>
    e.toScalar(e.cast(e.sizeOf(mask!, 1), "i64", "i32")),
  );
  const caches = theta > 0 ? rotaryCaches(e, theta, d, num(node, "positions"), dtype) : undefined;
  return ortOp(
    e,
    "GroupQueryAttention",
    [q, k, v, pastK, pastV, seqlensK, total, caches?.cos, caches?.sin],
    {
      num_heads: int(heads),
      kv_num_heads: int(num(node, "kv_heads")),
      scale: float(num(node, "scale")),
      do_rotary: int(theta > 0 ? 1 : 0),
      rotary_interleaved: int(0),
    },
    [0, 1, 2],
  );
}

/** ONNX Runtime's MultiHeadAttention with its past inputs (concatenated inside) and the mask as an additive attention_bias. */
function multiHead(e: OnnxEmitter, node: Node, ins: Inputs): string[] {
  const [q, k, v, pastK, pastV, mask] = ins;
  const dtype = node.inputs[0]!.type.dtype;
  const bias = e.once("/kv_attention/attention_bias", () =>
    e.op("Where", [allowed(e, q!, mask!), e.scalar(0, dtype), e.scalar(LOWEST[dtype]!, dtype)]),
  );
  return ortOp(
    e,
    "MultiHeadAttention",
    [q, k, v, undefined, undefined, bias, pastK, pastV],
    { num_heads: int(num(node, "heads")), scale: float(num(node, "scale")) },
    [0, 1, 2],
  );
}

const KERNELS: Readonly<Record<string, (e: OnnxEmitter, node: Node, ins: Inputs) => string[]>> = {
  gqa: groupQuery,
  mha: multiHead,
  plain,
};

export const KV_ATTENTION_LOWERINGS: Readonly<Record<string, Lowering>> = {
  KvAttention: (e, node, ins) => KERNELS[node.attrs["kernel"] as string]!(e, node, ins),
};

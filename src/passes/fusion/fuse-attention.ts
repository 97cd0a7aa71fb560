// fuse-attention: the IR's Attention as one ONNX Runtime attention kernel instead of the dozen
// nodes of the portable lowering: Attention, with the q/k/v projection inside, for self-attention
// whose three projections of one input can be one packed weight (ViT's in_proj, or BERT's and
// CLIP's three Linears packed at build time); MultiHeadAttention for other attention where every
// query head has its own key/value head; GroupQueryAttention for a causal grouped-query decoder.
// Rotary positions become RotaryEmbedding nodes on q and k, or GroupQueryAttention's own rotary
// when its kernel allows.

import { dimEq, dimToString, type Dim } from "../../ir/dims.js";
import type { Graph, Node, Value } from "../../ir/graph.js";
import { tensorType, typeToString, type DType } from "../../ir/types.js";
import { PRECOMPUTED, ORT_PREFIX } from "../../ir/ops.js";
import { readers } from "../../ir/analysis.js";
import type { Target } from "../../target/target.js";
import { Constness } from "../constness.js";
import { hoist } from "../precomputed.js";
import { op, v, type Match, type Rewriter, type RewriteRule } from "../rewrite.js";
import { ortFusionPass, trimmed } from "./ort-fusion.js";

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
  return n.inputs.length > 4
    ? `attention has ${n.inputs.length} inputs; the fused forms take q, k, v and a mask`
    : undefined;
}

/** The IR counts a causal mask and rotary positions from the end of the keys; the fused ops without a past, from the start. */
function misaligned(a: AttentionShape): string | undefined {
  if ((a.causal || a.theta > 0) && !dimEq(a.tq, a.tk)) {
    return `${dimToString(a.tq)} queries over ${dimToString(a.tk)} keys: the fused kernels align a causal mask and rotary positions at the first key, this attention at the last`;
  }
  return undefined;
}

function rotaryRefusal(a: AttentionShape, target: Target): string | undefined {
  return (
    target.missingKernel("RotaryEmbedding", a.dtype) ??
    (a.d % 2 !== 0 ? `rotary positions need an even head size, not ${a.d}` : undefined)
  );
}

/** A float mask is MultiHeadAttention's attention_bias as it is; a bool one becomes one when lowered. */
function maskRefusal(a: AttentionShape): string | undefined {
  const m = a.mask?.type.dtype;
  return m === undefined || m === "bool" || m === a.dtype
    ? undefined
    : `the mask is ${m} but the attention ${a.dtype}; attention_bias must match`;
}

function rotate(b: Rewriter, x: Value, heads: number, theta: number): Value {
  return b.add(`${ORT_PREFIX}RotaryEmbedding`, [x], x.type, { num_heads: heads, rotary_theta: theta });
}

// ---- Attention: the projection inside the kernel ----

const QKV = ["q", "k", "v"] as const;

/** The widths of q, k and v (Attention's qkv_hidden_sizes): the columns each takes of the packed projection. */
function qkvWidths(a: AttentionShape): [number, number, number] {
  return [a.heads * a.d, a.heads * a.d, a.heads * a.dv];
}

/**
 * Why Attention cannot compute this attention whatever its projections: the options it has no
 * form for, the kernel, rotary positions (MultiHeadAttention with RotaryEmbedding takes those),
 * the mask.
 */
function attentionRefusal(n: Node, target: Target): string | undefined {
  const a = shapeOf(n);
  const rotary =
    a.theta > 0
      ? "rotary positions go to MultiHeadAttention with RotaryEmbedding; Attention's own rotary is not used"
      : undefined;
  return unknownOptions(n) ?? target.missingKernel("Attention", a.dtype) ?? rotary ?? maskRefusal(a);
}

/** True if the attention at `root` is the only reader of `x`. */
const readOnlyBy = (g: Graph, x: Value, root: Node): boolean =>
  readers(g, x) > 0 && x.uses.every((u) => u.node === root) && !g.isOutput(x);

/** Why the stored tensor `w` cannot be packed at build time: it is computed at run time, or this compile trains it. */
function unpackable(w: Value, what: string, constness: Constness): string | undefined {
  if (w.source.kind !== "param" && w.producer?.op !== PRECOMPUTED)
    return `the ${what} is ${w.producer ? `computed by ${w.producer.op}` : "a graph input"}, not a stored tensor to pack at build time`;
  return constness.isConstant(w)
    ? undefined
    : `the ${what} is trained in this stage, so it cannot be packed at build time`;
}

/** Columns [start, end) that `slice` takes of the last axis of `h` (width `width`), or undefined for another slice. */
function lastAxisColumns(slice: Node, rank: number, width: number): [number, number] | undefined {
  const axes = slice.attrs["axes"] as readonly number[];
  const [start, end, step] = [
    (slice.attrs["starts"] as readonly number[])[0]!,
    (slice.attrs["ends"] as readonly number[])[0]!,
    (slice.attrs["steps"] as readonly number[] | undefined)?.[0] ?? 1,
  ];
  if (axes.length !== 1 || (axes[0]! + rank) % rank !== rank - 1 || step !== 1) return undefined;
  const clamp = (i: number) => Math.min(Math.max(i < 0 ? i + width : i, 0), width);
  return [clamp(start), clamp(end)];
}

/** A self-attention's projection x·W + b, with W [in, Σ widths] as Attention takes it (transposed at build time from a Linear's [out, in]). */
interface SlicedProjection {
  readonly x: Value;
  readonly weight: Value;
  readonly bias: Value | undefined;
  /** The Linear whose [out, in] weight is transposed at build time; undefined when `weight` is a MatMul operand. */
  readonly linear: Node | undefined;
}

/** q, k and v as Slices of one projection h = x·W (+ b), in Attention's order and covering h; or why not. */
function slicedProjection(m: Match, constness: Constness): SlicedProjection | string {
  const g = m.graph;
  const h = m.value("h");
  const widths = qkvWidths(shapeOf(m.root));
  const total = widths[0] + widths[1] + widths[2];
  if (h.type.shape.length !== 3 || h.type.shape[2] !== total)
    return `q, k and v take ${total} columns of the ${typeToString(h.type)} projection, not all of them`;
  const slices = QKV.map((name) => m.node(`${name}_slice`));
  let at = 0;
  for (const [i, name] of QKV.entries()) {
    const columns = lastAxisColumns(slices[i]!, 3, total);
    if (!columns || columns[0] !== at || columns[1] !== at + widths[i]!)
      return `${name} is not columns ${at}:${at + widths[i]!} of the projection (Attention packs q, k, v in that order)`;
    if (!readOnlyBy(g, slices[i]!.outputs[0]!, m.root)) return `${name} is read elsewhere too`;
    at += widths[i]!;
  }
  if (readers(g, h) !== 3) return "the projection is read elsewhere too";
  const p = h.producer!;
  const input = (x: Value) =>
    x.type.shape.length === 3 ? undefined : `Attention takes an input [B, T, in], not ${typeToString(x.type)}`;
  if (p.op === "Linear") {
    const [x, w, bias] = p.inputs;
    return input(x!) ?? unpackable(w!, "projection's weight", constness) ?? { x: x!, weight: w!, bias, linear: p };
  }
  let matmul = p;
  let bias: Value | undefined;
  if (p.op === "Add") {
    const i = p.inputs.findIndex((x) => x?.producer?.op === "MatMul");
    if (i < 0) return "the projection adds no MatMul";
    matmul = p.inputs[i]!.producer!;
    bias = p.inputs[1 - i]!;
    if (bias.type.shape.length !== 1 || bias.type.shape[0] !== total)
      return `the projection's bias is ${typeToString(bias.type)}; Attention takes [${total}]`;
    if (readers(g, matmul.outputs[0]!) !== 1) return "the projection's product without its bias is read elsewhere too";
  } else if (p.op !== "MatMul") return `the projection is ${p.op}, not MatMul, MatMul + bias or Linear`;
  const [x, w] = matmul.inputs;
  if (w!.type.shape.length !== 2)
    return `the projection's weight is ${typeToString(w!.type)}; Attention takes [in, ${total}]`;
  return input(x!) ?? { x: x!, weight: w!, bias, linear: undefined };
}

/** The three Linears making q, k and v from one input, with their weights stored and their biases all there or all absent; or why not. */
function linearsRefusal(m: Match, constness: Constness): string | undefined {
  const linears = QKV.map((name) => m.node(`${name}_linear`));
  if (m.value("x").type.shape.length !== 3)
    return `Attention takes an input [B, T, in], not ${typeToString(m.value("x").type)}`;
  for (const [i, name] of QKV.entries()) {
    const l = linears[i]!;
    if (Object.keys(l.attrs).length > 0)
      return `the ${name} projection has options (${Object.keys(l.attrs).join(", ")})`;
    if (!readOnlyBy(m.graph, l.outputs[0]!, m.root)) return `${name} is read elsewhere too`;
    const refusal =
      unpackable(l.inputs[1]!, `${name} weight`, constness) ??
      (l.inputs[2] ? unpackable(l.inputs[2], `${name} bias`, constness) : undefined);
    if (refusal) return refusal;
  }
  const biased = linears.filter((l) => l.inputs[2] !== undefined).length;
  return biased === 0 || biased === 3 ? undefined : "only some of the q, k and v projections have a bias";
}

/** `w` [out, in] as [in, out]. */
function transposed(b: Rewriter, w: Value): Value {
  const [out, inner] = w.type.shape;
  return b.add("Transpose", [w], tensorType(w.type.dtype, [inner!, out!]), { perm: [1, 0] });
}

/** The fused node; then `pack` (values made before it from parameters alone) moves to the graph's precomputed values. */
function packedAttention(
  m: Match,
  b: Rewriter,
  rule: string,
  x: Value,
  weight: Value,
  bias: Value | undefined,
  pack: Value[],
): Value {
  const a = shapeOf(m.root);
  const attrs = { num_heads: a.heads, scale: a.scale, unidirectional: a.causal, qkv_hidden_sizes: qkvWidths(a) };
  const y = b.add(`${ORT_PREFIX}Attention`, trimmed([x, weight, bias, a.mask]), m.root.outputs[0]!.type, attrs);
  if (pack.length > 0) hoist(m.graph, pack, rule);
  return y;
}

/** Rules 1 and 2 below (exported for tests: where they refuse, rule 3 usually fires, and its fire drops their near misses). */
export function packedAttentionRules(target: Target, constness: Constness): RewriteRule[] {
  const self = (n: Node) => n.attrs["kv_heads"] === n.attrs["heads"];
  const slice = (name: string) => op("Slice", v("h")).as(`${name}_slice`);
  const linear = (name: string) => op("Linear", v("x"), v()).as(`${name}_linear`);
  return [
    {
      name: "attention-qkv-slices",
      pattern: op("Attention", slice("q"), slice("k"), slice("v")).where(self),
      check: (m) => {
        const refusal = attentionRefusal(m.root, target);
        if (refusal) return refusal;
        const p = slicedProjection(m, constness);
        return typeof p === "string" ? p : undefined;
      },
      rewrite: (m, b) => {
        const p = slicedProjection(m, constness) as SlicedProjection;
        const weight = p.linear ? transposed(b, p.weight) : p.weight;
        return packedAttention(m, b, "attention-qkv-slices", p.x, weight, p.bias, p.linear ? [weight] : []);
      },
    },
    {
      name: "attention-qkv-linears",
      pattern: op("Attention", linear("q"), linear("k"), linear("v")).where(self),
      check: (m) => attentionRefusal(m.root, target) ?? linearsRefusal(m, constness),
      rewrite: (m, b) => {
        const linears = QKV.map((name) => m.node(`${name}_linear`));
        const dtype = m.value("x").type.dtype;
        const total = qkvWidths(shapeOf(m.root)).reduce((s, w) => s + w, 0);
        const parts = linears.map((l) => transposed(b, l.inputs[1]!));
        const weight = b.add("Concat", parts, tensorType(dtype, [parts[0]!.type.shape[0]!, total]), { axis: 1 });
        const biases = linears.map((l) => l.inputs[2]);
        const bias = biases[0] ? b.add("Concat", biases, tensorType(dtype, [total]), { axis: 0 }) : undefined;
        return packedAttention(
          m,
          b,
          "attention-qkv-linears",
          m.value("x"),
          weight,
          bias,
          bias ? [weight, bias] : [weight],
        );
      },
    },
  ];
}

// ---- MultiHeadAttention and GroupQueryAttention: q, k and v as they are ----

function attentionRules(target: Target): RewriteRule[] {
  const attention = (grouped: boolean) =>
    op("Attention", v("q"), v("k"), v("v")).where((n) => (n.attrs["kv_heads"] !== n.attrs["heads"]) === grouped);
  return [
    {
      name: "multi-head-attention",
      pattern: attention(false),
      check: (m) => {
        const a = shapeOf(m.root);
        return (
          unknownOptions(m.root) ??
          target.missingKernel("MultiHeadAttention", a.dtype) ??
          misaligned(a) ??
          (a.theta > 0 ? rotaryRefusal(a, target) : undefined) ??
          maskRefusal(a)
        );
      },
      rewrite: (m, b) => {
        const a = shapeOf(m.root);
        const [q, k] =
          a.theta > 0
            ? [rotate(b, m.value("q"), a.heads, a.theta), rotate(b, m.value("k"), a.heads, a.theta)]
            : [m.value("q"), m.value("k")];
        return b.add(
          `${ORT_PREFIX}MultiHeadAttention`,
          trimmed([q, k, m.value("v"), a.mask]),
          m.root.outputs[0]!.type,
          { num_heads: a.heads, scale: a.scale, unidirectional: a.causal },
        );
      },
    },
    {
      name: "group-query-attention",
      pattern: attention(true),
      check: (m) => {
        const a = shapeOf(m.root);
        const refusal = unknownOptions(m.root) ?? target.missingKernel("GroupQueryAttention", a.dtype) ?? misaligned(a);
        if (refusal) return refusal;
        if (!a.causal) return "GroupQueryAttention is causal only, and this attention sees every key";
        if (a.mask) return "GroupQueryAttention takes no mask";
        if (a.d % GQA_HEAD_MULTIPLE !== 0)
          return `head size ${a.d} is not a multiple of ${GQA_HEAD_MULTIPLE}, as GroupQueryAttention needs`;
        if (a.dv !== a.d)
          return `values have ${a.dv}-wide heads and queries ${a.d}-wide ones; GroupQueryAttention needs one head size`;
        return a.theta > 0 && a.d % GQA_ROTARY_HEAD_MULTIPLE !== 0 ? rotaryRefusal(a, target) : undefined;
      },
      rewrite: (m, b) => {
        const a = shapeOf(m.root);
        const inside = a.theta > 0 && a.d % GQA_ROTARY_HEAD_MULTIPLE === 0;
        const outside = a.theta > 0 && !inside;
        const q = outside ? rotate(b, m.value("q"), a.heads, a.theta) : m.value("q");
        const k = outside ? rotate(b, m.value("k"), a.kvHeads, a.theta) : m.value("k");
        const attrs = {
          num_heads: a.heads,
          kv_num_heads: a.kvHeads,
          scale: a.scale,
          rotary_theta: inside ? a.theta : 0,
        };
        return b.add(`${ORT_PREFIX}GroupQueryAttention`, [q, k, m.value("v")], m.root.outputs[0]!.type, attrs);
      },
    },
  ];
}

/**
 * fuse-attention (ONNX Runtime targets only). Rules, each stamped on what it creates, tried in
 * this order:
 *  1. attention-qkv-slices:  Attention{kv_heads = heads}(Slice(h), Slice(h), Slice(h), mask?) with
 *                            h = x·W (+ b) or Linear(x, W, b?) and the slices q, k, v in that
 *                            order covering h (ViT's in_proj, GPT-2's c_attn) →
 *                            Attention{num_heads, scale, unidirectional = causal,
 *                            qkv_hidden_sizes}(x, W', b?, mask?), W' = W, or Wᵀ precomputed
 *  2. attention-qkv-linears: Attention{kv_heads = heads}(Linear(x, Wq, bq?), Linear(x, Wk, bk?),
 *                            Linear(x, Wv, bv?), mask?) (BERT, CLIP, the Q-Former's self-attention)
 *                            → Attention{…}(x, W', b'?, mask?), W' = Concat₁(Wqᵀ, Wkᵀ, Wvᵀ) and
 *                            b' = Concat(bq, bk, bv) precomputed (hoisted into the graph's
 *                            precomputed values, so the model stores the packed tensors only)
 *     Both need the projections read by the attention alone, no rotary positions, and weights
 *     packed at build time stored (parameters or precomputed values) and not trained by the stage
 *     compiled. Attention's kernel computes the projection straight into the head-major layout it
 *     attends in, with its weight prepacked: on ort-cpu (onnxruntime 1.30, 2 threads) it ran a
 *     ViT-B/16 layer's projection and attention in 2.8 ms against 3.2 ms as MatMul + Split +
 *     MultiHeadAttention, and 14%, 17% and 8% faster at 50, 128 and 577 tokens. Not measured on
 *     CUDA, where it is the op ONNX Runtime's own transformer optimizer fuses BERT into.
 *  3. multi-head-attention:  Attention{kv_heads = heads}(q, k, v, mask?) →
 *                            MultiHeadAttention{num_heads, scale, unidirectional = causal}(q', k', v, mask?)
 *                            with q' = RotaryEmbedding(q), k' = RotaryEmbedding(k) under rotary positions;
 *                            the mask becomes attention_bias [B|1, N|1, S, T] when lowered (a bool
 *                            mask as 0 / lowest, a lower rank or broadcast axes expanded)
 *  4. group-query-attention: Attention{kv_heads < heads, causal}(q, k, v) →
 *                            GroupQueryAttention{num_heads, kv_num_heads, scale, do_rotary}(q, k, v)
 *                            (head size a multiple of 8; its own rotary at multiples of 16, else
 *                            RotaryEmbedding nodes first; seqlens_k and total_sequence_length are
 *                            computed from k's shape when lowered, for a prompt without a past)
 * Causal masks and rotary positions need as many queries as keys (no past). Every rule needs a
 * kernel for the dtype on the target (target/target-ops.ts): GroupQueryAttention has none for f32
 * on CUDA. Rules 1 and 2 lower their mask as rule 3 does.
 */
export const fuseAttention = ortFusionPass(
  "fuse-attention",
  "lower attention to ONNX Runtime's Attention, MultiHeadAttention, GroupQueryAttention and RotaryEmbedding",
  (target, module, ctx) => [
    ...packedAttentionRules(target, Constness.of(module, ctx.options)),
    ...attentionRules(target),
  ],
);

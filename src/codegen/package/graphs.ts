// The embedding and decoder graphs of a generation package, built as IR over the model's own
// parameters: the cache plumbing that std's decoder blocks (llama, opt) need for generation, so a
// spec names its decoder component once and never wires past/present per layer. The graphs then go
// through the same passes (fusion, quantization policies) and lowering as any spec graph; the
// attention with a cache is the `KvAttention` op (src/codegen/lower-cache.ts).
//
// Names and shapes follow ONNX Runtime GenAI (see docs/packages.md): inputs_embeds, attention_mask
// [batch_size, total_sequence_length], position_ids, past_key_values.%d.key/value
// [batch_size, kv_heads, past_sequence_length, head_dim] → logits, present.%d.key/value.

import { InternalError } from "../../diagnostics/diagnostic.js";
import type { Span } from "../../diagnostics/source.js";
import { dimAdd, dimMul, sym, type Dim } from "../../ir/dims.js";
import { Graph, type AttrValue, type IrModule, type Param, type Value } from "../../ir/graph.js";
import { tensorType, type DType, type TensorType } from "../../ir/types.js";

/** What the decoder graph is built from: the decoder component and its block's arguments. */
export interface DecoderLayout {
  readonly family: "llama" | "opt";
  /** The decoder component's name: its parameters are `${component}.…`. */
  readonly component: string;
  readonly vocab: number;
  readonly hidden: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly mlp: number;
  readonly context: number;
  readonly eps: number;
  /** Rotary base (LLaMA); 0 for learned positions (OPT). */
  readonly theta: number;
  /** OPT: pre-LN layers (every OPT but 350m). */
  readonly preLn: boolean;
  /** What it computes in and stores its cache in (convert-precision makes the graph so; built in f32). */
  readonly dtype: "f32" | "f16" | "bf16";
  /** Attention kernel: ONNX Runtime's GroupQueryAttention or MultiHeadAttention, or standard ops. */
  readonly kernel: "gqa" | "mha" | "plain";
  /** The decoder takes position_ids (rotary outside the attention op, or learned positions). */
  readonly positionIds: boolean;
  /** Flamingo: the gated cross-attention blocks interleaved with the decoder's layers. */
  readonly cross?: CrossLayout;
}

/** Flamingo's gated cross-attention (std flamingo_lm), with its keys/values carried as a cache. */
export interface CrossLayout {
  /** The flamingo_lm component: blocks at `${component}.gated_cross_attn_layers.{layer}`. */
  readonly component: string;
  /** Decoder layers with a block before them, in order; cache entry j belongs to layers[j]. */
  readonly layers: readonly number[];
  readonly heads: number;
  readonly headDim: number;
  readonly mediaWidth: number;
  readonly ffnHidden: number;
  /** Media tokens (resampled latents) per image. */
  readonly latents: number;
}

/** Names of the package graphs' inputs and outputs (ONNX Runtime GenAI's). */
export const NAMES = {
  pixelValues: "pixel_values",
  inputIds: "input_ids",
  imageFeatures: "image_features",
  imageIndex: "image_index",
  inputsEmbeds: "inputs_embeds",
  attentionMask: "attention_mask",
  positionIds: "position_ids",
  logits: "logits",
  pastKey: "past_key_values.%d.key",
  pastValue: "past_key_values.%d.value",
  presentKey: "present.%d.key",
  presentValue: "present.%d.value",
  crossStates: "cross_attention_states",
  mediaIndex: "media_index",
  pastCrossKey: "past_cross_key_values.%d.key",
  pastCrossValue: "past_cross_key_values.%d.value",
  presentCrossKey: "present_cross.%d.key",
  presentCrossValue: "present_cross.%d.value",
} as const;

const B = sym("batch_size");
const S = sym("sequence_length");
const P = sym("past_sequence_length");
const T = sym("total_sequence_length");
const N = sym("num_image_tokens");
const K = sym("num_feature_rows");
const NM = sym("num_media_tokens");
const PM = sym("past_media_tokens");

/** Adds nodes to one graph, reading parameters by full name. */
class Builder {
  constructor(
    readonly graph: Graph,
    private readonly params: ReadonlyMap<string, Param>,
    private readonly span: Span,
    /** Scope of nodes that name none: the component they compute for, whose precision policy they follow. */
    private readonly scope = "",
  ) {}

  param(name: string): Value {
    const p = this.params.get(name);
    if (!p) throw new InternalError(`the package decoder needs parameter ${name}, which the model lacks`);
    return this.graph.paramValue(p);
  }

  op(
    op: string,
    inputs: (Value | undefined)[],
    type: TensorType,
    attrs: Record<string, AttrValue> = {},
    scope = this.scope,
  ) {
    return this.graph.addNode(op, inputs, [type], attrs, scope, this.span).outputs[0]!;
  }

  /** x·Wᵀ (+ b) with the weight [out, in] as PyTorch stores it. */
  linear(x: Value, prefix: string, bias: boolean): Value {
    const w = this.param(`${prefix}.weight`);
    const shape = [...x.type.shape.slice(0, -1), w.type.shape[0]!];
    return this.op(
      "Linear",
      [x, w, bias ? this.param(`${prefix}.bias`) : undefined],
      retype(x.type, shape),
      {},
      scope(prefix),
    );
  }

  norm(x: Value, prefix: string, kind: "rms" | "layer", eps: number): Value {
    const ins =
      kind === "rms"
        ? [x, this.param(`${prefix}.weight`)]
        : [x, this.param(`${prefix}.weight`), this.param(`${prefix}.bias`)];
    return this.op(kind === "rms" ? "RMSNorm" : "LayerNorm", ins, x.type, { eps }, scope(prefix));
  }

  constant(value: number, dtype: DType): Value {
    return this.op("Constant", [], tensorType(dtype, []), { value, dtype });
  }
}

/** A cache tensor: carried from one decoder run to the next, so stored in the precision its attention runs in (Graph.carried). */
function cacheInput(g: Graph, name: string, type: TensorType): Value {
  g.carried.add(name);
  return g.addInput(name, type);
}

function cacheOutput(g: Graph, name: string, value: Value): void {
  g.carried.add(name);
  g.setOutput(name, value);
}

const retype = (t: TensorType, shape: readonly Dim[], dtype: DType = t.dtype): TensorType => tensorType(dtype, shape);
const scope = (prefix: string) => prefix.split(".").join("/");

function paramsByName(module: IrModule): Map<string, Param> {
  return new Map(module.params.map((p) => [p.name, p]));
}

/** The token embedding table of the decoder component. */
export function embedTokensName(layout: DecoderLayout): string {
  return layout.family === "llama"
    ? `${layout.component}.embed_tokens.weight`
    : `${layout.component}.decoder.embed_tokens.weight`;
}

/**
 * input_ids [B, S] + image_features [N, hidden] → inputs_embeds [B, S, hidden]. Image-token
 * positions take the feature rows in order across the whole batch (row-major), not restarting per
 * row; a zero row in front of the features makes N = 0 (every decode step) gather nothing.
 */
export function embeddingGraph(module: IrModule, layout: DecoderLayout, imageToken: number, span: Span): Graph {
  const g = new Graph("embedding");
  const b = new Builder(g, paramsByName(module), span);
  const ids = g.addInput(NAMES.inputIds, tensorType("i64", [B, S]));
  if (layout.cross) {
    // Flamingo's images reach the decoder through cross-attention; <image> is an ordinary token here.
    const embedded = tensorType("f32", [B, S, layout.hidden]);
    g.setOutput(
      NAMES.inputsEmbeds,
      b.op("Embedding", [b.param(embedTokensName(layout)), ids], embedded, {}, layout.component),
    );
    return g;
  }
  const features = g.addInput(NAMES.imageFeatures, tensorType("f32", [N, layout.hidden]));
  const i64 = (shape: Dim[]) => tensorType("i64", shape);
  const isImage = b.op("Equal", [ids, b.constant(imageToken, "i64")], tensorType("bool", [B, S]));
  const ones = b.op("Cast", [isImage], i64([B, S]), { to: "i64" });
  // 1-based index of each image token in the batch: its count within the row plus the rows before it.
  const perRow = b.op("ReduceSum", [ones], i64([B, 1]), { axes: [1], keepdims: 1 });
  const before = b.op("Sub", [b.op("CumSum", [perRow], i64([B, 1]), { axis: 0 }), perRow], i64([B, 1]));
  const running = b.op("Add", [b.op("CumSum", [ones], i64([B, S]), { axis: 1 }), before], i64([B, S]));
  const zero = b.constant(0, "i64");
  const index = b.op("Where", [isImage, running, zero], i64([B, S]));
  const zeroRow = b.op("Expand", [b.constant(0, "f32")], tensorType("f32", [1, layout.hidden]), {
    shape: [1, layout.hidden],
  });
  const table = b.op("Concat", [zeroRow, features], tensorType("f32", [dimAdd(N, 1), layout.hidden]), { axis: 0 });
  const embedded = tensorType("f32", [B, S, layout.hidden]);
  const fromImage = b.op("Embedding", [table, index], embedded);
  // The image token may lie outside the vocabulary (llava-hf's 32000 in a 32000-row table).
  const textIds = b.op("Where", [isImage, zero, ids], i64([B, S]));
  const fromText = b.op("Embedding", [b.param(embedTokensName(layout)), textIds], embedded, {}, layout.component);
  const where = b.op("Unsqueeze", [isImage], tensorType("bool", [B, S, 1]), { axes: [2] });
  g.setOutput(NAMES.inputsEmbeds, b.op("Where", [where, fromImage, fromText], embedded));
  return g;
}

/**
 * LLaVA-NeXT's packing inside the vision graph: its features [crops, tokens, width] become rows,
 * the learned `newline` parameter the row after the last, and the graph returns the rows a new
 * `image_index` input [K] names (the runtime computes them from each image's size: base crop, the
 * unpadded grid in reading order, a newline after each row; runtime/generate/anyres.ts). The
 * crop count and K are free, so any number of images of any aspect ratio run in one call.
 */
export function anyResFeatures(module: IrModule, vision: Graph, newline: string, span: Span): void {
  const b = new Builder(vision, paramsByName(module), span);
  const out = vision.outputs[0]!;
  const [crops, tokens, width] = out.value.type.shape as [Dim, number, number];
  const rows = b.op("Reshape", [out.value], tensorType("f32", [dimMul(crops, tokens), width]), {
    shape: [-1, width],
  });
  const line = b.op("Reshape", [b.param(newline)], tensorType("f32", [1, width]), { shape: [1, width] });
  const table = b.op("Concat", [rows, line], tensorType("f32", [dimAdd(dimMul(crops, tokens), 1), width]), {
    axis: 0,
  });
  const index = vision.addInput(NAMES.imageIndex, tensorType("i64", [K]));
  out.value = b.op("Embedding", [table, index], tensorType("f32", [K, width]));
}

/** inputs_embeds, attention_mask, [position_ids], past → logits, present, one KvAttention per layer. */
export function decoderGraph(module: IrModule, layout: DecoderLayout, span: Span): Graph {
  const g = new Graph("decoder");
  const b = new Builder(g, paramsByName(module), span, layout.component);
  const { hidden, heads, kvHeads, headDim: d } = layout;
  const hiddenType = tensorType("f32", [B, S, hidden]);
  let x = g.addInput(NAMES.inputsEmbeds, hiddenType);
  const mask = g.addInput(NAMES.attentionMask, tensorType("i64", [B, T]));
  const positions = layout.positionIds ? g.addInput(NAMES.positionIds, tensorType("i64", [B, S])) : undefined;
  const pastType = tensorType("f32", [B, kvHeads, P, d]);
  const presentType = tensorType("f32", [B, kvHeads, T, d]);
  const pasts = Array.from({ length: layout.layers }, (_, i) => [
    cacheInput(g, NAMES.pastKey.replace("%d", String(i)), pastType),
    cacheInput(g, NAMES.pastValue.replace("%d", String(i)), pastType),
  ]);
  const presents: [Value, Value][] = [];
  const c = layout.component;
  const base = layout.family === "llama" ? c : `${c}.decoder`;
  const attention = (h: Value, prefix: string, i: number, bias: boolean, out: string) => {
    const q = b.linear(h, `${prefix}.q_proj`, bias);
    const k = b.linear(h, `${prefix}.k_proj`, bias);
    const v = b.linear(h, `${prefix}.v_proj`, bias);
    const node = g.addNode(
      "KvAttention",
      [q, k, v, pasts[i]![0], pasts[i]![1], mask, layout.kernel === "gqa" ? undefined : positions],
      [q.type, presentType, presentType],
      {
        heads,
        kv_heads: kvHeads,
        scale: 1 / Math.sqrt(d),
        rotary_theta: layout.theta,
        positions: layout.context,
        kernel: layout.kernel,
      },
      scope(prefix),
      span,
    );
    presents.push([node.outputs[1]!, node.outputs[2]!]);
    return b.linear(node.outputs[0]!, `${prefix}.${out}`, bias);
  };

  const gated = layout.cross ? crossAttention(g, b, layout.cross, hiddenType) : undefined;
  if (layout.family === "llama") {
    for (let i = 0; i < layout.layers; i++) {
      if (gated?.before.has(i)) x = gated.block(x, i);
      const l = `${base}.layers.${i}`;
      x = b.op(
        "Add",
        [x, attention(b.norm(x, `${l}.input_layernorm`, "rms", layout.eps), `${l}.self_attn`, i, false, "o_proj")],
        hiddenType,
      );
      const h = b.norm(x, `${l}.post_attention_layernorm`, "rms", layout.eps);
      const wide = tensorType("f32", [B, S, layout.mlp]);
      const gate = b.op("Silu", [b.linear(h, `${l}.mlp.gate_proj`, false)], wide);
      const up = b.linear(h, `${l}.mlp.up_proj`, false);
      x = b.op("Add", [x, b.linear(b.op("Mul", [gate, up], wide), `${l}.mlp.down_proj`, false)], hiddenType);
    }
    g.setOutput(NAMES.logits, b.linear(b.norm(x, `${base}.norm`, "rms", layout.eps), `${c}.lm_head`, false));
  } else {
    // OPT: learned positions, row p + 2 (HF's OPTLearnedPositionalEmbedding offset).
    const shifted = b.op("Add", [positions!, b.constant(2, "i64")], positions!.type);
    x = b.op(
      "Add",
      [x, b.op("Embedding", [b.param(`${base}.embed_positions.weight`), shifted], hiddenType)],
      hiddenType,
    );
    for (let i = 0; i < layout.layers; i++) {
      const l = `${base}.layers.${i}`;
      const wide = tensorType("f32", [B, S, layout.mlp]);
      const ffn = (h: Value) => b.linear(b.op("Relu", [b.linear(h, `${l}.fc1`, true)], wide), `${l}.fc2`, true);
      if (layout.preLn) {
        x = b.op(
          "Add",
          [
            x,
            attention(
              b.norm(x, `${l}.self_attn_layer_norm`, "layer", layout.eps),
              `${l}.self_attn`,
              i,
              true,
              "out_proj",
            ),
          ],
          hiddenType,
        );
        x = b.op("Add", [x, ffn(b.norm(x, `${l}.final_layer_norm`, "layer", layout.eps))], hiddenType);
      } else {
        x = b.norm(
          b.op("Add", [x, attention(x, `${l}.self_attn`, i, true, "out_proj")], hiddenType),
          `${l}.self_attn_layer_norm`,
          "layer",
          layout.eps,
        );
        x = b.norm(b.op("Add", [x, ffn(x)], hiddenType), `${l}.final_layer_norm`, "layer", layout.eps);
      }
    }
    if (layout.preLn) x = b.norm(x, `${base}.final_layer_norm`, "layer", layout.eps);
    // The head is tied to the token embeddings.
    const table = b.param(embedTokensName(layout));
    const head = b.op("Transpose", [table], tensorType("f32", [hidden, layout.vocab]), { perm: [1, 0] });
    g.setOutput(NAMES.logits, b.op("MatMul", [x, head], tensorType("f32", [B, S, layout.vocab])));
  }
  presents.forEach(([k, v], i) => {
    cacheOutput(g, NAMES.presentKey.replace("%d", String(i)), k);
    cacheOutput(g, NAMES.presentValue.replace("%d", String(i)), v);
  });
  gated?.presents.forEach(([k, v], j) => {
    cacheOutput(g, NAMES.presentCrossKey.replace("%d", String(j)), k);
    cacheOutput(g, NAMES.presentCrossValue.replace("%d", String(j)), v);
  });
  return g;
}

/**
 * Flamingo's gated blocks over a media cache: cross_attention_states [B, new media tokens, width]
 * (the prompt step's images; none later) are projected to keys/values once and appended to the
 * carried past_cross_key_values; media_index [B, S] (1-based image at or before each token, 0 =
 * none) keeps each token on its latest image's latents, as open_flamingo's only_attend_immediate_media.
 */
function crossAttention(g: Graph, b: Builder, cross: CrossLayout, hiddenType: TensorType) {
  const { heads: h, headDim: d, latents } = cross;
  const inner = h * d;
  const TM = dimAdd(PM, NM);
  const [batch, seq] = hiddenType.shape as [Dim, Dim];
  const states = g.addInput(NAMES.crossStates, tensorType("f32", [batch, NM, cross.mediaWidth]));
  const mediaIndex = g.addInput(NAMES.mediaIndex, tensorType("i64", [batch, seq]));
  const f32 = (shape: Dim[]) => tensorType("f32", shape);
  const i64 = (shape: Dim[]) => tensorType("i64", shape);
  // Media token m belongs to image m / latents + 1; a token sees the media of its own image only.
  const image = b.op(
    "Add",
    [
      b.op("Div", [b.op("Range", [], i64([TM]), { dtype: "i64" }), b.constant(latents, "i64")], i64([TM])),
      b.constant(1, "i64"),
    ],
    i64([TM]),
  );
  const same = b.op(
    "Equal",
    [b.op("Unsqueeze", [mediaIndex], i64([batch, seq, 1]), { axes: [2] }), image],
    tensorType("bool", [batch, seq, TM]),
  );
  const additive = b.op("Where", [same, b.constant(0, "f32"), b.constant(-10000, "f32")], f32([batch, seq, TM]));
  const mask = b.op("Unsqueeze", [additive], f32([batch, 1, seq, TM]), { axes: [1] });
  const hasMedia = b.op(
    "Unsqueeze",
    [
      b.op(
        "Cast",
        [b.op("Greater", [mediaIndex, b.constant(0, "i64")], tensorType("bool", [batch, seq]))],
        f32([batch, seq]),
        { to: "f32" },
      ),
    ],
    f32([batch, seq, 1]),
    { axes: [2] },
  );
  const pastType = f32([batch, h, PM, d]);
  const presents: [Value, Value][] = [];
  const heads = (x: Value) =>
    b.op("Transpose", [b.op("Reshape", [x], f32([batch, NM, h, d]))], f32([batch, h, NM, d]), { perm: [0, 2, 1, 3] });
  const merged = (x: Value) =>
    b.op("Reshape", [b.op("Transpose", [x], f32([batch, TM, h, d]), { perm: [0, 2, 1, 3] })], f32([batch, TM, inner]));
  const gate = (v: Value, param: string) => b.op("Mul", [v, b.op("Tanh", [b.param(param)], f32([1]))], hiddenType);
  const block = (x: Value, layer: number): Value => {
    const j = cross.layers.indexOf(layer);
    const at = `${cross.component}.gated_cross_attn_layers.${layer}`;
    const kv = b.linear(states, `${at}.attn.to_kv`, false);
    const half = (from: number) =>
      b.op("Slice", [kv], f32([batch, NM, inner]), { starts: [from], ends: [from + inner], axes: [2], steps: [1] });
    const past = [NAMES.pastCrossKey, NAMES.pastCrossValue].map((n) =>
      cacheInput(g, n.replace("%d", String(j)), pastType),
    );
    const [k, v] = [half(0), half(inner)].map((t, i) =>
      b.op("Concat", [past[i]!, heads(t)], f32([batch, h, TM, d]), { axis: 2 }),
    ) as [Value, Value];
    presents.push([k, v]);
    const q = b.linear(b.norm(x, `${at}.attn.norm`, "layer", 1e-5), `${at}.attn.to_q`, false);
    const attended = b.op("Attention", [q, merged(k), merged(v), mask], q.type, {
      causal: false,
      heads: h,
      kv_heads: h,
      rotary_theta: 0,
      scale: 1 / Math.sqrt(d),
    });
    const out = b.linear(b.op("Mul", [attended, hasMedia], attended.type), `${at}.attn.to_out`, false);
    x = b.op("Add", [x, gate(out, `${at}.attn_gate`)], hiddenType);
    const wide = f32([batch, seq, cross.ffnHidden]);
    const ff = b.linear(
      b.op("Gelu", [b.linear(b.norm(x, `${at}.ff.norm`, "layer", 1e-5), `${at}.ff.fc1`, false)], wide),
      `${at}.ff.fc2`,
      false,
    );
    return b.op("Add", [x, gate(ff, `${at}.ff_gate`)], hiddenType);
  };
  return { before: new Set(cross.layers), block, presents };
}

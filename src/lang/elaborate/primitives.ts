// Module primitives (linear, conv2d, embedding, layer_norm, rms_norm, batch_norm) and the
// attention core: parameters they own, and shape inference when called.

import { dimToString, isStatic, type Dim } from "../../ir/dims.js";
import type { Initializer, Param } from "../../ir/graph.js";
import { shapeToString, tensorType, typeToString, type DType } from "../../ir/types.js";
import {
  asBool,
  asInt,
  asNumber,
  asTensor,
  argSpan,
  constant,
  emit1,
  fail,
  failWith,
  needGraph,
  type Bound,
  type OpCtx,
} from "./ops.js";
import { checkAttentionShapes, checkRotaryHead, checkTableRows, checkWindow } from "./shape-rules.js";
import type { Val } from "./values.js";

export type MakeParam = (local: string, shape: number[], init: Initializer, buffer?: boolean, dtype?: DType) => Param;

/** Creates the parameters of a module primitive; returns its static configuration. */
export function instantiatePrimitive(name: string, a: Bound, make: MakeParam, span: OpCtx["span"]): Map<string, Val> {
  const n = (key: string, fallback?: number) =>
    a.has(key) && a.get(key)!.k !== "none" ? asInt(a.get(key), key, span) : (fallback ?? asInt(undefined, key, span));
  const flag = (key: string, fallback: boolean) => (a.has(key) ? asBool(a.get(key), key, span) : fallback);
  const positive = (key: string, v: number) => {
    if (v <= 0) failWith("VLM2323", { op: name, what: key, got: v }, span);
    return v;
  };
  const config = new Map<string, Val>(a);
  switch (name) {
    case "linear": {
      const inF = positive("in_features", n("in_features"));
      const outF = positive("out_features", n("out_features"));
      make("weight", [outF, inF], { kind: "normal", std: 0.02, mean: 0 });
      if (flag("bias", true)) make("bias", [outF], { kind: "zeros" });
      break;
    }
    case "conv2d": {
      const inC = positive("in_channels", n("in_channels"));
      const outC = positive("out_channels", n("out_channels"));
      const k = positive("kernel", n("kernel"));
      const groups = positive("groups", n("groups", 1));
      if (inC % groups !== 0 || outC % groups !== 0)
        fail("VLM2104", `conv2d: channels ${inC}→${outC} are not divisible by groups ${groups}`, span);
      make("weight", [outC, inC / groups, k, k], { kind: "normal", std: Math.sqrt(2 / (inC * k * k)), mean: 0 });
      if (flag("bias", true)) make("bias", [outC], { kind: "zeros" });
      break;
    }
    case "embedding":
      make("weight", [positive("num", n("num")), positive("dim", n("dim"))], { kind: "normal", std: 0.02, mean: 0 });
      break;
    case "layer_norm": {
      const d = positive("dim", n("dim"));
      make("weight", [d], { kind: "ones" });
      if (flag("bias", true)) make("bias", [d], { kind: "zeros" });
      break;
    }
    case "rms_norm": {
      // Gemma scales by (1 + weight) and starts its weight at zero: with an offset the scale starts at one.
      const offset = a.has("offset") ? asNumber(a.get("offset"), "offset", span) : 0;
      make(
        "weight",
        [positive("dim", n("dim"))],
        offset === 0 ? { kind: "ones" } : { kind: "full", value: 1 - offset },
      );
      break;
    }
    case "batch_norm": {
      const d = positive("dim", n("dim"));
      make("weight", [d], { kind: "ones" });
      make("bias", [d], { kind: "zeros" });
      make("running_mean", [d], { kind: "zeros" }, true);
      make("running_var", [d], { kind: "ones" }, true);
      break;
    }
    default:
      fail("VLM9001", `internal compiler error: no module primitive "${name}"`, span);
  }
  return config;
}

function lastDim(x: { type: { shape: readonly Dim[] } }): Dim {
  return x.type.shape[x.type.shape.length - 1]!;
}

/** Calls a module primitive's forward on `x`. */
export function callPrimitive(
  name: string,
  config: Map<string, Val>,
  params: Map<string, Param>,
  x: Val | undefined,
  ctx: OpCtx,
): Val {
  const g = needGraph(ctx, name);
  const input = asTensor(x, "input", ctx);
  const p = (local: string) => (params.has(local) ? g.paramValue(params.get(local)!) : undefined);
  const weight = params.get("weight")!;
  const eps = (fallback: number) => (config.has("eps") ? asNumber(config.get("eps"), "eps", ctx.span) : fallback);
  const feature = (expected: number, what: string) => {
    const d = lastDim(input);
    if (!isStatic(d) || d !== expected)
      fail(
        "VLM2102",
        `${name}: input ${shapeToString(input.type.shape)} has ${dimToString(d)} features on its last axis, but the ${what} expects ${expected}`,
        ctx.span,
      );
  };
  switch (name) {
    case "linear": {
      const [outF, inF] = weight.type.shape as number[];
      if (input.type.shape.length < 1) fail("VLM2107", `linear needs a tensor of rank ≥ 1`, ctx.span);
      feature(inF!, `linear layer (${inF}→${outF})`);
      return {
        k: "tensor",
        v: emit1(
          ctx,
          "Linear",
          [input, p("weight"), p("bias")],
          tensorType(input.type.dtype, [...input.type.shape.slice(0, -1), outF!]),
        ),
      };
    }
    case "conv2d": {
      const [outC, inPerGroup, k] = weight.type.shape as number[];
      if (input.type.shape.length !== 4)
        fail("VLM2107", `conv2d needs an NCHW tensor of rank 4, got ${shapeToString(input.type.shape)}`, ctx.span);
      const groups = config.has("groups") ? asInt(config.get("groups"), "groups", ctx.span) : 1;
      const c = input.type.shape[1]!;
      if (!isStatic(c) || c !== inPerGroup! * groups)
        fail(
          "VLM2102",
          `conv2d: input ${shapeToString(input.type.shape)} has ${dimToString(c)} channels, the convolution expects ${inPerGroup! * groups}`,
          ctx.span,
        );
      const stride = config.has("stride") ? asInt(config.get("stride"), "stride", ctx.span) : 1;
      const padding = config.has("padding") ? asInt(config.get("padding"), "padding", ctx.span) : 0;
      const sizes = input.type.shape.slice(2).filter(isStatic);
      checkWindow("conv2d", sizes, k!, stride, padding, false, ctx.span);
      const spatial = input.type.shape.slice(2).map((d) => {
        if (!isStatic(d))
          return failWith(
            "VLM2324",
            { op: "conv2d", what: "spatial sizes", shape: shapeToString(input.type.shape) },
            ctx.span,
          );
        const o = Math.floor((d + 2 * padding - k!) / stride) + 1;
        if (o <= 0) fail("VLM2104", `conv2d: input size ${d} is smaller than the kernel ${k}`, ctx.span);
        return o;
      });
      return {
        k: "tensor",
        v: emit1(
          ctx,
          "Conv",
          [input, p("weight"), p("bias")],
          tensorType(input.type.dtype, [input.type.shape[0]!, outC!, ...spatial]),
          { kernel: k!, stride, padding, groups },
        ),
      };
    }
    case "embedding": {
      if (input.type.dtype !== "i64" && input.type.dtype !== "i32")
        fail("VLM2106", `embedding needs integer ids (i64), got ${input.type.dtype}`, ctx.span);
      checkTableRows("embedding", weight.type.shape[0] as number, input, g.bounds, ctx.span);
      return {
        k: "tensor",
        v: emit1(
          ctx,
          "Embedding",
          [p("weight"), input],
          tensorType(weight.type.dtype, [...input.type.shape, weight.type.shape[1]!]),
        ),
      };
    }
    case "layer_norm":
      feature(weight.type.shape[0] as number, "layer norm");
      return {
        k: "tensor",
        v: emit1(ctx, "LayerNorm", [input, p("weight"), p("bias")], input.type, { eps: eps(1e-5) }),
      };
    case "rms_norm": {
      feature(weight.type.shape[0] as number, "RMS norm");
      const offset = config.has("offset") ? asNumber(config.get("offset"), "offset", ctx.span) : 0;
      // (offset + weight) is an ordinary Add on the weight: frozen, it is precomputed, and the
      // norm stays the RMSNorm the fusions know.
      const w = p("weight")!;
      const scale = offset === 0 ? w : emit1(ctx, "Add", [w, constant(ctx, offset, w.type.dtype)], w.type);
      return { k: "tensor", v: emit1(ctx, "RMSNorm", [input, scale], input.type, { eps: eps(1e-6) }) };
    }
    case "batch_norm": {
      const c = input.type.shape[1];
      if (input.type.shape.length < 2 || c === undefined || !isStatic(c) || c !== weight.type.shape[0])
        fail(
          "VLM2102",
          `batch_norm: input ${shapeToString(input.type.shape)} does not have ${weight.type.shape[0]} channels on axis 1`,
          ctx.span,
        );
      return {
        k: "tensor",
        v: emit1(ctx, "BatchNorm", [input, p("weight"), p("bias"), p("running_mean"), p("running_var")], input.type, {
          eps: eps(1e-5),
        }),
      };
    }
    default:
      return fail("VLM9001", `internal compiler error: no module primitive "${name}"`, ctx.span);
  }
}

/** Scaled dot-product attention over projected q [B,Tq,H·d], k/v [B,Tk,KV·d]. */
export function attention(a: Bound, ctx: OpCtx): Val {
  const q = asTensor(a.get("q"), "q", ctx);
  const k = asTensor(a.get("k"), "k", ctx);
  const v = asTensor(a.get("v"), "v", ctx);
  const heads = asInt(a.get("heads"), "heads", argSpan(a, "heads", ctx));
  const kvArg = a.get("kv_heads");
  const kvHeads = kvArg && kvArg.k !== "none" ? asInt(kvArg, "kv_heads", argSpan(a, "kv_heads", ctx)) : heads;
  for (const [nm, t] of [
    ["q", q],
    ["k", k],
    ["v", v],
  ] as const) {
    if (t.type.shape.length !== 3)
      fail("VLM2107", `attention: ${nm} must be [batch, tokens, width], got ${shapeToString(t.type.shape)}`, ctx.span);
  }
  const qw = lastDim(q);
  const kw = lastDim(k);
  const vw = lastDim(v);
  if (!isStatic(qw) || !isStatic(kw) || !isStatic(vw))
    return failWith(
      "VLM2324",
      { op: "attention", what: "widths", shape: [q, k, v].map((t) => shapeToString(t.type.shape)).join(", ") },
      ctx.span,
    );
  if (heads <= 0 || qw % heads !== 0)
    fail("VLM2103", `attention: width ${qw} is not divisible by ${heads} heads`, ctx.span);
  if (kvHeads <= 0 || heads % kvHeads !== 0)
    fail("VLM2103", `attention: ${heads} query heads are not divisible by ${kvHeads} key/value heads`, ctx.span);
  const headDim = qw / heads;
  if (kw !== kvHeads * headDim)
    fail(
      "VLM2102",
      `attention: keys are ${kw} wide; ${kvHeads} key/value heads of ${headDim} need ${kvHeads * headDim}`,
      ctx.span,
    );
  if (vw % kvHeads !== 0)
    fail("VLM2103", `attention: value width ${vw} is not divisible by ${kvHeads} heads`, ctx.span);
  if (!sameDim(k.type.shape[1]!, v.type.shape[1]!))
    fail(
      "VLM2102",
      `attention: keys ${shapeToString(k.type.shape)} and values ${shapeToString(v.type.shape)} have different token counts`,
      ctx.span,
    );
  const causal = a.has("causal") ? asBool(a.get("causal"), "causal", argSpan(a, "causal", ctx)) : false;
  const scaleArg = a.get("scale");
  const scale =
    scaleArg && scaleArg.k !== "none" ? asNumber(scaleArg, "scale", argSpan(a, "scale", ctx)) : 1 / Math.sqrt(headDim);
  const rotArg = a.get("rotary");
  const rotary = rotArg && rotArg.k !== "none" ? asNumber(rotArg, "rotary", argSpan(a, "rotary", ctx)) : 0;
  const maskArg = a.get("mask");
  const mask = maskArg && maskArg.k !== "none" ? asTensor(maskArg, "mask", ctx) : undefined;
  // Prefix-LM (PaliGemma): the first `prefix` keys are seen by every query, the rest causally.
  const prefixArg = a.get("prefix");
  const prefix =
    prefixArg?.k === "int" && isStatic(prefixArg.v)
      ? constant(ctx, prefixArg.v, "i64")
      : prefixArg && prefixArg.k !== "none"
        ? asTensor(prefixArg, "prefix", ctx)
        : undefined;
  if (prefix) {
    if (!causal) failWith("VLM2328", {}, ctx.span);
    const batch = q.type.shape[0]!;
    const perBatch = prefix.type.shape.length === 1 && sameDim(prefix.type.shape[0]!, batch);
    if (prefix.type.dtype !== "i64" || (prefix.type.shape.length !== 0 && !perBatch))
      failWith("VLM2329", { got: typeToString(prefix.type), batch: dimToString(batch) }, ctx.span);
  }
  if (mask && mask.type.shape.length > 4)
    fail(
      "VLM2107",
      `attention: the mask must broadcast to [batch, heads, q, k], got ${shapeToString(mask.type.shape)}`,
      ctx.span,
    );
  checkAttentionShapes(q, k, v, heads, mask, ctx.span);
  checkRotaryHead(headDim, rotary !== 0, ctx.span);
  const outWidth = (vw / kvHeads) * heads;
  return {
    k: "tensor",
    v: emit1(
      ctx,
      "Attention",
      prefix ? [q, k, v, mask, prefix] : [q, k, v, mask],
      tensorType(q.type.dtype, [q.type.shape[0]!, q.type.shape[1]!, outWidth]),
      { heads, kv_heads: kvHeads, causal, scale, rotary_theta: rotary },
    ),
  };
}

function sameDim(a: Dim, b: Dim): boolean {
  return dimToString(a) === dimToString(b);
}

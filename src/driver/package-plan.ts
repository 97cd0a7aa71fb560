// A model's `package { … }` declaration checked against the model: which graph is the vision graph,
// which std block the decoder is (and so how the decoder with a cache is built), and the facts the
// compiler proves before building anything — image-token slots equal the vision graph's tokens,
// the prompt bound plus new tokens fit the decoder's context — each failure at the spec line.

import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { Span } from "../diagnostics/source.js";
import { isStatic } from "../ir/dims.js";
import type { ComponentInfo, Graph, IrModule, PackagePlan } from "../ir/graph.js";
import type { CrossLayout, DecoderLayout } from "../codegen/package/graphs.js";
import type { AnyResLayout, PackageFamily } from "../onnx/manifest.js";
import type { Target } from "../target/target.js";
import { componentOwner, DTYPE_OF, resolvePrecision, type Precision } from "../passes/index.js";

/** GroupQueryAttention's CPU kernel wants head sizes in multiples of 16 for its own rotary. */
const GQA_ROTARY_HEAD_MULTIPLE = 16;

export interface PackageLayout {
  readonly family: PackageFamily;
  readonly placement: "image-tokens" | "prefix" | "cross-attention";
  readonly vision: Graph;
  /** The vision graph's pixels per image (AnyRes: per crop): [channels, height, width]. */
  readonly pixelShape: readonly [number, number, number];
  /** Feature rows per image (AnyRes: per crop; an image gives a variable number, see `anyres`). */
  readonly tokensPerImage: number;
  /** LLaVA-NeXT's AnyRes: the pinpoints, crop and feature grid, and the model parameter appended after each row. */
  readonly anyres?: AnyResLayout & { readonly newline: string };
  readonly imageToken: number;
  readonly promptTokens: number;
  readonly newTokens: number;
  readonly decoder: DecoderLayout;
  readonly span: Span;
  /** Where each entry was written, for diagnostics found later (checkpoint files). */
  readonly spans: ReadonlyMap<string, Span>;
}

const num = (c: ComponentInfo, key: string, fallback?: number): number | undefined => {
  const v = c.config?.[key];
  return typeof v === "number" ? v : fallback;
};

/** The decoder of a package from its component's std block and arguments, or why it cannot be one. */
function decoderLayout(c: ComponentInfo, target: Target, precision: Precision): DecoderLayout | string {
  if (c.block !== "llama" && c.block !== "opt")
    return `component ${c.name} is a ${c.block}; a package decoder is a std llama or opt block`;
  // onnxruntime-node, which runs packages (src/runtime/generate/), has no bfloat16 tensors to feed a cache with.
  if (precision === "bf16")
    return `component ${c.name} would run in bf16, and packages are fp32 or fp16: onnxruntime-node has no bfloat16 tensors to carry the cache in; use fp16`;
  const dtype = DTYPE_OF[precision];
  const [vocab, width, depth, heads, mlp, context] = ["vocab", "width", "depth", "heads", "mlp", "context"].map((k) =>
    num(c, k),
  );
  if ([vocab, width, depth, heads, mlp, context].some((v) => v === undefined))
    return `component ${c.name} lacks one of vocab, width, depth, heads, mlp, context`;
  const headDim = width! / heads!;
  if (c.block === "llama") {
    const theta = num(c, "theta", 10000)!;
    // GroupQueryAttention where the target has a kernel for the decoder's dtype and the head size suits its rotary.
    const gqa =
      target.missingKernel("GroupQueryAttention", dtype) === undefined && headDim % GQA_ROTARY_HEAD_MULTIPLE === 0;
    return {
      family: "llama",
      component: c.name,
      vocab: vocab!,
      hidden: width!,
      layers: depth!,
      heads: heads!,
      kvHeads: num(c, "kv_heads", heads)!,
      headDim,
      mlp: mlp!,
      context: context!,
      eps: num(c, "eps", 1e-6)!,
      theta,
      preLn: true,
      dtype,
      kernel: gqa ? "gqa" : "plain",
      positionIds: !gqa,
    };
  }
  if (num(c, "embed_dim", width) !== width)
    return `component ${c.name}: OPT with embed_dim ≠ width (350m) has no package decoder yet`;
  return {
    family: "opt",
    component: c.name,
    vocab: vocab!,
    hidden: width!,
    layers: depth!,
    heads: heads!,
    kvHeads: heads!,
    headDim,
    mlp: mlp!,
    context: context!,
    eps: 1e-5,
    theta: 0,
    preLn: c.config?.["pre_ln"] !== false,
    dtype,
    // MultiHeadAttention where the target has a kernel for the dtype (ort-cpu fp32, ort-cuda).
    kernel: target.missingKernel("MultiHeadAttention", dtype) === undefined ? "mha" : "plain",
    positionIds: true,
  };
}

/** Flamingo's gated cross-attention from a std flamingo_lm component, or why it cannot be one. */
function crossLayout(c: ComponentInfo, decoder: DecoderLayout): CrossLayout | string {
  if (c.block !== "flamingo_lm")
    return `component ${c.name} is a ${c.block}; package cross-attention is a std flamingo_lm block`;
  if (decoder.family !== "llama")
    return `Flamingo packages need a llama decoder, and ${decoder.component} is an ${decoder.family}`;
  const [width, depth, every, mediaWidth, heads, headDim, mult] = [
    "width",
    "depth",
    "cross_every",
    "media_width",
    "heads",
    "head_dim",
    "ffn_mult",
  ].map((k) => num(c, k));
  if ([width, depth, every, mediaWidth, heads, headDim, mult].some((v) => v === undefined))
    return `component ${c.name} lacks one of its flamingo_lm arguments`;
  if (width !== decoder.hidden || depth !== decoder.layers)
    return `component ${c.name} is built for width ${width} and depth ${depth}, but ${decoder.component} has ${decoder.hidden} and ${decoder.layers}`;
  return {
    component: c.name,
    layers: Array.from({ length: depth! }, (_, i) => i).filter((i) => (i + 1) % every! === 0),
    heads: heads!,
    headDim: headDim!,
    mediaWidth: mediaWidth!,
    ffnHidden: width! * mult!,
    latents: 0, // set from the vision graph's tokens once they are known
  };
}

/**
 * The checked layout of a model's package, or the diagnostics that say why there is none. The
 * decoder's precision is `--precision` (`precision`) or its component's policy.
 */
export function planPackage(module: IrModule, target: Target, precision?: Precision): PackageLayout | Diagnostic[] {
  const plan: PackagePlan | undefined = module.package;
  if (!plan) return [diagnostic("VLM3203", `model ${module.name} declares no package { … }; see docs/packages.md`)];
  const entry = (key: string) => plan.entries.get(key);
  const spanOf = (key: string) => entry(key)?.span ?? plan.span;
  const problems: Diagnostic[] = [];
  const cannot = (key: string, message: string) => problems.push(diagnostic("VLM3203", message, spanOf(key)));

  const vision = module.graphs.find((g) => g.name === entry("vision")?.value);
  const component = module.components.find((c) => c.name === entry("decoder")?.value);
  if (!vision || !component) {
    cannot(vision ? "decoder" : "vision", `the package's ${vision ? "decoder" : "vision graph"} was not built`);
    return problems;
  }
  const plain = decoderLayout(
    component,
    target,
    resolvePrecision(module.policies, componentOwner(module, component.name), precision).value,
  );
  if (typeof plain === "string") {
    cannot("decoder", plain);
    return problems;
  }
  const crossComponent = entry("cross") && module.components.find((c) => c.name === entry("cross")?.value);
  const cross = crossComponent ? crossLayout(crossComponent, plain) : undefined;
  if (typeof cross === "string") {
    cannot("cross", cross);
    return problems;
  }
  const decoder: DecoderLayout = cross ? { ...plain, cross } : plain;
  const featureWidth = cross ? cross.mediaWidth : decoder.hidden;
  const [pixels] = vision.inputs;
  const out = vision.outputs[0];
  if (vision.inputs.length !== 1 || vision.outputs.length !== 1 || !pixels || !out) {
    cannot("vision", `vision graph ${vision.name} must take one pixel input and return one feature tensor`);
    return problems;
  }
  const pixelDims = pixels.type.shape.slice(-3);
  const outShape = out.value.type.shape;
  if (pixels.type.shape.length !== 4)
    cannot(
      "vision",
      `vision graph ${vision.name} takes pixels of rank ${pixels.type.shape.length}; a package needs [B, C, H, W] (LLaVA-NeXT: one crop per row, with newline and pinpoints)`,
    );
  else if (!pixelDims.every(isStatic))
    cannot(
      "vision",
      `vision graph ${vision.name} takes pixels of symbolic size; a package needs fixed channels, height and width`,
    );
  if (outShape.length !== 3 || !isStatic(outShape[1]!) || outShape[2] !== featureWidth)
    cannot(
      "vision",
      `vision graph ${vision.name} returns ${out.name} [${outShape.length} dims]; the decoder needs [B, tokens, ${featureWidth}] with a fixed token count`,
    );
  if (problems.length > 0) return problems;

  const tokens = outShape[1] as number;
  const int = (key: string) => entry(key)?.value as number;
  const placement = cross
    ? "cross-attention"
    : entry("placement")?.value === "prefix" || (!entry("placement") && decoder.family === "opt")
      ? "prefix"
      : "image-tokens";
  if (int("image_tokens") !== tokens)
    problems.push(
      diagnostic(
        "VLM3201",
        `image_tokens is ${int("image_tokens")}, but vision graph ${vision.name} gives ${tokens} tokens per image`,
        spanOf("image_tokens"),
      ),
    );
  const anyres =
    entry("newline") || entry("pinpoints") ? anyResLayout(module, vision, tokens, featureWidth, problems) : undefined;
  if (anyres && !cross && placement === "image-tokens") {
    const most = maxAnyResTokens(anyres);
    if (most > int("prompt"))
      problems.push(
        diagnostic(
          "VLM3205",
          `prompt is ${int("prompt")}, but one image can take up to ${most} AnyRes tokens (base crop + the largest pinpoint's grid with a newline per row)`,
          spanOf("prompt"),
          { hint: "raise prompt (and lower new_tokens to fit the context), or drop the largest pinpoints" },
        ),
      );
  } else if (anyres)
    cannot("newline", "AnyRes (newline, pinpoints) needs a LLaVA package: image tokens placed in the prompt");
  const image = placement === "prefix" ? tokens : 0;
  const total = int("prompt") + image + int("new_tokens");
  if (total > decoder.context)
    problems.push(
      diagnostic(
        "VLM3202",
        `prompt ${int("prompt")}${image ? ` + ${image} image tokens` : ""} + new_tokens ${int("new_tokens")} = ${total} exceeds ${component.name}'s context of ${decoder.context}`,
        spanOf("new_tokens"),
      ),
    );
  for (const key of ["image_token", "prompt", "new_tokens"])
    if (int(key) < (key === "new_tokens" ? 1 : 0))
      problems.push(
        diagnostic(
          "VLM3200",
          `package ${key} must be ${key === "new_tokens" ? "at least 1" : "non-negative"}`,
          spanOf(key),
        ),
      );
  if (problems.length > 0) return problems;
  const withLatents: DecoderLayout = decoder.cross
    ? { ...decoder, cross: { ...decoder.cross, latents: tokens } }
    : decoder;
  return {
    family: cross ? "flamingo" : decoder.family === "opt" ? "blip2" : anyres ? "llava-next" : "llava",
    placement,
    vision,
    pixelShape: pixelDims as [number, number, number],
    tokensPerImage: tokens,
    ...(anyres ? { anyres } : {}),
    imageToken: int("image_token"),
    promptTokens: int("prompt"),
    newTokens: int("new_tokens"),
    decoder: withLatents,
    span: plan.span,
    spans: new Map([...plan.entries].map(([k, e]) => [k, e.span])),
  };
}

/**
 * The AnyRes facts of a package that names `newline` and `pinpoints`: the vision graph takes one
 * square crop per batch row ([B, C, S, S]) and gives a square grid of features per crop; the
 * newline is a model parameter of the feature width; every pinpoint is a grid of whole crops.
 */
function anyResLayout(
  module: IrModule,
  vision: Graph,
  tokens: number,
  width: number,
  problems: Diagnostic[],
): PackageLayout["anyres"] {
  const plan = module.package!;
  const at = (key: string) => plan.entries.get(key)?.span ?? plan.span;
  const wrong = (key: string, message: string) => {
    problems.push(diagnostic("VLM3204", message, at(key)));
    return undefined;
  };
  const newline = plan.entries.get("newline")?.value;
  const pinpoints = plan.entries.get("pinpoints")?.value as readonly (readonly [number, number])[] | undefined;
  if (typeof newline !== "string" || pinpoints === undefined)
    return wrong(newline === undefined ? "pinpoints" : "newline", "AnyRes needs both newline and pinpoints");
  const shape = vision.inputs[0]!.type.shape;
  const [, , h, w] = shape;
  if (shape.length !== 4 || h !== w)
    return wrong(
      "vision",
      `an AnyRes vision graph takes one square crop per row, [B, C, S, S]; ${vision.name} takes [${shape.join(", ")}]`,
    );
  const side = Math.round(Math.sqrt(tokens));
  if (side * side !== tokens)
    return wrong(
      "vision",
      `vision graph ${vision.name} gives ${tokens} tokens per crop, not a square grid of features (a class token left in?)`,
    );
  const param = module.params.find((p) => p.name === newline);
  if (param?.type.shape.length !== 1 || param.type.shape[0] !== width)
    return wrong("newline", `newline ${newline} must be a parameter of shape [${width}] (the feature width)`);
  const crop = h as number;
  const odd = pinpoints.find(([ph, pw]) => ph % crop !== 0 || pw % crop !== 0);
  if (odd) return wrong("pinpoints", `pinpoint [${odd.join(", ")}] is not a grid of whole ${crop} px crops`);
  return { pinpoints, cropSize: crop, patchesPerSide: side, newline };
}

/** The most rows one image can give: the base crop and the largest grid, nothing unpadded, a newline per row. */
export function maxAnyResTokens(a: AnyResLayout): number {
  const side = a.patchesPerSide;
  const grid = a.pinpoints.map(([h, w]) => (h / a.cropSize) * side * ((w / a.cropSize) * side + 1));
  return side * side + Math.max(...grid);
}

/** Bytes of one cached value: the decoder's dtype (fp32, or fp16 in an fp16 package). */
export function cacheValueBytes(d: DecoderLayout): number {
  return d.dtype === "f32" ? 4 : 2;
}

/** Bytes of key/value cache one token adds: layers × (key + value) × kv heads × head size × value bytes. */
export function kvBytesPerToken(d: DecoderLayout): number {
  return d.layers * 2 * d.kvHeads * d.headDim * cacheValueBytes(d);
}

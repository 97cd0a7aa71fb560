// Signatures of the primitives implemented in TypeScript. Name resolution checks calls against
// this table; the elaborator implements each entry (a test keeps the two in step).

export interface ParamSig {
  readonly name: string;
  readonly required: boolean;
  /** The value an omitted optional parameter takes, as the reference shows it. */
  readonly default?: string;
}

export type BuiltinKind =
  | "module" // owns parameters: declared as a sub-module, then called in forward
  | "function" // pure op on tensors or compile-time values, called in forward
  | "initializer" // right-hand side of `param name: [..] = init`
  | "dtype"; // names a tensor element type in an input type

/** The reference entry of a primitive (docs/language.md is generated from these). */
export interface BuiltinDoc {
  /** Which section of the reference it belongs to. */
  readonly group: "module" | "activation" | "tensor" | "compile-time" | "initializer" | "dtype";
  /** What it computes. */
  readonly text: string;
  /** Shapes in and out, where they say more than "same as x". */
  readonly shapes?: string;
  /**
   * Forward-body lines that use it and set `y`. They run in the reference's harness model, whose
   * inputs are `x: f32[B, T, 64]`, `img: f32[B, 3, 32, 32]` and `ids: i64[B, T]`; the docs test
   * compiles every one.
   */
  readonly example: string;
  /** Model members the example needs (a module primitive's declaration, a `param`). */
  readonly members?: string;
}

export interface BuiltinSig {
  readonly kind: BuiltinKind;
  readonly params: readonly ParamSig[];
  /** Extra positional arguments are collected (concat's tensors, max's operands). */
  readonly variadic?: boolean;
  /** The forward signature of a module primitive. */
  readonly forward?: readonly ParamSig[];
  readonly doc: BuiltinDoc;
}

const req = (...names: string[]): ParamSig[] => names.map((name) => ({ name, required: true }));
/** Optional parameters, written `name=default`. */
const opt = (...specs: string[]): ParamSig[] =>
  specs.map((spec) => {
    const [name, value] = spec.split("=") as [string, string | undefined];
    return value === undefined ? { name, required: false } : { name, required: false, default: value };
  });

const unary = (text: string, example = "y = NAME(x)"): BuiltinSig => ({
  kind: "function",
  params: req("x"),
  doc: { group: "activation", text, example },
});
const dtype = (text: string, example: string): BuiltinSig => ({
  kind: "dtype",
  params: [],
  doc: { group: "dtype", text, example },
});
const fn = (params: ParamSig[], doc: BuiltinDoc, variadic = false): BuiltinSig => ({
  kind: "function",
  params,
  doc,
  ...(variadic ? { variadic } : {}),
});
const init = (params: ParamSig[], text: string, members: string): BuiltinSig => ({
  kind: "initializer",
  params,
  doc: { group: "initializer", text, members, example: "y = x * scale" },
});

export const BUILTINS: ReadonlyMap<string, BuiltinSig> = new Map<string, BuiltinSig>([
  // modules (own parameters; names follow PyTorch so checkpoints map directly)
  [
    "linear",
    {
      kind: "module",
      params: [...req("in_features", "out_features"), ...opt("bias=true")],
      forward: req("x"),
      doc: {
        group: "module",
        text: "x·Wᵀ + b, as torch.nn.Linear. Parameters `weight` [out_features, in_features] (normal, std 0.02) and `bias` [out_features] (zeros).",
        shapes: "x [..., in_features] → [..., out_features]",
        members: "proj = linear(64, 32)",
        example: "y = proj(x)",
      },
    },
  ],
  [
    "conv2d",
    {
      kind: "module",
      params: [
        ...req("in_channels", "out_channels", "kernel"),
        ...opt("stride=1", "padding=0", "groups=1", "bias=true"),
      ],
      forward: req("x"),
      doc: {
        group: "module",
        text: "2-D convolution with a square kernel, as torch.nn.Conv2d. `groups` splits the channels (`groups: in_channels` is depthwise). Parameters `weight` [out_channels, in_channels / groups, kernel, kernel] and `bias` [out_channels].",
        shapes:
          "x [N, in_channels, H, W] → [N, out_channels, ⌊(H + 2·padding − kernel) / stride⌋ + 1, same for W]; H and W must be known",
        members: "patches = conv2d(3, 16, 4, stride: 4)\ndepthwise = conv2d(16, 16, 3, padding: 1, groups: 16)",
        example: "y = depthwise(patches(img)) // [B, 16, 8, 8]",
      },
    },
  ],
  [
    "embedding",
    {
      kind: "module",
      params: req("num", "dim"),
      forward: req("ids"),
      doc: {
        group: "module",
        text: "Rows of a table, as torch.nn.Embedding. Parameter `weight` [num, dim]. Positions are `embedding(context, width)` called on `arange(n)`.",
        shapes: "ids [...] (i64 or i32) → [..., dim]",
        members: "tok = embedding(100, 64)",
        example: "y = tok(ids) + x",
      },
    },
  ],
  [
    "layer_norm",
    {
      kind: "module",
      params: [...req("dim"), ...opt("eps=1e-5", "bias=true")],
      forward: req("x"),
      doc: {
        group: "module",
        text: "Layer normalisation over the last axis, as torch.nn.LayerNorm: (x − mean) / √(var + eps) · weight + bias.",
        shapes: "x [..., dim] → same",
        members: "norm = layer_norm(64, eps: 1e-6)",
        example: "y = norm(x)",
      },
    },
  ],
  [
    "rms_norm",
    {
      kind: "module",
      params: [...req("dim"), ...opt("eps=1e-6", "offset=0.0")],
      forward: req("x"),
      doc: {
        group: "module",
        text: "RMS normalisation over the last axis: x / √(mean(x²) + eps) · (offset + weight), as LLaMA's RMSNorm (offset 0) and Gemma's (offset 1.0: HF stores weight − 1 and its weight starts at zero). The weight starts at 1 − offset, so the scale starts at one.",
        shapes: "x [..., dim] → same",
        members: "norm = rms_norm(64)\ngemma_norm = rms_norm(64, offset: 1.0)",
        example: "y = gemma_norm(norm(x))",
      },
    },
  ],
  [
    "batch_norm",
    {
      kind: "module",
      params: [...req("dim"), ...opt("eps=1e-5")],
      forward: req("x"),
      doc: {
        group: "module",
        text: "Batch normalisation in inference mode over axis 1, as torch.nn.BatchNorm2d in eval(): parameters `weight`, `bias` and buffers `running_mean`, `running_var` [dim].",
        shapes: "x [N, dim, ...] → same",
        members: "bn = batch_norm(3)",
        example: "y = bn(img)",
      },
    },
  ],

  // activations
  ["gelu", unary("GELU with the exact erf: x·½·(1 + erf(x / √2)), as torch's gelu.")],
  [
    "gelu_tanh",
    unary("GELU's tanh approximation, as torch's gelu(approximate='tanh') (HF gelu_new, gelu_pytorch_tanh)."),
  ],
  ["quick_gelu", unary("x·σ(1.702·x), CLIP's QuickGELU.")],
  ["relu", unary("max(x, 0).")],
  ["squared_relu", unary("relu(x)², Primer's squared ReLU.")],
  ["silu", unary("x·σ(x) (swish).")],
  ["tanh", unary("Hyperbolic tangent.")],
  ["sigmoid", unary("σ(x) = 1 / (1 + e⁻ˣ).")],
  ["exp", unary("eˣ, elementwise.")],
  ["sqrt", unary("√x, elementwise.", "y = sqrt(abs(x))")],
  ["log", unary("Natural logarithm, elementwise.", "y = log(exp(x))")],
  ["abs", unary("|x|, elementwise.")],
  ["hardswish", unary("x·relu6(x + 3) / 6, as torch's hardswish (MobileNetV3, MobileVLM's LDP).")],
  ["hardsigmoid", unary("relu6(x + 3) / 6, as torch's hardsigmoid (MobileNetV3's squeeze-excite gate).")],
  ["relu6", unary("min(max(x, 0), 6), as torch's relu6.")],
  [
    "clamp",
    fn([...req("x"), ...opt("min", "max")], {
      group: "activation",
      text: "min(max(x, min), max), as torch.clamp; give `min:`, `max:` or both (floating-point tensors).",
      example: "y = clamp(x, min: -1.0, max: 1.0)",
    }),
  ],

  // tensor ops
  [
    "attention",
    fn(
      [...req("q", "k", "v", "heads"), ...opt("kv_heads=heads", "causal=false", "mask", "rotary", "scale", "prefix")],
      {
        group: "tensor",
        text:
          "Scaled dot-product attention over already projected q, k, v, split into heads: softmax(q·kᵀ·scale + mask)·v. " +
          "`kv_heads` < `heads` shares each key/value head among a group of query heads (grouped-query attention). " +
          "`causal: true` lets query i see keys j ≤ i (aligned at the end when there are fewer queries than keys, as with a cache). " +
          "`prefix: n` (with causal) also lets every query see the first n keys: prefix-LM attention as in PaliGemma; n is an integer, a size such as `256 + P`, or an i64 [B] tensor of per-sample lengths. " +
          "`mask` is a bool tensor (true = may attend) or an additive float tensor, broadcast to [B, heads, Tq, Tk]. " +
          "`rotary: θ` applies rotary position embeddings (HF's rotate_half convention) to q and k. `scale` defaults to 1/√(head size). " +
          "Projections are not included: declare `linear`s and call them.",
        shapes: "q [B, Tq, heads·d], k [B, Tk, kv_heads·d], v [B, Tk, kv_heads·dv] → [B, Tq, heads·dv]",
        members: "q = linear(64, 64)\nk = linear(64, 16)\nv = linear(64, 16)",
        example: "y = attention(q(x), k(x), v(x), heads: 4, kv_heads: 1, causal: true, prefix: 2, rotary: 10000.0)",
      },
    ),
  ],
  [
    "matmul",
    fn(req("a", "b"), {
      group: "tensor",
      text: "Matrix product with batch broadcasting, as torch.matmul; `a @ b` is the same.",
      shapes: "a [..., n, k], b [..., k, m] → [..., n, m]",
      example: "y = matmul(x, transpose(x, [0, 2, 1])) // [B, T, T]",
    }),
  ],
  [
    "softmax",
    fn([...req("x"), ...opt("axis=-1")], {
      group: "tensor",
      text: "Softmax along `axis`.",
      example: "y = softmax(x, axis: -1)",
    }),
  ],
  [
    "concat",
    fn(
      opt("axis=0"),
      {
        group: "tensor",
        text: "Joins tensors (given as operands or one list) along `axis`; the other axes must match.",
        shapes: "[B, T₁, C], [B, T₂, C] with axis 1 → [B, T₁ + T₂, C]",
        example: "y = concat(x[:, :1], x, axis: 1) // [B, T + 1, 64]",
      },
      true,
    ),
  ],
  [
    "stack",
    fn(
      opt("axis=0"),
      {
        group: "tensor",
        text: "Stacks equal-shaped tensors along a new axis.",
        shapes: "n × [B, T, C] with axis 1 → [B, n, T, C]",
        example: "y = stack(x, x, axis: 1)",
      },
      true,
    ),
  ],
  [
    "reshape",
    fn(req("x", "shape"), {
      group: "tensor",
      text: "A new shape with the same number of elements; sizes may be symbols (`B`, `T`) and one may be -1 (inferred).",
      example: "y = reshape(x, [B, T, 4, 16])",
    }),
  ],
  [
    "transpose",
    fn(req("x", "perm"), {
      group: "tensor",
      text: "Permutes the axes: output axis i is input axis perm[i].",
      example: "y = transpose(x, [0, 2, 1]) // [B, 64, T]",
    }),
  ],
  [
    "flatten",
    fn([...req("x"), ...opt("start=1")], {
      group: "tensor",
      text: "Merges the axes from `start` to the last into one, as torch.flatten(x, start).",
      example: "y = transpose(flatten(img, start: 2), [0, 2, 1]) // [B, 1024, 3]",
    }),
  ],
  [
    "unsqueeze",
    fn(req("x", "axis"), {
      group: "tensor",
      text: "Inserts an axis of size 1 at `axis`.",
      example: "y = unsqueeze(x, 1) // [B, 1, T, 64]",
    }),
  ],
  [
    "expand",
    fn(req("x", "shape"), {
      group: "tensor",
      text: "Broadcasts to `shape` (size-1 axes grow); `expand(reshape(token, [1, 1, C]), [B, 1, C])` copies a learned token to every sample. A number broadcasts too: `expand(1.0, [B, T])` is a tensor of ones.",
      example: "y = x + unsqueeze(expand(1.0, [B, T]), 2)",
    }),
  ],
  [
    "mean",
    fn([...req("x"), ...opt("axis", "keepdim=false")], {
      group: "tensor",
      text: "Mean over `axis` (an integer or a list; every axis when omitted).",
      example: "y = mean(x, axis: 1) // [B, 64]",
    }),
  ],
  [
    "sum",
    fn([...req("x"), ...opt("axis", "keepdim=false")], {
      group: "tensor",
      text: "Sum over `axis` (an integer or a list; every axis when omitted).",
      example: "y = sum(x, axis: [1, 2], keepdim: true) // [B, 1, 1]",
    }),
  ],
  [
    "reduce_max",
    fn([...req("x"), ...opt("axis", "keepdim=false")], {
      group: "tensor",
      text: "Maximum over `axis` (an integer or a list; every axis when omitted).",
      example: "y = reduce_max(x, axis: -1)",
    }),
  ],
  [
    "argmax",
    fn([...req("x", "axis"), ...opt("keepdim=false")], {
      group: "tensor",
      text: "Index of the first maximum along `axis` (i64), as torch.argmax.",
      example: "y = argmax(ids, axis: 1) // [B]",
    }),
  ],
  [
    "max_pool2d",
    fn([...req("x", "kernel"), ...opt("stride=kernel", "padding=0")], {
      group: "tensor",
      text: "Max pooling with a square window, as torch's max_pool2d.",
      shapes: "x [N, C, H, W] → [N, C, ⌊(H + 2·padding − kernel) / stride⌋ + 1, same for W]",
      example: "y = max_pool2d(img, 3, stride: 2, padding: 1) // [B, 3, 16, 16]",
    }),
  ],
  [
    "avg_pool2d",
    fn([...req("x", "kernel"), ...opt("stride=kernel", "padding=0")], {
      group: "tensor",
      text: "Average pooling with a square window; padding counts in the divisor, as torch's default.",
      shapes: "as max_pool2d",
      example: "y = avg_pool2d(img, 2) // [B, 3, 16, 16]",
    }),
  ],
  [
    "adaptive_avg_pool2d",
    fn(req("x", "size"), {
      group: "tensor",
      text: "Average pooling to a fixed output size (an integer or [h, w]), as torch's adaptive_avg_pool2d: output cell i of n over an axis of size s averages input rows ⌊i·s/n⌋ to ⌈(i+1)·s/n⌉ − 1, uneven windows included. MobileVLM's LDP pools its 24×24 grid to 12×12 this way.",
      shapes: "x [N, C, H, W] → [N, C, h, w]; H and W must be known",
      example: "y = adaptive_avg_pool2d(img, [8, 5]) // [B, 3, 8, 5]",
    }),
  ],
  [
    "l2_normalize",
    fn([...req("x"), ...opt("axis=-1")], {
      group: "tensor",
      text: "x / max(‖x‖₂, 1e-12) along `axis`, as torch's F.normalize.",
      example: "y = l2_normalize(x)",
    }),
  ],
  [
    "where",
    fn(req("cond", "a", "b"), {
      group: "tensor",
      text: "a where cond (bool) is true, else b, broadcasting all three. Numbers and sizes mix with tensors: `where(col < IMAGE_TOKENS + P, 0.0, -1e9)` compares positions with a symbolic size.",
      example: "col = arange(T)\ny = where(unsqueeze(col < T - 1, 1), x, 0.0)",
    }),
  ],
  [
    "cumsum",
    fn([...req("x"), ...opt("axis=-1")], {
      group: "tensor",
      text: "Cumulative sum along `axis`; bool inputs count as i64.",
      example: "y = cumsum(ids, axis: 1)",
    }),
  ],
  [
    "arange",
    fn([...req("n"), ...opt("dtype=i64")], {
      group: "tensor",
      text: "The vector 0, 1, …, n − 1; n may be a symbol (`arange(T)`).",
      shapes: "→ [n]",
      example: "y = x + unsqueeze(cast(arange(64), f32), 0)",
    }),
  ],
  [
    "cast",
    fn(req("x", "dtype"), {
      group: "tensor",
      text: "Converts the element type (f32, f16, bf16, i64, i32, bool…).",
      example: "y = cast(ids > 0, f32)",
    }),
  ],
  [
    "relative_position_bucket",
    fn([...req("q_len", "k_len", "buckets", "max_distance"), ...opt("bidirectional=true")], {
      group: "tensor",
      text: "T5's relative-position bucket table for known lengths, computed at compile time (i64).",
      shapes: "→ [q_len, k_len]",
      example: "y = x[:, :8, :8] + cast(relative_position_bucket(8, 8, 32, 128), f32)",
    }),
  ],

  // compile-time helpers
  [
    "tokens",
    fn(req("x"), {
      group: "compile-time",
      text: "The size of axis 1 (the token count) of a [batch, tokens, …] tensor, for `expect` and arithmetic; `summary` lists what `expect` proves about it.",
      example: "expect tokens(x) == T\ny = x",
    }),
  ],
  [
    "dim",
    fn(req("x", "axis"), {
      group: "compile-time",
      text: "The size of an axis (a number or a symbol).",
      example: "y = reshape(x, [dim(x, 0), -1])",
    }),
  ],
  [
    "min",
    fn(
      [],
      {
        group: "compile-time",
        text: "The smallest of its operands (known numbers).",
        example: "y = x[:, :min(4, 8)]",
      },
      true,
    ),
  ],
  [
    "max",
    fn(
      [],
      {
        group: "compile-time",
        text: "The largest of its operands (known numbers).",
        example: "y = x[:, :max(1, 2)]",
      },
      true,
    ),
  ],
  [
    "len",
    fn(req("x"), {
      group: "compile-time",
      text: "The length of a list or of a `repeat` stack.",
      example: "y = x[:, :len([1, 2, 3])]",
    }),
  ],
  [
    "range",
    fn(req("n"), {
      group: "compile-time",
      text: "The list 0, 1, …, n − 1 of a known n, for `for i in range(n)`.",
      example: "y = x\nfor i in range(2) {\n  y = y + x\n}",
    }),
  ],
  [
    "isqrt",
    fn(req("n"), {
      group: "compile-time",
      text: "The integer square root ⌊√n⌋ of a known n ≥ 0, as Python's math.isqrt: the side of a square token grid (`isqrt(576)` is 24).",
      example:
        "const side = isqrt(1024) // 32\ny = reshape(transpose(flatten(img, start: 2), [0, 2, 1]), [B, side, side, 3])",
    }),
  ],

  // initialisers
  ["zeros", init([], "Every element 0.", "param scale: [64] = zeros")],
  ["ones", init([], "Every element 1.", "param scale: [64] = ones")],
  ["full", init(req("value"), "Every element `value`.", "param scale: [] = full(2.6592)")],
  [
    "normal",
    init(opt("std=0.02", "mean=0.0"), "Normal random values (seeded).", "param scale: [1, 1, 64] = normal(0.02)"),
  ],
  ["uniform", init(opt("bound=0.02"), "Uniform random values on [−bound, bound].", "param scale: [64] = uniform(0.1)")],

  // dtypes
  ["f32", dtype("32-bit float.", "y = cast(x, f32)")],
  ["f16", dtype("16-bit float (IEEE half).", "y = cast(cast(x, f16), f32)")],
  ["bf16", dtype("bfloat16.", "y = cast(cast(x, bf16), f32)")],
  ["f64", dtype("64-bit float.", "y = cast(cast(x, f64), f32)")],
  ["i64", dtype("64-bit integer: token ids, positions.", "y = cast(x, i64)")],
  ["i32", dtype("32-bit integer.", "y = cast(ids, i32)")],
  ["i8", dtype("8-bit signed integer.", "y = cast(ids, i8)")],
  ["u8", dtype("8-bit unsigned integer: raw image bytes.", "y = cast(cast(img, u8), f32)")],
  ["bool", dtype("Boolean: masks.", "y = cast(ids, bool)")],
]);

/** Scalar (compile-time) parameter types, usable in `name: int` annotations. */
export const SCALAR_TYPES = new Set(["int", "float", "bool", "string", "tensor", "any"]);

export const ROLES = new Set(["encoder", "fusion", "head"]);

/** Words allowed as enum values in policies (`quantize: int8`) and string-like options (`act: gelu`). */
export const POLICY_KEYS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ["quantize", new Set(["none", "int8", "int4"])],
  ["precision", new Set(["fp32", "fp16", "bf16"])],
]);

/** What a package key takes; `pinpoints` is a list of [height, width] pairs (LLaVA-NeXT's AnyRes). */
export type PackageKeyKind = "graph" | "component" | "param" | "int" | "pinpoints" | ReadonlySet<string>;

/**
 * Keys of a model's `package { … }` declaration and what each names: a graph of the model, a
 * component, a model parameter, a compile-time integer, pinpoints, or one of a few words. See
 * docs/packages.md.
 */
export const PACKAGE_KEYS: ReadonlyMap<string, PackageKeyKind> = new Map<string, PackageKeyKind>([
  ["vision", "graph"],
  ["decoder", "component"],
  ["cross", "component"],
  ["image_token", "int"],
  ["image_tokens", "int"],
  ["prompt", "int"],
  ["new_tokens", "int"],
  ["placement", new Set(["image_tokens", "prefix"])],
  ["newline", "param"],
  ["pinpoints", "pinpoints"],
]);

/** Keys every package declaration must give. */
export const PACKAGE_REQUIRED = ["vision", "decoder", "image_token", "image_tokens", "prompt", "new_tokens"];

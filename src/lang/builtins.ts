// Signatures of the primitives implemented in TypeScript. Name resolution checks calls against
// this table; the elaborator implements each entry (a test keeps the two in step).

export interface ParamSig {
  readonly name: string;
  readonly required: boolean;
}

export type BuiltinKind =
  | "module" // owns parameters: declared as a sub-module, then called in forward
  | "function" // pure op on tensors or compile-time values, called in forward
  | "initializer" // right-hand side of `param name: [..] = init`
  | "dtype"; // names a tensor element type in an input type

export interface BuiltinSig {
  readonly kind: BuiltinKind;
  readonly params: readonly ParamSig[];
  /** Extra positional arguments are collected (concat's tensors, max's operands). */
  readonly variadic?: boolean;
  /** The forward signature of a module primitive. */
  readonly forward?: readonly ParamSig[];
}

const req = (...names: string[]): ParamSig[] => names.map((name) => ({ name, required: true }));
const opt = (...names: string[]): ParamSig[] => names.map((name) => ({ name, required: false }));

const unary: BuiltinSig = { kind: "function", params: req("x") };
const dtype: BuiltinSig = { kind: "dtype", params: [] };

export const BUILTINS: ReadonlyMap<string, BuiltinSig> = new Map<string, BuiltinSig>([
  // modules (own parameters; names follow PyTorch so checkpoints map directly)
  ["linear", { kind: "module", params: [...req("in_features", "out_features"), ...opt("bias")], forward: req("x") }],
  [
    "conv2d",
    {
      kind: "module",
      params: [...req("in_channels", "out_channels", "kernel"), ...opt("stride", "padding", "groups", "bias")],
      forward: req("x"),
    },
  ],
  ["embedding", { kind: "module", params: req("num", "dim"), forward: req("ids") }],
  ["layer_norm", { kind: "module", params: [...req("dim"), ...opt("eps", "bias")], forward: req("x") }],
  ["rms_norm", { kind: "module", params: [...req("dim"), ...opt("eps")], forward: req("x") }],
  ["batch_norm", { kind: "module", params: [...req("dim"), ...opt("eps")], forward: req("x") }],

  // activations
  ["gelu", unary],
  ["gelu_tanh", unary],
  ["quick_gelu", unary],
  ["relu", unary],
  ["squared_relu", unary],
  ["silu", unary],
  ["tanh", unary],
  ["sigmoid", unary],
  ["exp", unary],
  ["sqrt", unary],
  ["log", unary],
  ["abs", unary],

  // tensor ops
  [
    "attention",
    {
      kind: "function",
      params: [
        ...req("q", "k", "v", "heads"),
        ...opt("kv_heads", "causal", "mask", "rotary", "rotary_dim", "scale", "positions"),
      ],
    },
  ],
  ["matmul", { kind: "function", params: req("a", "b") }],
  ["softmax", { kind: "function", params: [...req("x"), ...opt("axis")] }],
  ["concat", { kind: "function", params: opt("axis"), variadic: true }],
  ["stack", { kind: "function", params: opt("axis"), variadic: true }],
  ["reshape", { kind: "function", params: req("x", "shape") }],
  ["transpose", { kind: "function", params: req("x", "perm") }],
  ["flatten", { kind: "function", params: [...req("x"), ...opt("start")] }],
  ["unsqueeze", { kind: "function", params: req("x", "axis") }],
  ["expand", { kind: "function", params: req("x", "shape") }],
  ["mean", { kind: "function", params: [...req("x"), ...opt("axis", "keepdim")] }],
  ["sum", { kind: "function", params: [...req("x"), ...opt("axis", "keepdim")] }],
  ["reduce_max", { kind: "function", params: [...req("x"), ...opt("axis", "keepdim")] }],
  ["argmax", { kind: "function", params: [...req("x", "axis"), ...opt("keepdim")] }],
  ["max_pool2d", { kind: "function", params: [...req("x", "kernel"), ...opt("stride", "padding")] }],
  ["avg_pool2d", { kind: "function", params: [...req("x", "kernel"), ...opt("stride", "padding")] }],
  ["l2_normalize", { kind: "function", params: [...req("x"), ...opt("axis")] }],
  ["where", { kind: "function", params: req("cond", "a", "b") }],
  ["cumsum", { kind: "function", params: [...req("x"), ...opt("axis")] }],
  ["arange", { kind: "function", params: [...req("n"), ...opt("dtype")] }],
  ["cast", { kind: "function", params: req("x", "dtype") }],
  [
    "relative_position_bucket",
    { kind: "function", params: [...req("q_len", "k_len", "buckets", "max_distance"), ...opt("bidirectional")] },
  ],

  // compile-time helpers
  ["tokens", { kind: "function", params: req("x") }],
  ["dim", { kind: "function", params: req("x", "axis") }],
  ["min", { kind: "function", params: [], variadic: true }],
  ["max", { kind: "function", params: [], variadic: true }],
  ["len", { kind: "function", params: req("x") }],
  ["range", { kind: "function", params: [...req("n")] }],

  // initialisers
  ["zeros", { kind: "initializer", params: [] }],
  ["ones", { kind: "initializer", params: [] }],
  ["full", { kind: "initializer", params: req("value") }],
  ["normal", { kind: "initializer", params: opt("std", "mean") }],
  ["uniform", { kind: "initializer", params: opt("bound") }],

  // dtypes
  ["f32", dtype],
  ["f16", dtype],
  ["bf16", dtype],
  ["f64", dtype],
  ["i64", dtype],
  ["i32", dtype],
  ["i8", dtype],
  ["u8", dtype],
  ["bool", dtype],
]);

/** Scalar (compile-time) parameter types, usable in `name: int` annotations. */
export const SCALAR_TYPES = new Set(["int", "float", "bool", "string", "tensor", "any"]);

export const ROLES = new Set(["encoder", "fusion", "head"]);

/** Words allowed as enum values in policies (`quantize: int8`) and string-like options (`act: gelu`). */
export const POLICY_KEYS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ["quantize", new Set(["none", "int8", "int4"])],
  ["precision", new Set(["fp32", "fp16", "bf16"])],
]);

/**
 * Keys of a model's `package { … }` declaration and what each names: a graph of the model, a
 * component, a compile-time integer, or one of a few words. See docs/packages.md.
 */
export const PACKAGE_KEYS: ReadonlyMap<string, "graph" | "component" | "int" | ReadonlySet<string>> = new Map<
  string,
  "graph" | "component" | "int" | ReadonlySet<string>
>([
  ["vision", "graph"],
  ["decoder", "component"],
  ["cross", "component"],
  ["image_token", "int"],
  ["image_tokens", "int"],
  ["prompt", "int"],
  ["new_tokens", "int"],
  ["placement", new Set(["image_tokens", "prefix"])],
]);

/** Keys every package declaration must give. */
export const PACKAGE_REQUIRED = ["vision", "decoder", "image_token", "image_tokens", "prompt", "new_tokens"];

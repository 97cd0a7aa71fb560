// The catalog of diagnostic codes. Codes are stable and never reused: add new ones at the end of
// their range. VLM1xxx syntax, VLM2xxx names/types/shapes, VLM3xxx checks and passes,
// VLM4xxx codegen and weights, VLM9xxx internal.

export type Severity = "error" | "warning" | "note";

export interface CatalogEntry {
  readonly severity: Severity;
  readonly title: string;
  /** The message, with `{field}` holes filled by `message(code, fields)`: one code, one message. */
  readonly template?: string;
}

export const CATALOG = {
  VLM1001: { severity: "error", title: "syntax error" },
  VLM1002: { severity: "error", title: "unrecognised character or unterminated literal" },
  VLM1003: { severity: "error", title: "nesting too deep" },
  VLM1004: { severity: "error", title: "invalid number literal" },
  VLM1005: { severity: "error", title: "unknown component role" },
  VLM1006: { severity: "error", title: "declaration not allowed here" },
  VLM1010: {
    severity: "error",
    title: "named argument written name=value",
    template: "named arguments are written `{name}: value`, not `{name}=value`",
  },
  VLM1050: { severity: "error", title: "weights declaration without a path or key map" },

  VLM2001: { severity: "error", title: "undefined name" },
  VLM2002: { severity: "error", title: "duplicate definition" },
  VLM2003: { severity: "error", title: "unknown argument" },
  VLM2004: { severity: "error", title: "missing argument" },
  VLM2005: { severity: "error", title: "wrong kind of argument" },
  VLM2006: { severity: "error", title: "import cycle" },
  VLM2007: { severity: "error", title: "cannot read imported file" },
  VLM2008: { severity: "error", title: "module does not export this name" },
  VLM2009: { severity: "error", title: "too many positional arguments" },
  VLM2010: { severity: "error", title: "not callable" },
  VLM2011: { severity: "error", title: "unknown dtype or type" },
  VLM2012: { severity: "error", title: "duplicate argument" },
  VLM2013: { severity: "error", title: "invalid compile policy" },
  VLM2014: { severity: "error", title: "no such model or graph" },

  VLM2101: { severity: "error", title: "matmul inner dimensions differ" },
  VLM2102: { severity: "error", title: "shapes do not match" },
  VLM2103: { severity: "error", title: "width not divisible by heads" },
  VLM2104: { severity: "error", title: "size not divisible" },
  VLM2105: { severity: "error", title: "index or slice out of range" },
  VLM2106: { severity: "error", title: "dtype mismatch" },
  VLM2107: { severity: "error", title: "wrong rank" },
  VLM2108: { severity: "error", title: "model too large" },
  VLM2109: { severity: "error", title: "type error (retired: now VLM2300–VLM2329, one per fault)" },
  VLM2110: { severity: "error", title: "compile-time evaluation failed" },
  VLM2111: { severity: "error", title: "recursion too deep" },

  VLM2200: { severity: "error", title: "attention mask does not broadcast" },
  VLM2201: { severity: "error", title: "attention batch sizes differ" },
  VLM2202: { severity: "error", title: "invalid relative position buckets" },
  VLM2203: { severity: "error", title: "embedding table too small" },
  VLM2204: { severity: "error", title: "rotary positions need an even head size" },
  VLM2206: { severity: "error", title: "invalid pooling or convolution window" },
  VLM2207: { severity: "error", title: "argmax over an empty axis" },

  // The faults VLM2109 once covered, one code each (VLM2109 is raised for nothing new).
  VLM2300: {
    severity: "error",
    title: "entry input without a tensor type",
    template: 'input "{input}" of {entry} needs a tensor type such as f32[B, 3, 224, 224]',
  },
  VLM2301: { severity: "error", title: "entry point returns nothing", template: "{entry} does not return anything" },
  VLM2302: {
    severity: "error",
    title: "bound on a dimension that is not a symbol",
    template: "only a symbolic dimension can have a bound",
  },
  VLM2303: { severity: "error", title: "bound below 1", template: "bound {bound} must be at least 1" },
  VLM2304: {
    severity: "error",
    title: "output is not a tensor",
    template: 'output "{output}" must be a tensor, got {got}',
  },
  VLM2305: {
    severity: "error",
    title: "block or model used as a value",
    template: '{kind} "{name}" is not a value here',
  },
  VLM2306: {
    severity: "error",
    title: "negative parameter dimension",
    template: "parameter {param} has a negative dimension {shape}",
  },
  VLM2307: { severity: "error", title: "cannot unpack", template: "cannot unpack {got} into {count} names" },
  VLM2308: { severity: "error", title: "cannot iterate", template: "cannot iterate over {got}" },
  VLM2309: {
    severity: "error",
    title: "expect condition not known at compile time",
    template: "expect needs a condition known at compile time, got {got}",
  },
  VLM2310: {
    severity: "error",
    title: "operator does not apply to these operands",
    template: "operator {op} does not apply to {left} and {right}",
  },
  VLM2311: { severity: "error", title: "no such member", template: '{got} has no member "{name}"' },
  VLM2312: { severity: "error", title: "calling an empty stack", template: "calling an empty stack of modules" },
  VLM2313: { severity: "error", title: "integer expected", template: "{what} must be an integer, got {got}" },
  VLM2314: {
    severity: "error",
    title: "operator needs known integers",
    template: "{op} needs known integers, got {left} and {right}",
  },
  VLM2315: {
    severity: "error",
    title: "tensor operation outside a forward body",
    template: "{what} needs tensors and can only be used in a forward body",
  },
  VLM2316: { severity: "error", title: "tensor expected", template: "{what} must be a tensor, got {got}" },
  VLM2317: {
    severity: "error",
    title: "known integer expected, symbol given",
    template: "{what} must be a known integer, got the symbolic {got}",
  },
  VLM2318: { severity: "error", title: "number expected", template: "{what} must be a number, got {got}" },
  VLM2319: { severity: "error", title: "bool expected", template: "{what} must be true or false, got {got}" },
  VLM2320: {
    severity: "error",
    title: "integer list expected",
    template: "{what} must be a list of integers, got {got}",
  },
  VLM2321: { severity: "error", title: "not an activation", template: '"{name}" is not an activation' },
  VLM2322: {
    severity: "error",
    title: "length of a non-sequence",
    template: "len() needs a list or a repeat stack, got {got}",
  },
  VLM2323: { severity: "error", title: "size must be positive", template: "{op}: {what} must be positive, got {got}" },
  VLM2324: {
    severity: "error",
    title: "static size needed",
    template: "{op} needs static {what}, got {shape}",
  },
  VLM2325: {
    severity: "error",
    title: "size not available at run time",
    template:
      "the size {symbol} is needed at run time, but no graph input has an axis of exactly {symbol} to read it from",
  },
  VLM2326: { severity: "error", title: "empty clamp range", template: "clamp: min {lo} is above max {hi}" },
  VLM2327: {
    severity: "error",
    title: "pooled size out of range",
    template: "adaptive_avg_pool2d: output {size} must be between 1×1 and the input's {input}",
  },
  VLM2328: {
    severity: "error",
    title: "prefix without causal",
    template: "attention: prefix: makes the keys after the prefix causal; add causal: true",
  },
  VLM2329: {
    severity: "error",
    title: "prefix of the wrong type",
    template: "attention: prefix must be an integer or an i64 tensor of shape [{batch}], got {got}",
  },

  VLM3001: { severity: "error", title: "expectation failed" },
  VLM3002: { severity: "error", title: "expectation cannot be proved" },
  VLM3003: { severity: "warning", title: "unused input" },
  VLM3004: { severity: "warning", title: "unused parameter" },
  VLM3005: { severity: "warning", title: "unused component" },
  VLM3006: { severity: "error", title: "output depends on no input" },

  VLM3100: { severity: "warning", title: "quantization or precision request changed nothing" },

  // Generation packages (docs/packages.md).
  VLM3200: { severity: "error", title: "invalid package declaration" },
  VLM3201: { severity: "error", title: "image-token slots differ from the vision graph's tokens" },
  VLM3202: { severity: "error", title: "prompt and new tokens exceed the context" },
  VLM3203: { severity: "error", title: "graphs cannot form a package" },
  VLM3204: { severity: "error", title: "invalid AnyRes package" },
  VLM3205: { severity: "error", title: "an AnyRes image can exceed the prompt bound" },
  VLM3206: { severity: "error", title: "AnyRes facts differ from the checkpoint" },

  VLM4001: { severity: "error", title: "invalid weights file" },
  VLM4002: { severity: "error", title: "missing weights" },
  VLM4003: { severity: "error", title: "unexpected weights" },
  VLM4004: { severity: "error", title: "weight shape mismatch" },
  VLM4005: { severity: "error", title: "unsupported weight dtype" },
  VLM4006: { severity: "error", title: "cannot write output" },
  VLM4007: { severity: "error", title: "runtime failure" },
  VLM4008: { severity: "error", title: "invalid input file" },
  // Checkpoint folders and key maps (src/codegen/checkpoint.ts, src/codegen/weights.ts).
  VLM4200: { severity: "error", title: "not a checkpoint folder" },
  VLM4201: { severity: "error", title: "invalid checkpoint index or config" },
  VLM4202: { severity: "error", title: "shard outside the checkpoint folder" },
  VLM4203: { severity: "error", title: "missing shard" },
  VLM4204: { severity: "error", title: "tensor in two shards" },
  VLM4205: { severity: "error", title: "shard lacks an indexed tensor" },
  VLM4206: { severity: "error", title: "checkpoint config disagrees with the spec" },
  VLM4207: { severity: "error", title: "two checkpoint keys for one parameter" },
  VLM4208: { severity: "error", title: "tie names no parameter" },
  VLM4209: { severity: "error", title: "a key map needs a checkpoint path" },

  VLM4400: { severity: "error", title: "no single model to draw" },
  VLM4401: { severity: "error", title: "no such graph to draw" },
  VLM4402: { severity: "error", title: "no such block to draw" },

  VLM4300: { severity: "error", title: "package folder exists" },
  VLM4301: { severity: "error", title: "checkpoint files missing" },
  VLM4302: { severity: "error", title: "cannot write package" },

  // VLM5000–VLM5099: running packages and generating text (runtime/generate, vlmc generate).
  VLM5001: { severity: "error", title: "package file missing" },
  VLM5002: { severity: "error", title: "invalid package manifest" },
  VLM5003: { severity: "error", title: "tokenizer missing or unreadable" },
  VLM5004: { severity: "error", title: "chat template failed" },
  VLM5005: { severity: "error", title: "cannot read or decode image" },
  VLM5006: { severity: "error", title: "image too large" },
  VLM5007: { severity: "error", title: "images do not match the prompt's image tags" },
  VLM5008: { severity: "error", title: "prompt longer than the context" },
  VLM5009: { severity: "error", title: "invalid generation option" },
  VLM5011: { severity: "error", title: "invalid batch file" },
  VLM5012: { severity: "error", title: "unsupported image preprocessing" },
  VLM5013: { severity: "error", title: "package engine failed" },
  VLM5020: { severity: "error", title: "execution provider unavailable" },

  VLM9001: { severity: "error", title: "internal compiler error" },
} as const satisfies Record<string, CatalogEntry>;

export type DiagnosticCode = keyof typeof CATALOG;

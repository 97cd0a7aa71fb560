// The IR's op vocabulary, declared once: the core ops the elaborator emits (codegen's portable
// lowering table is typed by them, so it covers exactly these) and the dialect ops that one pass
// family makes and codegen lowers. The verifier rejects any other op name.

/** The ops elaboration emits and every target lowers. */
export const CORE_OPS = [
  "Constant",
  "Linear",
  "Conv",
  "Embedding",
  "LayerNorm",
  "RMSNorm",
  "BatchNorm",
  "Attention",
  "Gelu",
  "GeluTanh",
  "QuickGelu",
  "Silu",
  "SquaredRelu",
  "Relu",
  "Relu6",
  "Tanh",
  "Sigmoid",
  "HardSigmoid",
  "HardSwish",
  "Clip",
  "Exp",
  "Sqrt",
  "Log",
  "Abs",
  "Neg",
  "Not",
  "Add",
  "Sub",
  "Mul",
  "Div",
  "MatMul",
  "Pow",
  "Mod",
  "Equal",
  "Less",
  "LessOrEqual",
  "Greater",
  "GreaterOrEqual",
  "And",
  "Or",
  "Where",
  "Softmax",
  "Concat",
  "Unsqueeze",
  "Squeeze",
  "Slice",
  "Transpose",
  "Reshape",
  "Expand",
  "ReduceMean",
  "ReduceMax",
  "ArgMax",
  "ReduceSum",
  "MaxPool",
  "AveragePool",
  "AdaptiveAvgPool",
  "L2Normalize",
  "CumSum",
  "Range",
  "SizeValue",
  "Cast",
  "RelativePositionBucket",
] as const;
export type CoreOp = (typeof CORE_OPS)[number];

/** `Precomputed{name}`: a value the graph's precomputed graph computes once, at build time (cleanup/precompute-constants). */
export const PRECOMPUTED = "Precomputed";

/** The quantized matrix product: `quant.Linear{…}(x, w, b?)`, y = x·W + b with W from `w` (quant/quantize-weights). */
export const QUANT_LINEAR = "quant.Linear";

/**
 * `precision.Cast{to}(w)`: a parameter or precomputed value in another float type. Codegen stores
 * the tensor converted (no run-time Cast) when nothing else reads it in its own type (quant/convert-precision).
 */
export const STORED_CAST = "precision.Cast";

/** The prefix of the IR ops fusion creates: `ort.X` lowers 1:1 to ONNX Runtime's op X (passes/fusion). */
export const ORT_PREFIX = "ort.";

/**
 * How codegen computes a quant.Linear (its `kernel` attribute), chosen from the target by the pass
 * so lowering needs no target:
 *  - dynamic-quantize-matmul: com.microsoft DynamicQuantizeMatMul (ONNX Runtime CPU only):
 *    symmetric int8 weights with per-column scales, activations quantized to uint8 per call
 *    (ONNX Runtime's own default, QInt8 weights; on x86 CPUs without VNNI its u8·s8 kernel can
 *    saturate on rare large pairs — ONNX Runtime documents the same caveat).
 *  - qdq: standard DequantizeLinear (per-axis, opset 13+) of the int8 weight, then MatMul in
 *    float: weight-only quantization that any runtime reads (portable, CUDA).
 *  - matmul-nbits: com.microsoft MatMulNBits, 4-bit block-wise (CPU and CUDA).
 */
export type QuantKernel = "dynamic-quantize-matmul" | "qdq" | "matmul-nbits";

const CORE: ReadonlySet<string> = new Set(CORE_OPS);

/** Whether `op` is an op of the IR: a core op or a dialect op declared above. */
export function isIrOp(op: string): boolean {
  return CORE.has(op) || op === PRECOMPUTED || op === QUANT_LINEAR || op === STORED_CAST || op.startsWith(ORT_PREFIX);
}

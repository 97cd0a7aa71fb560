// Public surface of quantization and reduced precision: the passes, the policy they share, and
// the quantization arithmetic codegen applies to the real weights.

export { convertPrecision, KEEP_FP32, NO_BF16, PRECISION_RULES, STORED_CAST } from "./convert-precision.js";
export {
  componentOwner,
  governingRule,
  resolvePrecision,
  resolveQuantize,
  scopeComponent,
  type Owner,
  type Resolved,
} from "./policy.js";
export * from "../../numerics/quant-math.js";
export {
  CPU_INT4_ACCURACY_LEVEL,
  INT4_BLOCK_SIZE,
  QUANT_LINEAR,
  quantAttrs,
  quantizeWeights,
  type QuantKernel,
} from "./quantize-weights.js";

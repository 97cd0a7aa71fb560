// The quantization and reduced-precision passes (the policy they share is policy.ts; the arithmetic
// codegen applies to the real weights is numerics/quant-math.ts).

export { convertPrecision, DTYPE_OF } from "./convert-precision.js";
export { quantizeWeights } from "./quantize-weights.js";
export { componentOwner, resolvePrecision } from "./policy.js";

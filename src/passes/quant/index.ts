// The quantization and reduced-precision passes (the policy they share is policy.ts; the arithmetic
// codegen applies to the real weights is numerics/quant-math.ts).

export { convertPrecision } from "./convert-precision.js";
export { quantizeWeights } from "./quantize-weights.js";

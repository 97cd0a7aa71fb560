// What each target may emit: its lowerings of target-specific IR ops (fused and quantized ops)
// and the ONNX ops it implements, by domain. A test checks every emitted node against this table.

import type { Target } from "../passes/pass.js";
import type { Lowering } from "./lower.js";

/** Lowerings a target adds to the portable ones; fusion and quantization passes fill these in. */
const TARGET_LOWERINGS: Record<Target, Readonly<Record<string, Lowering>>> = {
  portable: {},
  "ort-cpu": {},
  "ort-cuda": {},
};

export function targetLowerings(target: Target): Readonly<Record<string, Lowering>> {
  return TARGET_LOWERINGS[target];
}

// What each target may emit: its lowerings of target-specific IR ops (fused and quantized ops).
// The ops each target implements are its own answer (src/target/).

import type { Target } from "../target/target.js";
import type { Lowering } from "./lower.js";
import { FUSED_LOWERINGS } from "./lower-fused.js";
import { QUANT_LOWERINGS } from "./lower-quant.js";

/** Lowerings a target adds to the portable ones; IR ops absent here fall back to portable lowering. */
export function targetLowerings(target: Target): Readonly<Record<string, Lowering>> {
  return target.runsOrtOps ? { ...FUSED_LOWERINGS, ...QUANT_LOWERINGS } : QUANT_LOWERINGS;
}

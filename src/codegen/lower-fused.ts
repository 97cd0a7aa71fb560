// Lowerings of the fused IR ops that fusion passes create for ONNX Runtime targets.

import type { Lowering } from "./lower.js";

export const FUSED_LOWERINGS: Readonly<Record<string, Lowering>> = {};

// Lowerings of the quantized IR ops that quantization passes create.

import type { Lowering } from "./lower.js";

export const QUANT_LOWERINGS: Readonly<Record<string, Lowering>> = {};

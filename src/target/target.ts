// A target is an object that passes and codegen ask: its name, the ONNX opset its graphs import,
// which ops it implements, which ONNX Runtime kernels it has for which dtypes, which fusions pay on
// it, and how it computes a quantized matrix product. Nothing outside src/target/ compares a
// target's name; a new target is one more object here (and its lowerings in codegen/targets.ts).

import type { DType } from "../ir/types.js";
import type { QuantKernel } from "../ir/ops.js";
import { InternalError } from "../diagnostics/diagnostic.js";
import {
  FUSED_OP_KERNELS,
  opKey,
  PORTABLE_OPS,
  QUANT_OP_KERNELS,
  QUANT_STANDARD_OPS,
  type OrtKernels,
} from "./target-ops.js";

export const TARGET_NAMES = ["portable", "ort-cpu", "ort-cuda"] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

/** The kernel of a weight-quantized matrix product on a target (the attributes of quant.Linear that depend on it). */
export interface QuantKernelChoice {
  readonly kernel: QuantKernel;
  /** MatMulNBits accuracy_level (0 where the kernel has none). */
  readonly accuracyLevel: number;
}

export interface Target {
  readonly name: TargetName;
  /** The standard ONNX opset its graphs import. */
  readonly opset: number;
  /** Whether it runs ONNX Runtime's own ops, so the fusion passes rewrite for it. */
  readonly runsOrtOps: boolean;
  /** Whether it computes fp16/bf16 matrix products natively (convert-precision refuses otherwise). */
  readonly reducedPrecision: boolean;
  /** Whether its graphs may use the op `opKey(domain, op)`. */
  implements(key: string): boolean;
  /** Why it cannot run the ONNX Runtime op `op` on `dtype` tensors (a near-miss reason), or undefined when it can. */
  missingKernel(op: string, dtype: DType): string | undefined;
  /** Why it should not get the fused op `op` although it has a kernel (it measured slower), or undefined. */
  slowerThanUnfused(op: string): string | undefined;
  /** How it computes a matrix product with `mode` weights, or undefined when it cannot express the mode. */
  quantKernel(mode: "int8" | "int4"): QuantKernelChoice | undefined;
}

/** Every target's graphs import this standard opset (portable lowering is written against it). */
const OPSET = 17;

/** MatMulNBits accuracy_level 4: activations quantized to int8 per block, the fast CPU path. */
const CPU_INT4_ACCURACY_LEVEL = 4;

const standardOps: ReadonlySet<string> = new Set([...PORTABLE_OPS, ...QUANT_STANDARD_OPS]);

function knownOrtOp(op: string): OrtKernels {
  const kernels = FUSED_OP_KERNELS[op] ?? QUANT_OP_KERNELS[op];
  if (!kernels) throw new InternalError(`${op} is not an ONNX Runtime op vlmc knows`);
  return kernels;
}

/** Standard ONNX at opset 17: what any ONNX runtime reads. */
const portable: Target = {
  name: "portable",
  opset: OPSET,
  runsOrtOps: false,
  reducedPrecision: true,
  implements: (key) => standardOps.has(key),
  missingKernel: (op) => {
    knownOrtOp(op);
    return `${op} is not a standard ONNX op`;
  },
  slowerThanUnfused: () => undefined,
  // 4-bit types arrive in opset 21; portable is opset 17.
  quantKernel: (mode) => (mode === "int4" ? undefined : { kernel: "qdq", accuracyLevel: 0 }),
};

/** An ONNX Runtime execution provider: standard ONNX plus the contrib ops it has kernels for. */
function ortTarget(
  name: "ort-cpu" | "ort-cuda",
  rest: Pick<Target, "reducedPrecision" | "quantKernel">,
  slower: Readonly<Record<string, string>>,
): Target {
  const contrib = Object.entries({ ...FUSED_OP_KERNELS, ...QUANT_OP_KERNELS }).filter(([, k]) => k[name].length > 0);
  const ops: ReadonlySet<string> = new Set([...standardOps, ...contrib.map(([op, k]) => opKey(k.domain, op))]);
  return {
    name,
    opset: OPSET,
    runsOrtOps: true,
    ...rest,
    implements: (key) => ops.has(key),
    missingKernel: (op, dtype) =>
      knownOrtOp(op)[name].includes(dtype) ? undefined : `dtype ${dtype} not supported by ${op} on ${name}`,
    slowerThanUnfused: (op) => slower[op],
  };
}

/**
 * Fused ops that have a kernel on a target but ran slower there than the unfused graph ONNX
 * Runtime makes of the same IR, so the fusion passes leave them out (a near-miss reason each).
 * Measured with onnxruntime-node 1.30, CPU provider, 2 intra-op threads (bench/README.md's setup).
 */
const CPU_SLOWER_THAN_UNFUSED: Readonly<Record<string, string>> = {
  // 24 chained norms of [1, 197, 768] (ViT-B/16's stream): 9.8 ms as SkipLayerNormalization,
  // 4.3 ms as Add + LayerNormalization; 197 × 1024: 12.5 vs 4.9 ms; 50 × 768: 2.7 vs 1.4 ms;
  // 577 × 768: 26.5 vs 8.3 ms (10th percentile of 40–60 interleaved runs). In the whole ViT-B/16
  // each one took 0.8 ms against 0.1 ms for LayerNormalization. SkipSimplifiedLayerNormalization
  // is on a par with Add + SimplifiedLayerNormalization, so it stays.
  SkipLayerNormalization:
    "SkipLayerNormalization runs about twice as long as Add + LayerNormalization on ort-cpu (ONNX Runtime 1.30)",
};

const ortCpu = ortTarget(
  "ort-cpu",
  {
    // ONNX Runtime's CPU provider has no fp16 GEMM kernels (it would cast every MatMul back to fp32).
    reducedPrecision: false,
    quantKernel: (mode) =>
      mode === "int4"
        ? { kernel: "matmul-nbits", accuracyLevel: CPU_INT4_ACCURACY_LEVEL }
        : { kernel: "dynamic-quantize-matmul", accuracyLevel: 0 },
  },
  CPU_SLOWER_THAN_UNFUSED,
);

const ortCuda = ortTarget(
  "ort-cuda",
  {
    reducedPrecision: true,
    quantKernel: (mode) =>
      mode === "int4" ? { kernel: "matmul-nbits", accuracyLevel: 0 } : { kernel: "qdq", accuracyLevel: 0 },
  },
  {},
);

export const TARGETS: Readonly<Record<TargetName, Target>> = { portable, "ort-cpu": ortCpu, "ort-cuda": ortCuda };

/** The target of a compile: `name`, or portable (the default of the API and the CLI) when none is given. */
export function targetNamed(name: TargetName | undefined): Target {
  return TARGETS[name ?? "portable"];
}

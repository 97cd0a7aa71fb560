// What each target implements: the (domain, op) pairs its ONNX graphs may use, the float dtypes
// each ONNX Runtime contrib op has a kernel for on each provider (so fusion passes emit only what
// runs), and the check that a lowered model stays inside its target. Sources: ONNX Runtime's CPU
// and CUDA kernel registries for releases 1.20–1.30 (../shared/reference/onnxruntime.md).

import { InternalError } from "../diagnostics/diagnostic.js";
import type { DType } from "../ir/types.js";
import type { Target } from "../passes/pass.js";
import type { OnnxModel } from "../onnx/onnx-writer.js";

export const MS_DOMAIN = "com.microsoft";

/** Opset version imported for each non-standard domain a graph uses. */
const DOMAIN_VERSIONS: Readonly<Record<string, number>> = { [MS_DOMAIN]: 1 };

export function domainVersion(domain: string): number {
  const v = DOMAIN_VERSIONS[domain];
  if (v === undefined) throw new InternalError(`no opset version known for domain ${domain}`);
  return v;
}

/** `op` for the standard domain, `domain:op` otherwise. */
export function opKey(domain: string, op: string): string {
  return domain === "" ? op : `${domain}:${op}`;
}

/** The standard ONNX ops (opset 17) that the portable lowering emits. */
export const PORTABLE_OPS: ReadonlySet<string> = new Set([
  "Abs",
  "Add",
  "And",
  "ArgMax",
  "AveragePool",
  "BatchNormalization",
  "Cast",
  "Clip",
  "Concat",
  "Conv",
  "CumSum",
  "Div",
  "Equal",
  "Erf",
  "Exp",
  "Expand",
  "Gather",
  "Greater",
  "GreaterOrEqual",
  "HardSigmoid",
  "HardSwish",
  "Identity",
  "LayerNormalization",
  "Less",
  "LessOrEqual",
  "Log",
  "MatMul",
  "Max",
  "MaxPool",
  "Mod",
  "Mul",
  "Neg",
  "Not",
  "Or",
  "Pow",
  "Range",
  "ReduceL2",
  "ReduceMax",
  "ReduceMean",
  "ReduceSum",
  "Relu",
  "Reshape",
  "Shape",
  "Sigmoid",
  "Slice",
  "Softmax",
  "Sqrt",
  "Squeeze",
  "Sub",
  "Tanh",
  "Transpose",
  "Unsqueeze",
  "Where",
  "Xor",
]);

/** An ONNX Runtime op beyond the portable set: its domain and the dtypes of its kernels per provider. */
export interface OrtKernels {
  readonly domain: string;
  readonly "ort-cpu": readonly DType[];
  readonly "ort-cuda": readonly DType[];
}

/** The ops the fusion passes emit (src/passes/fusion/), by ONNX op name. */
export const FUSED_OP_KERNELS: Readonly<Record<string, OrtKernels>> = {
  // Self-attention with its packed q/k/v projection (weights [in, 3·width]) inside the kernel.
  Attention: { domain: MS_DOMAIN, "ort-cpu": ["f32"], "ort-cuda": ["f32", "f16"] },
  MultiHeadAttention: { domain: MS_DOMAIN, "ort-cpu": ["f32"], "ort-cuda": ["f32", "f16"] },
  GroupQueryAttention: { domain: MS_DOMAIN, "ort-cpu": ["f32", "f16"], "ort-cuda": ["f16", "bf16"] },
  RotaryEmbedding: { domain: MS_DOMAIN, "ort-cpu": ["f32", "f16"], "ort-cuda": ["f32", "f16", "bf16"] },
  SkipLayerNormalization: { domain: MS_DOMAIN, "ort-cpu": ["f32", "f16"], "ort-cuda": ["f32", "f16"] },
  SkipSimplifiedLayerNormalization: { domain: MS_DOMAIN, "ort-cpu": ["f32", "f16"], "ort-cuda": ["f32", "f16"] },
  // ONNX Runtime's own op in the standard domain (version 1), not an ONNX standard op.
  SimplifiedLayerNormalization: { domain: "", "ort-cpu": ["f32", "f16"], "ort-cuda": ["f32", "f16", "bf16"] },
  Gelu: { domain: MS_DOMAIN, "ort-cpu": ["f32"], "ort-cuda": ["f32", "f16", "bf16"] },
  BiasGelu: { domain: MS_DOMAIN, "ort-cpu": ["f32"], "ort-cuda": ["f32", "f16"] },
  FastGelu: { domain: MS_DOMAIN, "ort-cpu": ["f32"], "ort-cuda": ["f32", "f16", "bf16"] },
  QuickGelu: { domain: MS_DOMAIN, "ort-cpu": ["f32"], "ort-cuda": ["f32", "f16", "bf16"] },
};

// ---- quantization's ops (src/passes/quant/, src/codegen/lower-quant.ts): kept by quantization ----

/** Standard ONNX ops the quantized lowering emits on every target (weight-only int8 as QDQ). */
export const QUANT_STANDARD_OPS: ReadonlySet<string> = new Set(["DequantizeLinear"]);

/** ONNX Runtime ops the quantized lowering emits. DynamicQuantizeMatMul and MatMulIntegerToFloat are CPU-only. */
export const QUANT_OP_KERNELS: Readonly<Record<string, OrtKernels>> = {
  DynamicQuantizeMatMul: { domain: MS_DOMAIN, "ort-cpu": ["f32"], "ort-cuda": [] },
  MatMulNBits: { domain: MS_DOMAIN, "ort-cpu": ["f32", "f16"], "ort-cuda": ["f32", "f16", "bf16"] },
};

// ---- per target ----

/** The targets that run on ONNX Runtime. */
export type OrtTarget = Exclude<Target, "portable">;

const standardOps: ReadonlySet<string> = new Set([...PORTABLE_OPS, ...QUANT_STANDARD_OPS]);

function targetOps(target: OrtTarget): ReadonlySet<string> {
  const extra = Object.entries({ ...FUSED_OP_KERNELS, ...QUANT_OP_KERNELS }).filter(([, k]) => k[target].length > 0);
  return new Set([...standardOps, ...extra.map(([op, k]) => opKey(k.domain, op))]);
}

/** The ops (`opKey`) each target implements. */
export const TARGET_OPS: Readonly<Record<Target, ReadonlySet<string>>> = {
  portable: standardOps,
  "ort-cpu": targetOps("ort-cpu"),
  "ort-cuda": targetOps("ort-cuda"),
};

/**
 * Why `target` cannot run the ONNX Runtime op `op` on `dtype` tensors (a near-miss reason for the
 * pass that wanted to emit it), or undefined when it has a kernel.
 */
export function missingKernel(target: Target, op: string, dtype: DType): string | undefined {
  const kernels = FUSED_OP_KERNELS[op] ?? QUANT_OP_KERNELS[op];
  if (!kernels) throw new InternalError(`${op} is not an ONNX Runtime op vlmc knows`);
  if (target === "portable") return `${op} is not a standard ONNX op`;
  return kernels[target].includes(dtype) ? undefined : `dtype ${dtype} not supported by ${op} on ${target}`;
}

/**
 * Fused ops that have a kernel on a target but ran slower there than the unfused graph ONNX
 * Runtime makes of the same IR, so the fusion passes leave them out (a near-miss reason each).
 * Measured with onnxruntime-node 1.30, CPU provider, 2 intra-op threads (bench/README.md's setup).
 */
const SLOWER_THAN_UNFUSED: Readonly<Record<OrtTarget, Readonly<Record<string, string>>>> = {
  "ort-cpu": {
    // 24 chained norms of [1, 197, 768] (ViT-B/16's stream): 9.8 ms as SkipLayerNormalization,
    // 4.3 ms as Add + LayerNormalization; 197 × 1024: 12.5 vs 4.9 ms; 50 × 768: 2.7 vs 1.4 ms;
    // 577 × 768: 26.5 vs 8.3 ms (10th percentile of 40–60 interleaved runs). In the whole ViT-B/16
    // each one took 0.8 ms against 0.1 ms for LayerNormalization. SkipSimplifiedLayerNormalization
    // is on a par with Add + SimplifiedLayerNormalization, so it stays.
    SkipLayerNormalization:
      "SkipLayerNormalization runs about twice as long as Add + LayerNormalization on ort-cpu (ONNX Runtime 1.30)",
  },
  "ort-cuda": {},
};

/** Why `target` should not get the fused op `op` although it has a kernel (it measured slower), or undefined. */
export function slowerThanUnfused(target: OrtTarget, op: string): string | undefined {
  return SLOWER_THAN_UNFUSED[target][op];
}

/** Throws an InternalError naming every op in `model` that `target` does not implement. */
export function assertTargetOps(model: OnnxModel, target: Target): void {
  const allowed = TARGET_OPS[target];
  const missing = new Set(model.nodes.map((n) => opKey(n.domain ?? "", n.op)).filter((k) => !allowed.has(k)));
  if (missing.size > 0)
    throw new InternalError(
      `graph ${model.graphName} uses ${[...missing].sort().join(", ")}, which target ${target} does not implement`,
    );
}

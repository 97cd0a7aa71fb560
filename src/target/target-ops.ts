// The op tables targets are built from (target.ts): the standard ONNX ops the portable lowering
// emits, and the float dtypes each ONNX Runtime contrib op has a kernel for on each provider (so
// fusion passes emit only what runs). Sources: ONNX Runtime's CPU and CUDA kernel registries for
// releases 1.20–1.30 (onnxruntime/contrib_ops/{cpu,cuda}/*_kernels.cc).

import { InternalError } from "../diagnostics/diagnostic.js";
import type { DType } from "../ir/types.js";

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

// Lowerings of the quantized IR ops that quantization passes create (src/passes/quant/): the
// quantized matrix product in the kernel its pass chose for the target, and parameters stored in a
// reduced float type. Quantized tensors are computed here, from the real weights (checkpoint or
// seeded values, or a precomputed value), lazily when the writer asks for their bytes.

import { InternalError } from "../diagnostics/diagnostic.js";
import type { Node, Value } from "../ir/graph.js";
import type { DType } from "../ir/types.js";
import { PRECOMPUTED, QUANT_LINEAR, STORED_CAST, type QuantKernel } from "../ir/ops.js";
import {
  int4Blocks,
  quantizeInt4Blockwise,
  quantizeInt8PerChannel,
  type ScaleRounding,
  type WeightLayout,
} from "../numerics/quant-math.js";
import { encodeValues, int, onnxDataType, type OnnxEmitter } from "./emitter.js";
import { float16ToFloat32, float32ToFloat16 } from "../numerics/float-convert.js";
import type { Context, Lowering } from "./lower.js";
import type { OnnxDataType } from "../onnx/onnx-writer.js";
import { MS_DOMAIN } from "../target/target-ops.js";

/** An ONNX Runtime contrib op (domain com.microsoft); returns its first output. */
function contrib(
  e: OnnxEmitter,
  op: string,
  inputs: readonly (string | undefined)[],
  attributes: Parameters<OnnxEmitter["op"]>[2] = {},
): string {
  const out = e.op(op, inputs, attributes);
  const node = e.nodes[e.nodes.length - 1]!;
  if (!node.outputs.includes(out)) throw new InternalError(`emitted ${op} is not the last node`);
  node.domain = MS_DOMAIN;
  return out;
}

/** Float32 values of little-endian float32 bytes (copied when unaligned). */
function floatsOf(bytes: Uint8Array): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
}

/** The float32 values of a stored operand: a parameter, or a value precomputed at build time. */
function storedValues(v: Value, ctx: Context): Float32Array {
  if (v.source.kind === "param") {
    if (v.source.param.type.dtype !== "f32")
      throw new InternalError(`quantized weight ${v.source.param.name} is ${v.source.param.type.dtype}`);
    return floatsOf(ctx.options.paramBytes(v.source.param));
  }
  const p = v.producer;
  if (p?.op === PRECOMPUTED && ctx.options.precomputed)
    return floatsOf(ctx.options.precomputed(String(p.attrs["name"])));
  throw new InternalError(`operand #${v.id} of graph ${ctx.graph.name} is not a stored tensor`);
}

/**
 * Drops the float initializer of a stored operand that only `readers` read: the lowering of each
 * of them writes the tensor in its own form, and a model shipping both would be larger than the
 * float one. lowerGraph adds a parameter's initializer before lowering any node, so it is there.
 */
function retireInitializer(
  e: OnnxEmitter,
  name: string,
  v: Value,
  ctx: Context,
  readers: (n: Node) => boolean,
): boolean {
  if (ctx.graph.isOutput(v) || !v.uses.every((u) => readers(u.node))) return false;
  const at = e.initializers.findIndex((t) => t.name === name);
  if (at < 0) return false;
  e.initializers.splice(at, 1);
  return true;
}

/** Computes `make` once for `readers` lazy consumers (an initializer's bytes and its scales), then lets it go. */
function shared<T>(make: () => T, readers: number): () => T {
  let value: T | undefined;
  let reads = 0;
  return () => {
    const v = (value ??= make());
    if (++reads >= readers) value = undefined;
    return v;
  };
}

const f16Round: ScaleRounding = (x) => float16ToFloat32(float32ToFloat16(Float32Array.of(x)))[0]!;

/** The scale type a kernel reads next to activations of `dtype`. */
const scaleType = (dtype: DType): { data: OnnxDataType; round: ScaleRounding } =>
  dtype === "f16" ? { data: "float16", round: f16Round } : { data: "float32", round: Math.fround };

const lowerQuantLinear: Lowering = (e, node, [x, w, b], ctx) => {
  const xv = node.inputs[0]!;
  const wv = node.inputs[1]!;
  const layout = node.attrs["weight_layout"] as WeightLayout;
  const kernel = node.attrs["kernel"] as QuantKernel;
  const [K, N] = (layout === "out_in" ? [wv.type.shape[1], wv.type.shape[0]] : wv.type.shape) as [number, number];
  retireInitializer(e, w!, wv, ctx, (n) => n.op === QUANT_LINEAR);
  const dtype = xv.type.dtype;
  const addBias = (y: string) => (b === undefined ? y : e.op("Add", [y, b]));

  if (kernel === "dynamic-quantize-matmul" || kernel === "qdq") {
    const q = shared(() => quantizeInt8PerChannel(storedValues(wv, ctx), layout, K, N), 2);
    const codes = e.initializer(`${w}.int8`, "int8", [K, N], () => encodeValues(q().q, "int8"));
    const scales = e.initializer(`${w}.int8_scale`, "float32", [N], () => encodeValues(q().scales, "float32"));
    if (kernel === "dynamic-quantize-matmul") {
      if (dtype !== "f32") throw new InternalError(`DynamicQuantizeMatMul takes f32, not ${dtype}`);
      return contrib(e, "DynamicQuantizeMatMul", [x, codes, scales, undefined, b]);
    }
    // DequantizeLinear gives float32 before opset 19; a reduced-precision product casts the weight.
    const weight = e.cast(e.op("DequantizeLinear", [codes, scales], { axis: int(1) }), "f32", dtype);
    return addBias(e.op("MatMul", [x, weight]));
  }

  if (kernel === "matmul-nbits") {
    const blockSize = node.attrs["block_size"] as number;
    const blocks = int4Blocks(K, blockSize);
    // MatMulNBits reads f32 or f16 activations; others go through f32.
    const runAs: DType = dtype === "f16" ? "f16" : "f32";
    const scale = scaleType(runAs);
    const q = shared(() => quantizeInt4Blockwise(storedValues(wv, ctx), layout, K, N, blockSize, scale.round), 2);
    const suffix = `int4_b${blockSize}`;
    const packed = e.initializer(`${w}.${suffix}`, "uint8", [N, blocks, blockSize / 2], () => q().packed);
    const scales = e.initializer(`${w}.${suffix}_scale${runAs === "f16" ? "_f16" : ""}`, scale.data, [N * blocks], () =>
      encodeValues(q().scales, scale.data),
    );
    const attrs = {
      K: int(K),
      N: int(N),
      bits: int(4),
      block_size: int(blockSize),
      accuracy_level: int(node.attrs["accuracy_level"] as number),
    };
    const y = contrib(e, "MatMulNBits", [e.cast(x!, dtype, runAs), packed, scales], attrs);
    return addBias(e.cast(y, runAs, dtype));
  }
  throw new InternalError(`quant.Linear with unknown kernel ${String(kernel)}`);
};

/** A parameter or precomputed value in another float type: stored converted when only such casts read it. */
const lowerStoredCast: Lowering = (e, node, [x], ctx) => {
  const v = node.inputs[0]!;
  const to = node.attrs["to"] as DType;
  const data = onnxDataType(to, "a converted weight", node.span);
  const init = e.initializers.find((t) => t.name === x);
  if (init && init.dataType === data) return x!; // converted by an earlier cast of the same tensor
  const onlyCasts =
    !ctx.graph.isOutput(v) && v.uses.every((u) => u.node.op === STORED_CAST && u.node.attrs["to"] === to);
  if (init && init.dataType === "float32" && onlyCasts) {
    const bytes = init.bytes;
    init.dataType = data;
    init.bytes = () => encodeValues(floatsOf(bytes()), data);
    return x!;
  }
  return e.cast(x!, v.type.dtype, to);
};

export const QUANT_LOWERINGS: Readonly<Record<string, Lowering>> = {
  [QUANT_LINEAR]: lowerQuantLinear,
  [STORED_CAST]: lowerStoredCast,
};

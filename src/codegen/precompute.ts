// Evaluates a graph's precomputed values (what the precompute pass hoisted out of it) once, at
// build time, with the weights being compiled, so they can be written as initializers.
//
// Values that only rearrange one parameter (a transposed QKV weight, a reshaped embedding), or
// concatenate such values (the packed q/k/v weights and biases of fused attention), are evaluated
// here on the bytes: handing a ViT's twelve QKV weights to an onnxruntime session just to
// transpose them cost over a second, and BERT-base's packing 2.4 s and 270 MB. Everything else
// runs in onnxruntime, loaded only then.

import type { Graph, GraphOutput, IrModule, Node, Param, Value } from "../ir/graph.js";
import { DTYPE_BYTES } from "../ir/types.js";
import { permuteBytes } from "../numerics/layout.js";
import { lowerGraph, type LowerOptions } from "./lower.js";
import { encodeOnnxModel, type OnnxModel } from "../onnx/onnx-writer.js";
import { onnxruntime } from "../runtime/onnxruntime.js";
import { freshBytes, ScratchRing } from "../numerics/scratch.js";

/** Ops that keep the bytes (Reshape and friends) or only reorder them (Transpose). */
const LAYOUT_OPS = new Set(["Transpose", "Reshape", "Squeeze", "Unsqueeze"]);

/**
 * When `v` is a parameter through reshapes and at most one transpose: the parameter and that
 * transpose. Reshapes keep the bytes, so the transpose's input is the parameter's bytes in the
 * shape the transpose sees.
 */
function layoutChain(v: Value): { param: Param; transpose: Node | undefined } | undefined {
  let transpose: Node | undefined;
  for (let at = v; ; ) {
    if (at.source.kind === "param") return { param: at.source.param, transpose };
    const n = at.producer;
    if (!n || !LAYOUT_OPS.has(n.op) || !n.inputs[0]) return undefined;
    if (n.op === "Transpose") {
      if (transpose) return undefined;
      transpose = n;
    }
    at = n.inputs[0];
  }
}

function evaluateLayout(
  { param, transpose }: { param: Param; transpose: Node | undefined },
  options: LowerOptions,
): Uint8Array {
  const bytes = options.paramBytes(param);
  if (!transpose) return bytes;
  const shape = transpose.inputs[0]!.type.shape as number[];
  return permuteBytes(
    bytes,
    shape,
    transpose.attrs["perm"] as number[],
    DTYPE_BYTES[param.type.dtype],
    options.allocate,
  );
}

type Chain = NonNullable<ReturnType<typeof layoutChain>>;

/** When `v` is a Concat of layout chains: its axis (0 ≤ axis < rank) and the chains with their shapes. */
function concatOfChains(v: Value): { axis: number; parts: { chain: Chain; shape: readonly number[] }[] } | undefined {
  const n = v.producer;
  if (n?.op !== "Concat") return undefined;
  const parts = n.inputs.map((i) => i && layoutChain(i));
  if (parts.some((c) => !c)) return undefined;
  const rank = v.type.shape.length;
  return {
    axis: ((n.attrs["axis"] as number) + rank) % rank,
    parts: parts.map((chain, i) => ({ chain: chain!, shape: n.inputs[i]!.type.shape as number[] })),
  };
}

/**
 * The concatenation of the parts along `axis`, in one buffer from `options.allocate` (the writer's
 * one take for this tensor). The parts are read and transposed in a ring of their own and copied
 * in one after another, so they never reach the buffer of the tensor still being written.
 */
function evaluateConcat(
  v: Value,
  { axis, parts }: NonNullable<ReturnType<typeof concatOfChains>>,
  options: LowerOptions,
): Uint8Array {
  const size = DTYPE_BYTES[v.type.dtype];
  const count = (dims: readonly number[]) => dims.reduce((a, d) => a * d, 1);
  const shape = v.type.shape as number[];
  const rows = count(shape.slice(0, axis));
  const rowBytes = count(shape.slice(axis)) * size;
  const out = (options.allocate ?? freshBytes)(count(shape) * size);
  const scratch = new ScratchRing();
  const partOptions: LowerOptions = {
    ...options,
    paramBytes: (p) => options.paramBytes(p, scratch.take),
    allocate: scratch.take,
  };
  let offset = 0;
  for (const { chain, shape: partShape } of parts) {
    const bytes = evaluateLayout(chain, partOptions);
    const chunk = count(partShape.slice(axis)) * size;
    for (let r = 0; r < rows; r++) out.set(bytes.subarray(r * chunk, (r + 1) * chunk), r * rowBytes + offset);
    offset += chunk;
  }
  return out;
}

async function evaluateInOnnxruntime(
  module: IrModule,
  sub: Graph,
  options: LowerOptions,
): Promise<Map<string, Uint8Array>> {
  const values = new Map<string, Uint8Array>();
  const ort = await onnxruntime();
  const model = lowerGraph(module, sub, { ...options, metadata: {} });
  // Every input is an initializer, so load-time optimisation would compute the outputs a second time.
  const session = await ort.InferenceSession.create(encodeOnnxModel(model), { graphOptimizationLevel: "disabled" });
  try {
    const results = await session.run({});
    for (const o of sub.outputs) {
      const data = results[o.name]!.data as ArrayLike<number> & {
        buffer: ArrayBufferLike;
        byteOffset: number;
        byteLength: number;
      };
      values.set(o.name, new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice());
    }
  } finally {
    await session.release();
  }
  return values;
}

/**
 * The bytes of each precomputed value, by name, as thunks: layout-only values and concatenations
 * of them are computed when the writer reaches them, so only one is alive at a time; the others
 * (computed in onnxruntime) now.
 */
export async function evaluatePrecomputed(
  module: IrModule,
  graph: Graph,
  options: LowerOptions,
): Promise<Map<string, () => Uint8Array>> {
  const values = new Map<string, () => Uint8Array>();
  const sub = graph.precomputed;
  if (!sub) return values;
  const rest: GraphOutput[] = [];
  for (const o of sub.outputs) {
    const chain = layoutChain(o.value);
    const concat = chain ? undefined : concatOfChains(o.value);
    if (chain) values.set(o.name, () => evaluateLayout(chain, options));
    else if (concat) values.set(o.name, () => evaluateConcat(o.value, concat, options));
    else rest.push(o);
  }
  if (rest.length === 0) return values;
  // A view of the precomputed graph with only the remaining outputs: lowering walks back from them.
  const view = Object.create(sub, { outputs: { value: rest } }) as Graph;
  for (const [name, bytes] of await evaluateInOnnxruntime(module, view, options)) values.set(name, () => bytes);
  return values;
}

/** Lowers `graph` with its precomputed values evaluated from the same parameters first. */
export async function lowerWithPrecomputed(module: IrModule, graph: Graph, options: LowerOptions): Promise<OnnxModel> {
  const precomputed = await evaluatePrecomputed(module, graph, options);
  return lowerGraph(module, graph, { ...options, precomputed: (name) => precomputed.get(name)!() });
}

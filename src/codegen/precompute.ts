// Evaluates a graph's precomputed values (what the precompute pass hoisted out of it) once, at
// build time, with the weights being compiled, so they can be written as initializers.

import * as ort from "onnxruntime-node";
import type { Graph, IrModule } from "../ir/graph.js";
import { lowerGraph, type LowerOptions } from "./lower.js";
import { encodeOnnxModel } from "./onnx-writer.js";

export async function evaluatePrecomputed(module: IrModule, graph: Graph, options: LowerOptions): Promise<Map<string, Uint8Array>> {
  const values = new Map<string, Uint8Array>();
  const sub = graph.precomputed;
  if (!sub || sub.outputs.length === 0) return values;
  const model = lowerGraph(module, sub, { ...options, metadata: {} });
  const session = await ort.InferenceSession.create(encodeOnnxModel(model));
  try {
    const results = await session.run({});
    for (const o of sub.outputs) {
      const t = results[o.name]!;
      const data = t.data as ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number };
      values.set(o.name, new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice());
    }
  } finally {
    await session.release();
  }
  return values;
}

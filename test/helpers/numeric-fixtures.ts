// Numerical checks for pass tests on modules built in memory (graph-fixtures.ts): a graph lowered
// to ONNX as `compile` writes it for the portable target, and versions of a module after passes
// run in onnxruntime against the module before them, on the same seeded inputs and weights.

import { encodeFloats, initialValues } from "../../src/codegen/init.js";
import type { LowerOptions } from "../../src/codegen/lower.js";
import { encodeOnnxModel } from "../../src/onnx/onnx-writer.js";
import { lowerWithPrecomputed } from "../../src/codegen/precompute.js";
import { targetLowerings } from "../../src/codegen/targets.js";
import { TARGETS } from "../../src/target/target.js";
import { compareModels } from "../../src/driver/verify.js";
import { InternalError } from "../../src/diagnostics/diagnostic.js";
import type { Graph, IrModule } from "../../src/ir/graph.js";

/** Size of the symbolic dims of the inputs other than token counts: above 1, so a batch mix-up shows. */
const BATCH = 2;

/**
 * `graph` as portable ONNX bytes, its parameters drawn from their initialisers under `seed` and its
 * precomputed values evaluated, as `compile` does without a checkpoint.
 */
export async function onnxBytes(module: IrModule, graph: Graph, seed = 0): Promise<Uint8Array> {
  const options: LowerOptions = {
    paramBytes: (p, allocate) => encodeFloats(initialValues(p, seed, allocate), p.type.dtype),
    location: () => "",
    metadata: {},
    target: TARGETS.portable,
    targetLowerings: targetLowerings(TARGETS.portable),
  };
  return encodeOnnxModel(await lowerWithPrecomputed(module, graph, options));
}

/**
 * For each version of `reference` (the same module after some passes), the largest relative error
 * of its outputs (max |Δ| over max |reference|, per output) over every graph, on seeded inputs and
 * the same seeded weights: NaN where a version lost an output or changed an output's shape.
 */
export async function relativeErrors(reference: IrModule, versions: readonly IrModule[], seed = 0): Promise<number[]> {
  const worst = versions.map(() => 0);
  for (const graph of reference.graphs) {
    const others = await Promise.all(
      versions.map((m) => {
        const same = m.graphs.find((g) => g.name === graph.name);
        if (!same) throw new InternalError(`a version of module ${reference.name} has no graph ${graph.name}`);
        return onnxBytes(m, same, seed);
      }),
    );
    const differences = await compareModels(await onnxBytes(reference, graph, seed), others, seed, BATCH);
    differences.forEach((outputs, i) => {
      // Math.max keeps a NaN: a lost or reshaped output must never compare as small.
      for (const d of outputs) worst[i] = Math.max(worst[i]!, d.relativeError);
    });
  }
  return worst;
}

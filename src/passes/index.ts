// Public surface of the passes: the manager, the rewrite engine, every pass, and the default
// pipeline `vlmc compile` runs.

import { commonSubexpressionElimination } from "./cleanup/common-subexpression-elimination.js";
import { constantFolding } from "./cleanup/constant-folding.js";
import { deadCodeElimination } from "./cleanup/dead-code-elimination.js";
import { fuseActivations } from "./fusion/fuse-activations.js";
import { fuseAttention } from "./fusion/fuse-attention.js";
import { fuseNorms } from "./fusion/fuse-norms.js";
import { PassManager, type PipelineStep } from "./manager.js";
import { outputDependence } from "./checks/output-dependence.js";
import { precomputeConstants } from "./cleanup/precompute-constants.js";
import { convertPrecision, quantizeWeights } from "./quant/index.js";
import { unusedValues } from "./checks/unused-values.js";

export * from "./pass.js";
export * from "./manager.js";
export * from "./rewrite.js";
export { printModule } from "./module-ir.js";
export * from "./quant/index.js";
export {
  commonSubexpressionElimination,
  constantFolding,
  deadCodeElimination,
  fuseActivations,
  fuseAttention,
  fuseNorms,
  outputDependence,
  precomputeConstants,
  unusedValues,
};

/**
 * Checks first (they see the graph as written), then cleanup to a fixpoint, then hoisting of
 * input-independent work, which wants the cleaned graph.
 */
export const DEFAULT_PIPELINE: readonly PipelineStep[] = [
  "unused-values",
  "output-dependence",
  { fixpoint: ["constant-folding", "common-subexpression-elimination", "dead-code-elimination"] },
  "precompute-constants",
  // Last: they keep fp32 weights as inputs and leave the reduced forms to codegen.
  "quantize-weights",
  "convert-precision",
  // Fusion into ONNX Runtime's ops (only on its targets) after them, so that its kernel checks see
  // the dtypes the graph runs in.
  "fuse-attention",
  "fuse-norms",
  "fuse-activations",
];

/** The passes `vlmc check` runs: they report, they never change the graph. */
export const CHECK_PIPELINE: readonly PipelineStep[] = ["unused-values", "output-dependence"];

export function createPassManager(pipeline: readonly PipelineStep[] = DEFAULT_PIPELINE): PassManager {
  return new PassManager(pipeline)
    .register(unusedValues)
    .register(outputDependence)
    .register(constantFolding, "fold")
    .register(commonSubexpressionElimination, "cse")
    .register(deadCodeElimination, "dce")
    .register(precomputeConstants, "precompute")
    .register(quantizeWeights, "quantize")
    .register(convertPrecision, "precision")
    .register(fuseAttention)
    .register(fuseNorms)
    .register(fuseActivations);
}

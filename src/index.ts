// The package root: everything the CLI does is available here as a typed API.
export { VERSION } from "./version.js";
export * from "./api.js";
export * from "./diagnostics/index.js";
export * from "./parser/index.js";
export * from "./check/index.js";
export * from "./ir/index.js";
export { Elaborator, MAX_PARAMETERS, compareDims, type TokenFact } from "./elaborate/elaborate.js";
export { BUILTINS, type BuiltinSig } from "./elaborate/signatures.js";
export { summarize, renderSummary, type ModelSummary } from "./summary.js";
export { compile, type CompileOptions, type CompileResult, type CompiledFile, type CompileProgress } from "./codegen/compile.js";
export { lowerGraph, PORTABLE_OPSET, PORTABLE_IR_VERSION, type LowerOptions } from "./codegen/lower.js";
export { initialValues, encodeFloats, namedRng, Rng } from "./codegen/init.js";
export { loadWeights, parseWeightSpec, declaredWeightSources, type WeightSource, type LoadedWeights } from "./codegen/weights.js";
export { formatText, type FormatResult } from "./format/index.js";
export * from "./passes/index.js";

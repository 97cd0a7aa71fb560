// The package root: everything the CLI does is available here as a typed API.
export { VERSION } from "./version.js";
export * from "./driver/check.js";
export * from "./diagnostics/index.js";
export * from "./lang/parser/index.js";
export * from "./lang/check/index.js";
export * from "./ir/index.js";
export { Elaborator, MAX_PARAMETERS, compareDims, type TokenFact } from "./lang/elaborate/elaborate.js";
export { BUILTINS, type BuiltinSig } from "./lang/builtins.js";
export { summarize, renderSummary, type ModelSummary } from "./driver/summary.js";
export {
  compile,
  type CompileOptions,
  type CompileResult,
  type CompiledFile,
  type CompileProgress,
} from "./driver/compile.js";
export { lowerGraph, PORTABLE_OPSET, PORTABLE_IR_VERSION, type LowerOptions } from "./codegen/lower.js";
export { initialValues, encodeFloats, namedRng, Rng } from "./codegen/init.js";
export {
  loadWeights,
  parseWeightSpec,
  declaredWeightSources,
  type WeightSource,
  type LoadedWeights,
} from "./codegen/weights.js";
export { formatText, type FormatResult } from "./lang/format/index.js";
export * from "./passes/index.js";
export * from "./runtime/generate/index.js";

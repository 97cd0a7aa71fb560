// The package root, `import … from "vlmc"`: what a user of the library needs and nothing internal.
// The front end (parse, check, elaborate, format), compile, summary, the differential check that
// `vlmc compile --verify` runs, running a compiled model, and the diagnostics every result carries.
// Everything else (IR, passes, codegen) may change between releases without notice.
export { VERSION } from "./version.js";
export {
  check,
  elaborate,
  formatText,
  parse,
  type CheckResult,
  type ElaboratedModel,
  type ElaborateOptions,
  type ElaborateResult,
  type FormatResult,
} from "./driver/check.js";
export {
  compile,
  TARGET_NAMES,
  type CompiledFile,
  type CompileOptions,
  type CompileProgress,
  type CompileResult,
  type Precision,
  type QuantizeMode,
  type TargetName,
} from "./driver/compile.js";
export { renderSummary, summarize, type ModelSummary } from "./driver/summary.js";
export { compilePackage, type PackageOptions, type PackageResult } from "./driver/package.js";
export { openPackage, readManifest, PackageEngine, PackageError } from "./runtime/generate/package-engine.js";
export type { PrefillRequest, RowImages, StepEngine } from "./runtime/generate/step-engine.js";
export * from "./onnx/manifest.js";
export {
  compareModels,
  renderVerifyReport,
  verifyCompiled,
  type OutputComparison,
  type OutputDifference,
  type VerifyOptions,
  type VerifyReport,
} from "./driver/verify.js";
export { randomInputs, runModel, symbolSizes, type ModelSource, type Tensor } from "./runtime/onnxruntime.js";
export { CATALOG, type DiagnosticCode, type Severity } from "./diagnostics/catalog.js";
export { DiagnosticError, type Diagnostic, type Related } from "./diagnostics/diagnostic.js";
export { renderGithub, renderPretty, toJson, type JsonDiagnostic, type SourceLookup } from "./diagnostics/render.js";
export type { Span } from "./diagnostics/source.js";
export {
  drawGraph,
  renderSummaryPage,
  type GraphFormat,
  type GraphLevel,
  type GraphOptions,
  type GraphResult,
} from "./driver/graph.js";
export { LanguageService, type CompletionItem, type Hover, type Location } from "./driver/language-service.js";
export * from "./runtime/generate/index.js";

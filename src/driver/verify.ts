// `vlmc compile --verify`: a differential check of what a compile wrote. The same models are
// compiled again as plainly as possible (no passes, portable target, fp32, same weights and seed),
// both versions run in onnxruntime on the same seeded random inputs, and every output is compared:
// max abs error relative to the output's scale where the passes promise the same numbers, cosine
// similarity where quantization or reduced precision promise only close ones, and beside it the
// error's norm relative to the reference's, which fails what the cosine cannot see: an output of
// one element (the cosine of two numbers of one sign is 1), or one scaled as a whole.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import { createPassManager } from "../passes/index.js";
import { planFeeds } from "../runtime/feeds.js";
import { compile, type CompiledFile, type CompileOptions, type CompileResult } from "./compile.js";
import {
  evalDimParam as evalDimParamAt,
  numbers,
  runModel,
  symbolSizes,
  type ModelSource,
} from "../runtime/onnxruntime.js";

/** fp32 pipelines: the largest |optimized − reference| may be this fraction of the largest |reference|. */
export const DEFAULT_EXACT_TOLERANCE = 1e-4;
/** Quantized or reduced-precision pipelines: the least cosine similarity to the reference. */
export const DEFAULT_COSINE_TOLERANCE = 0.99;

/** Passes whose changes make outputs close to the reference rather than equal to it. */
const APPROXIMATE_PASSES = new Set(["quantize-weights", "convert-precision"]);

/**
 * The largest ‖optimized − reference‖ / ‖reference‖ that a cosine threshold allows: for two vectors
 * of equal norm whose cosine is c, the relative error is √(2(1 − c)) (0.141 at 0.99).
 */
export function normBoundOf(cosine: number): number {
  return Math.sqrt(2 * Math.max(0, 1 - cosine));
}

export interface VerifyOptions {
  /**
   * The threshold of whichever metric a model is judged by: the relative max abs error of an
   * exact pipeline (default 1e-4), or the least cosine similarity of an approximate one (0.99).
   */
  readonly tolerance?: number;
  /**
   * Size of the symbolic dims that are not token counts (batch, images…); default 1, as `vlmc run`.
   * Tests ask for 2, so that a rewrite that mixes up batch rows shows.
   */
  readonly batch?: number;
}

export interface OutputComparison {
  readonly model: string;
  readonly graph: string;
  readonly output: string;
  readonly shape: readonly number[];
  readonly metric: "max-abs" | "cosine";
  readonly maxAbsError: number;
  /** The largest |reference value|: what the max abs error is relative to. */
  readonly scale: number;
  readonly relativeError: number;
  /** ‖optimized − reference‖ / ‖reference‖ (Euclidean); Infinity when only the reference is all zeros. */
  readonly normError: number;
  readonly cosine: number;
  readonly threshold: number;
  /** The bound on normError of the cosine metric: normBoundOf(threshold). */
  readonly normBound: number;
  readonly ok: boolean;
}

export interface VerifyReport {
  readonly comparisons: readonly OutputComparison[];
  /** Failures to build the reference or to run either version. */
  readonly diagnostics: readonly Diagnostic[];
  readonly ok: boolean;
}

/** Largest error, scale and cosine similarity of two equally long tensors. */
export function compareTensors(
  reference: ArrayLike<number>,
  actual: ArrayLike<number>,
): { maxAbsError: number; scale: number; relativeError: number; normError: number; cosine: number } {
  let maxAbsError = 0;
  let scale = 0;
  let dot = 0;
  let refNorm = 0;
  let actNorm = 0;
  let errNorm = 0;
  for (let i = 0; i < reference.length; i++) {
    const r = reference[i]!;
    const a = actual[i]!;
    const diff = Math.abs(a - r);
    // A NaN anywhere is an error of its own: it must never compare as small.
    maxAbsError = Number.isNaN(diff) ? NaN : Math.max(maxAbsError, diff);
    scale = Math.max(scale, Math.abs(r));
    dot += r * a;
    refNorm += r * r;
    actNorm += a * a;
    errNorm += (a - r) * (a - r);
  }
  const cosine =
    refNorm === 0 && actNorm === 0 ? 1 : refNorm === 0 || actNorm === 0 ? 0 : dot / Math.sqrt(refNorm * actNorm);
  const normError = refNorm > 0 ? Math.sqrt(errNorm / refNorm) : errNorm === 0 ? 0 : Infinity;
  return { maxAbsError, scale, relativeError: scale > 0 ? maxAbsError / scale : maxAbsError, normError, cosine };
}

/** Evaluates a dim_param the compiler wrote (`B`, `B*N`, `2*T + 1`, `T - 1`) at the verification sizes. */
export function evalDimParam(text: string): number {
  return evalDimParamAt(text, symbolSizes(1));
}

/** One output of a reference model against the same output of another. */
export interface OutputDifference {
  readonly output: string;
  readonly shape: readonly number[];
  /** The other model's shape of the output; undefined when it has no output of that name. */
  readonly actualShape: readonly number[] | undefined;
  /** As compareTensors; NaN when the shapes differ. */
  readonly maxAbsError: number;
  readonly scale: number;
  readonly relativeError: number;
  readonly normError: number;
  readonly cosine: number;
}

/**
 * Runs `reference` and every model of `others` (versions of one graph) on the same seeded random
 * inputs, and compares each output of the reference with the same output of each other model.
 * Inputs a version no longer reads are left out of its feeds. Throws when onnxruntime does.
 */
export async function compareModels(
  reference: ModelSource,
  others: readonly ModelSource[],
  seed: number,
  batch = 1,
): Promise<OutputDifference[][]> {
  // Sized within the symbols' declared bounds: a learned position table has no row past them.
  const size = symbolSizes(batch);
  const { feeds } = await planFeeds(reference, {}, { seed, size: (s, bound) => Math.min(size(s), bound ?? Infinity) });
  const expected = await runModel(reference, feeds);
  const differences: OutputDifference[][] = [];
  for (const other of others) {
    const actual = await runModel(other, feeds);
    differences.push(
      Object.entries(expected).map(([output, r]) => {
        const a = actual[output];
        const actualShape = a ? [...a.dims] : undefined;
        if (!a || a.dims.join(",") !== r.dims.join(","))
          return {
            output,
            shape: [...r.dims],
            actualShape,
            maxAbsError: NaN,
            scale: NaN,
            relativeError: NaN,
            normError: NaN,
            cosine: NaN,
          };
        return { output, shape: [...r.dims], actualShape, ...compareTensors(numbers(r), numbers(a)) };
      }),
    );
  }
  return differences;
}

/** Every pass switched off: the reference is the graph as elaborated. */
function noPasses(): string[] {
  return createPassManager()
    .list()
    .map((p) => `-${p.name}`);
}

/**
 * Compares the files of `compiled` (made by compile(paths, options)) against a reference compile
 * of the same models with no passes, portable target and fp32. The inputs are seeded by
 * `options.seed`, as are parameters without a checkpoint, so both versions hold the same weights.
 */
export async function verifyCompiled(
  paths: readonly string[],
  options: CompileOptions,
  compiled: CompileResult,
  settings: VerifyOptions = {},
): Promise<VerifyReport> {
  const diagnostics: Diagnostic[] = [];
  const comparisons: OutputComparison[] = [];
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), "vlmc-verify-"));
  try {
    const reference = await compile(paths, {
      ...options,
      out: temp,
      target: "portable",
      passes: noPasses(),
      quantize: undefined,
      precision: undefined,
      printIrAfter: undefined,
      printIr: undefined,
      onProgress: undefined,
      emit: "onnx",
    });
    diagnostics.push(...reference.diagnostics.filter((d) => d.severity === "error"));
    if (!reference.ok) return { comparisons, diagnostics, ok: false };
    const refFiles = new Map(reference.files.map((f) => [`${f.model}/${f.graph}`, f]));
    const seed = options.seed ?? 0;
    for (const file of compiled.files) {
      const ref = refFiles.get(`${file.model}/${file.graph}`);
      if (!ref) {
        diagnostics.push(diagnostic("VLM4007", `verify: no reference for graph ${file.graph} of model ${file.model}`));
        continue;
      }
      const report = compiled.passReports.find((r) => r.module === file.model);
      const approximate = report?.runs.some((r) => r.changed && APPROXIMATE_PASSES.has(r.pass)) ?? false;
      comparisons.push(...(await compareFile(file, ref, seed, approximate, settings, diagnostics)));
    }
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
  }
  return { comparisons, diagnostics, ok: diagnostics.length === 0 && comparisons.every((c) => c.ok) };
}

async function compareFile(
  file: CompiledFile,
  ref: CompiledFile,
  seed: number,
  approximate: boolean,
  settings: VerifyOptions,
  diagnostics: Diagnostic[],
): Promise<OutputComparison[]> {
  let differences: OutputDifference[];
  try {
    differences = (await compareModels(ref.path, [file.path], seed, settings.batch))[0]!;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    // Verification runs on ONNX Runtime's CPU provider, which has no bf16 kernels for most ops.
    const hint = /Could not find an implementation/.test(message)
      ? "verification runs on the CPU provider; a graph for a GPU provider (bf16) cannot be verified here"
      : undefined;
    diagnostics.push(
      diagnostic(
        "VLM4007",
        `verify: onnxruntime failed on graph ${file.graph} of model ${file.model}: ${message}`,
        undefined,
        hint ? { hint } : {},
      ),
    );
    return [];
  }
  const metric = approximate ? "cosine" : "max-abs";
  const threshold = settings.tolerance ?? (approximate ? DEFAULT_COSINE_TOLERANCE : DEFAULT_EXACT_TOLERANCE);
  const normBound = normBoundOf(threshold);
  return differences.map(({ output, shape, actualShape, ...c }) => {
    if (actualShape?.join(",") !== shape.join(",")) {
      diagnostics.push(
        diagnostic(
          "VLM4007",
          `verify: output ${output} of graph ${file.graph} is [${actualShape?.join(", ") ?? "missing"}], the reference [${shape.join(", ")}]`,
        ),
      );
      return { model: file.model, graph: file.graph, output, shape, metric, ...c, threshold, normBound, ok: false };
    }
    const ok = metric === "cosine" ? c.cosine >= threshold && c.normError <= normBound : c.relativeError <= threshold;
    return { model: file.model, graph: file.graph, output, shape, metric, ...c, threshold, normBound, ok };
  });
}

const g = (x: number): string =>
  Number.isNaN(x)
    ? "NaN"
    : x === 0
      ? "0"
      : Math.abs(x) >= 1e-3 && Math.abs(x) < 1e4
        ? String(Number(x.toPrecision(4)))
        : x.toExponential(2);

/** The comparisons as a table, one row per output, for `vlmc compile --verify`. */
export function renderVerifyReport(report: VerifyReport): string {
  const rows = [
    [
      "model",
      "graph",
      "output",
      "shape",
      "max abs err",
      "scale",
      "rel err",
      "norm err",
      "cosine",
      "threshold",
      "result",
    ],
  ];
  for (const c of report.comparisons) {
    const cosine = Number.isNaN(c.cosine) ? "NaN" : c.cosine.toFixed(6);
    const threshold =
      c.metric === "cosine" ? `cos ≥ ${c.threshold}, norm ≤ ${g(c.normBound)}` : `rel ≤ ${g(c.threshold)}`;
    rows.push([
      c.model,
      c.graph,
      c.output,
      `[${c.shape.join(", ")}]`,
      g(c.maxAbsError),
      g(c.scale),
      g(c.relativeError),
      g(c.normError),
      cosine,
      threshold,
      c.ok ? "ok" : "FAIL",
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const right = [false, false, false, false, true, true, true, true, true, false, false];
  const line = (r: string[]) =>
    r
      .map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  const failed = report.comparisons.filter((c) => !c.ok).length;
  const summary = report.ok
    ? `verify: ${report.comparisons.length} output${report.comparisons.length === 1 ? "" : "s"} match the unoptimized fp32 reference`
    : `verify: FAILED (${failed} of ${report.comparisons.length} output${report.comparisons.length === 1 ? "" : "s"} outside the threshold${report.diagnostics.length > 0 ? `, ${report.diagnostics.length} error${report.diagnostics.length === 1 ? "" : "s"}` : ""})`;
  return [rows.map(line).join("\n"), summary].join("\n");
}

// `compile`: .vlm files → one ONNX file per graph of each model. Parameters come from checkpoints
// where given (the model's `weights` declarations, then `weights` options) and from deterministic
// seeded initialisation otherwise. Output is byte-identical for identical inputs: no timestamps,
// source locations relative to the entry file, metadata from the sources' contents only.

import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import * as path from "node:path";
import { elaborate, type CheckResult } from "./check.js";
import { DiagnosticError, diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { Span } from "../diagnostics/source.js";
import type { LoadOptions, Program } from "../lang/parser/program.js";
import { parameterBytes } from "../codegen/init.js";
import type { LowerOptions } from "../codegen/lower.js";
import { lowerWithPrecomputed } from "../codegen/precompute.js";
import { targetLowerings } from "../codegen/targets.js";
import { targetNamed, type TargetName } from "../target/target.js";
import { createPassManager, printModule, type PassReport, type Precision, type QuantizeMode } from "../passes/index.js";
import { writeOnnxModel, type OnnxModel } from "../onnx/onnx-writer.js";

export { TARGET_NAMES, type TargetName } from "../target/target.js";
export { renderReport, type Precision, type QuantizeMode } from "../passes/index.js";
export { INT4_BLOCK_SIZES } from "../passes/quant/quantize-weights.js";
import { weightSources, loadWeights, parseWeightSpec, type LoadedWeights } from "../codegen/weights.js";

export interface CompileProgress {
  readonly path: string;
  readonly writtenBytes: number;
  readonly totalBytes: number;
}

export interface CompileOptions extends LoadOptions {
  /** Only this model (default: every model in the files). */
  readonly model?: string;
  /** Only this graph (`forward` or a `graph` name). */
  readonly graph?: string;
  /**
   * Where to write: a `.onnx` path when there is one model with one graph; otherwise a folder of
   * `<graph>.onnx` files (default `out/<model>/`), or with several models a folder of
   * `<model>/<graph>.onnx` (default `out/`).
   */
  readonly out?: string;
  /** Seed of the random initialisation of parameters no checkpoint provides (default 0). */
  readonly seed?: number;
  /** Checkpoints, `PATH` (whole model) or `COMPONENT=PATH`; they override the model's own `weights`. */
  readonly weights?: string | readonly string[];
  readonly externalData?: "auto" | "always" | "never";
  readonly onProgress?: (progress: CompileProgress) => void;
  /** What the graphs will run on (default portable: standard ONNX only). */
  readonly target?: TargetName;
  /** Pass selection (`["-cse"]` skips one; names replace the pipeline); see `vlmc compile --passes help`. */
  readonly passes?: readonly string[];
  readonly quantize?: QuantizeMode;
  readonly precision?: Precision;
  /** Block size of int4 weights (16, 32, 64, 128 or 256; default 32): larger blocks decode faster on CPU, less exactly. */
  readonly int4Block?: number;
  /** Print the IR after this pass (or "all") through `printIr`. */
  readonly printIrAfter?: string;
  readonly printIr?: (text: string) => void;
  /** Run the IR verifier after every pass (tests; cheap enough to leave on for small models). */
  readonly verifyIr?: boolean;
  /** "ir": stop after the passes and return the printed IR instead of writing ONNX. */
  readonly emit?: "onnx" | "ir";
}

export interface CompiledFile {
  readonly model: string;
  readonly graph: string;
  readonly path: string;
  /** The external data file, when initializers were written outside the model. */
  readonly dataPath: string | undefined;
  readonly bytes: number;
}

export interface CompileResult extends CheckResult {
  /** The files written, in model then graph order: all of them on success, none when lowering failed. */
  readonly files: readonly CompiledFile[];
  /** What the passes did, per model. */
  readonly passReports: readonly PassReport[];
  /** The printed IR after the passes, per model, with `emit: "ir"`. */
  readonly ir: readonly string[];
}

/** SHA-256 of every loaded file's text, in path order; paths themselves are left out so the hash is the same in any checkout. */
export function sourceHash(program: Program): string {
  const hash = createHash("sha256");
  for (const p of [...program.files.keys()].sort()) {
    const text = Buffer.from(program.files.get(p)!.source.text, "utf8");
    hash.update(`${text.byteLength}\n`);
    hash.update(text);
  }
  return hash.digest("hex");
}

/** `file:line:col`, with user files relative to the first entry's folder and std files as `std/<name>`. */
export function locator(program: Program): (span: Span) => string {
  const root = path.dirname(path.resolve(program.entries[0] ?? "."));
  return (span) => {
    const file = program.files.get(span.file);
    const { line, column } = file?.source.position(span.start) ?? { line: 0, column: 0 };
    const shown = file?.isStd
      ? `std/${path.basename(span.file)}`
      : path.relative(root, path.resolve(span.file)).split(path.sep).join("/");
    return `${shown}:${line}:${column}`;
  };
}

interface Planned {
  readonly model: string;
  readonly graph: string;
  readonly path: string;
  readonly onnx: OnnxModel;
}

function outputPath(
  out: string | undefined,
  models: number,
  model: string,
  graphs: number,
  graph: string,
): string | Diagnostic {
  if (out?.endsWith(".onnx")) {
    if (models === 1 && graphs === 1) return out;
    const what = models > 1 ? `${models} models` : `model ${model} has ${graphs} graphs`;
    return diagnostic("VLM4006", `-o ${out} names one file, but ${what}; give a folder instead`);
  }
  return models === 1
    ? path.join(out ?? path.join("out", model), `${graph}.onnx`)
    : path.join(out ?? "out", model, `${graph}.onnx`);
}

export async function compile(paths: readonly string[], options: CompileOptions = {}): Promise<CompileResult> {
  const elaborated = elaborate(paths, options);
  const diagnostics: Diagnostic[] = [...elaborated.diagnostics];
  const passReports: PassReport[] = [];
  const ir: string[] = [];
  const finish = (files: CompiledFile[]): CompileResult => ({
    ir,
    diagnostics,
    program: elaborated.program,
    sources: elaborated.sources,
    ok: !diagnostics.some((d) => d.severity === "error"),
    files,
    passReports,
  });
  if (!elaborated.ok) return finish([]);

  const modules = elaborated.models.flatMap((m) =>
    m.module ? [{ module: m.module, file: m.file, decl: m.decl }] : [],
  );
  const manager = createPassManager();
  for (const { module, decl } of modules) {
    passReports.push(
      manager.run(module, {
        // With one graph chosen the others were never built, so "unused" would be a false alarm.
        ...(options.passes || options.graph !== undefined
          ? { passes: [...(options.passes ?? []), ...(options.graph !== undefined ? ["-unused-values"] : [])] }
          : {}),
        ...(options.printIrAfter !== undefined ? { printIrAfter: options.printIrAfter } : {}),
        ...(options.printIr ? { printIr: options.printIr } : {}),
        verify: options.verifyIr ?? false,
        modelSpan: decl.nameSpan,
        ...(options.target ? { target: options.target } : {}),
        ...(options.quantize ? { quantize: options.quantize } : {}),
        ...(options.precision ? { precision: options.precision } : {}),
        ...(options.int4Block !== undefined ? { int4Block: options.int4Block } : {}),
        accept: (d) => diagnostics.push(d),
      }),
    );
  }
  if (diagnostics.some((d) => d.severity === "error")) return finish([]);
  if (options.emit === "ir") {
    ir.push(...modules.map(({ module }) => printModule(module)));
    return finish([]);
  }
  if (modules.length === 0)
    diagnostics.push(
      diagnostic("VLM2014", `nothing to compile: ${paths.join(", ")} declare${paths.length === 1 ? "s" : ""} no model`),
    );
  const metadata = { "vlmc.source_sha256": sourceHash(elaborated.program) };
  const location = locator(elaborated.program);
  const specs = (typeof options.weights === "string" ? [options.weights] : (options.weights ?? [])).map(
    parseWeightSpec,
  );
  const seed = options.seed ?? 0;
  const runsOn = targetNamed(options.target);
  const opened: LoadedWeights[] = [];
  try {
    const planned: Planned[] = [];
    for (const { module, file } of modules) {
      if (module.graphs.length === 0)
        diagnostics.push(diagnostic("VLM2014", `model ${module.name} has no forward or graph to compile`));
      const weights = loadWeights(module, weightSources(module, file, specs), (d) => diagnostics.push(d));
      if (!weights) continue;
      opened.push(weights);
      const params = parameterBytes(weights, seed);
      for (const graph of module.graphs) {
        const target = outputPath(options.out, modules.length, module.name, module.graphs.length, graph.name);
        if (typeof target !== "string") {
          diagnostics.push(target);
          break;
        }
        try {
          const lowerOptions: LowerOptions = {
            ...params,
            location,
            metadata,
            target: runsOn,
            targetLowerings: targetLowerings(runsOn),
          };
          const onnx = await lowerWithPrecomputed(module, graph, lowerOptions);
          planned.push({ model: module.name, graph: graph.name, path: target, onnx });
        } catch (e) {
          if (!(e instanceof DiagnosticError)) throw e;
          diagnostics.push(e.diagnostic);
        }
      }
    }
    // Nothing is written unless everything lowered: a half-updated output folder helps no one.
    if (diagnostics.some((d) => d.severity === "error")) return finish([]);

    const files: CompiledFile[] = [];
    for (const job of planned) {
      try {
        mkdirSync(path.dirname(job.path), { recursive: true });
        const written = await writeOnnxModel(job.path, job.onnx, {
          externalData: options.externalData ?? "auto",
          onProgress:
            options.onProgress &&
            ((writtenBytes, totalBytes) => options.onProgress!({ path: job.path, writtenBytes, totalBytes })),
        });
        files.push({
          model: job.model,
          graph: job.graph,
          path: job.path,
          dataPath: written.externalPath,
          bytes: written.modelBytes + written.externalBytes,
        });
      } catch (e) {
        diagnostics.push(
          diagnostic("VLM4006", `cannot write ${job.path}: ${e instanceof Error ? e.message : String(e)}`),
        );
        return finish(files);
      }
    }
    return finish(files);
  } finally {
    for (const w of opened) w.close();
  }
}

// The front end's entry points: parse, check, elaborate and format (compile is in compile.ts).

import { DiagnosticBag, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { SourceLookup } from "../diagnostics/render.js";
import { resolveProgram } from "../lang/check/resolve.js";
import { parseText, type ParseResult } from "../lang/parser/parse.js";
import { loadProgram, type LoadOptions, type Program } from "../lang/parser/program.js";
import { Elaborator, type ElaborationResult } from "../lang/elaborate/elaborate.js";
import { diagnostic } from "../diagnostics/diagnostic.js";
import type { ModelDecl } from "../lang/parser/ast.js";
import { CHECK_PIPELINE, createPassManager } from "../passes/index.js";
import { planPackage } from "./package-plan.js";
import { targetNamed } from "../target/target.js";

export { formatText, type FormatResult } from "../lang/format/format.js";

export function parse(text: string, path = "<input>"): ParseResult {
  return parseText(path, text);
}

export interface CheckResult {
  readonly diagnostics: readonly Diagnostic[];
  readonly program: Program;
  readonly sources: SourceLookup;
  readonly ok: boolean;
}

function sortDiagnostics(diags: Diagnostic[]): Diagnostic[] {
  return diags
    .map((d, i) => ({ d, i }))
    .sort(
      (a, b) =>
        (a.d.span?.file ?? "").localeCompare(b.d.span?.file ?? "") ||
        (a.d.span?.start ?? 0) - (b.d.span?.start ?? 0) ||
        a.i - b.i,
    )
    .map((x) => x.d);
}

export interface ElaboratedModel extends ElaborationResult {
  readonly decl: ModelDecl;
  readonly file: string;
}

export interface ElaborateOptions extends LoadOptions {
  /** Only this model (default: every model in the given files). */
  readonly model?: string;
  readonly graph?: string;
}

export interface ElaborateResult extends CheckResult {
  readonly models: readonly ElaboratedModel[];
}

/**
 * Parses, resolves and elaborates the models of the given files (not of the files they import).
 * Elaboration runs only when name resolution is clean, so its errors never repeat earlier ones.
 */
export function elaborate(paths: readonly string[], options: ElaborateOptions = {}): ElaborateResult {
  const program = loadProgram(paths, options);
  const bag = new DiagnosticBag();
  for (const d of program.diagnostics) bag.accept(d);
  const resolved = resolveProgram(program, bag.accept);
  const models: ElaboratedModel[] = [];
  if (!bag.hasErrors) {
    const candidates = program.entries.flatMap((f) =>
      (program.files.get(f)?.ast.decls ?? [])
        .filter((d): d is ModelDecl => d.kind === "model")
        .map((decl) => ({ decl, file: f })),
    );
    const chosen = options.model === undefined ? candidates : candidates.filter((c) => c.decl.name === options.model);
    if (options.model !== undefined && chosen.length === 0) {
      bag.accept(
        diagnostic(
          "VLM2014",
          `no model named "${options.model}" (models: ${candidates.map((c) => c.decl.name).join(", ") || "none"})`,
        ),
      );
    }
    for (const { decl, file } of chosen) {
      const result = new Elaborator(program, resolved, bag.accept).elaborateModel(
        decl,
        file,
        options.graph !== undefined ? { graph: options.graph } : undefined,
      );
      if (options.graph !== undefined && result.module && result.module.graphs.length === 0) {
        bag.accept(diagnostic("VLM2014", `model "${decl.name}" has no graph named "${options.graph}"`, decl.nameSpan));
      }
      models.push({ ...result, decl, file });
    }
  }
  const diagnostics = sortDiagnostics(dedupe(bag.items));
  return {
    diagnostics,
    program,
    sources: (p) => program.files.get(p)?.source,
    ok: !diagnostics.some((d) => d.severity === "error"),
    models,
  };
}

/**
 * Parses, resolves and elaborates the given files, then runs the check passes (unused inputs,
 * parameters and components; outputs that depend on no input): everything short of writing ONNX.
 */
export function check(paths: readonly string[], options: LoadOptions = {}): CheckResult {
  const { diagnostics, program, sources, models } = elaborate(paths, options);
  const all = [...diagnostics];
  const checks = createPassManager(CHECK_PIPELINE);
  // After an elaboration error the graphs are incomplete, and "unused" would be noise.
  if (!diagnostics.some((d) => d.severity === "error")) {
    for (const m of models) {
      if (m.module) checks.run(m.module, { modelSpan: m.decl.nameSpan, accept: (d) => all.push(d) });
      // A package's static facts (image-token slots, context) are proved here too, not only when written.
      const layout = m.module?.package ? planPackage(m.module, targetNamed("portable")) : undefined;
      if (Array.isArray(layout)) all.push(...layout);
    }
  }
  const sorted = sortDiagnostics(dedupe(all));
  return { diagnostics: sorted, program, sources, ok: !sorted.some((d) => d.severity === "error") };
}

function dedupe(diags: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diags.filter((d) => {
    const key = `${d.code}|${d.span?.file}|${d.span?.start}|${d.span?.end}|${d.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

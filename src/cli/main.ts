// The `vlmc` command line, built on the typed API. Exit codes: 0 success, 1 user errors
// (diagnostics printed), 2 usage errors, 3 internal compiler errors.

import { Command, CommanderError, Option } from "commander";
import { check, elaborate } from "../driver/check.js";
import { renderSummary, summarize } from "../driver/summary.js";
import { InternalError, type Diagnostic } from "../diagnostics/diagnostic.js";
import { renderGithub, renderPretty, toJson, type DiagnosticFormat, type SourceLookup } from "../diagnostics/render.js";
import { VERSION } from "../version.js";
import { processIo, useColor, type CliIo } from "./io.js";
import { fmtCommand } from "./fmt.js";
import { compileCommand } from "./compile.js";
import { runCommand } from "./run.js";
import { generateCommand } from "./generate.js";

export const EXIT = { ok: 0, userError: 1, usage: 2, internal: 3 } as const;

export function printDiagnostics(
  io: CliIo,
  diags: readonly Diagnostic[],
  sources: SourceLookup,
  format: DiagnosticFormat,
): void {
  if (format === "json") {
    io.out(JSON.stringify(toJson(diags, sources), null, 2) + "\n");
    return;
  }
  if (diags.length === 0) return;
  if (format === "github") io.out(renderGithub(diags, sources) + "\n");
  else io.err(renderPretty(diags, sources, useColor(io)) + "\n");
}

function summaryLine(diags: readonly Diagnostic[]): string {
  const errors = diags.filter((d) => d.severity === "error").length;
  const warnings = diags.filter((d) => d.severity === "warning").length;
  return `${errors} error${errors === 1 ? "" : "s"}, ${warnings} warning${warnings === 1 ? "" : "s"}`;
}

function buildProgram(io: CliIo, setExit: (code: number) => void): Command {
  const program = new Command("vlmc")
    .description("Compile vision-language model pipelines written in .vlm to ONNX")
    .version(VERSION, "-V, --version")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError("(run vlmc --help for usage)");

  program
    .command("check")
    .description("parse and check .vlm files; exit 0 when clean, 1 on errors")
    .argument("<files...>", ".vlm files to check")
    .addOption(
      new Option("--format <format>", "diagnostic format").choices(["pretty", "json", "github"]).default("pretty"),
    )
    .action((files: string[], opts: { format: DiagnosticFormat }) => {
      const result = check(files);
      printDiagnostics(io, result.diagnostics, result.sources, opts.format);
      if (opts.format === "pretty")
        io.err(
          `${result.ok ? "✓" : "✗"} checked ${files.length} file${files.length === 1 ? "" : "s"}: ${summaryLine(result.diagnostics)}\n`,
        );
      setExit(result.ok ? EXIT.ok : EXIT.userError);
    });

  program
    .command("summary")
    .description(
      "parameters per component, trainable/frozen totals per stage, and each graph's inputs, outputs, tokens and FLOPs",
    )
    .argument("<file>", ".vlm file")
    .option("--model <name>", "the model to summarise (default: every model in the file)")
    .option("--json", "print JSON")
    .action((file: string, opts: { model?: string; json?: boolean }) => {
      const result = elaborate([file], opts.model !== undefined ? { model: opts.model } : {});
      printDiagnostics(io, result.diagnostics, result.sources, "pretty");
      if (!result.ok) {
        setExit(EXIT.userError);
        return;
      }
      const summaries = result.models.flatMap((m) => (m.module ? [summarize(m.module, m.tokens)] : []));
      if (opts.json) io.out(JSON.stringify(summaries.length === 1 ? summaries[0] : summaries, null, 2) + "\n");
      else io.out(summaries.map(renderSummary).join("\n\n") + "\n");
      setExit(EXIT.ok);
    });

  fmtCommand(program, io, setExit);
  compileCommand(program, io, setExit);
  runCommand(program, io, setExit);
  generateCommand(program, io, setExit);
  return program;
}

export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync([...argv], { from: "user" });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help")
        return EXIT.ok;
      return EXIT.usage;
    }
    const message =
      e instanceof InternalError ? e.message : `internal compiler error: ${e instanceof Error ? e.message : String(e)}`;
    io.err(
      `error VLM9001: ${message}\nThis is a bug in vlmc ${VERSION}, not in your input; please report it with the command you ran.\n`,
    );
    if (io.env["VLMC_DEBUG"] && e instanceof Error && e.stack) io.err(e.stack + "\n");
    return EXIT.internal;
  }
}

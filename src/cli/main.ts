// The `vlmc` command line, built on the typed API: wires the commands (exit codes and what the
// command files share are in common.ts).

import { Command, CommanderError, Option } from "commander";
import { check, elaborate } from "../driver/check.js";
import { renderSummary, summarize } from "../driver/summary.js";
import { InternalError, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { DiagnosticFormat } from "../diagnostics/render.js";
import { VERSION } from "../version.js";
import { EXIT, printDiagnostics, processIo, type CliIo } from "./common.js";
import { fmtCommand } from "./fmt.js";
import { compileCommand } from "./compile.js";
import { runCommand } from "./run.js";
import { graphCommand } from "./graph.js";
import { lspCommand } from "./lsp.js";
import { writeOutput } from "./output.js";
import { renderSummaryPage } from "../driver/graph.js";
import { generateCommand } from "./generate.js";

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
    .option("--html", "an HTML page of charts: parameters per stage, parameter and FLOP shares per component")
    .option("-o, --output <file>", "write to this file instead of standard output")
    .action((file: string, opts: { model?: string; json?: boolean; html?: boolean; output?: string }) => {
      const result = elaborate([file], opts.model !== undefined ? { model: opts.model } : {});
      printDiagnostics(io, result.diagnostics, result.sources, "pretty");
      if (!result.ok) {
        setExit(EXIT.userError);
        return;
      }
      const summaries = result.models.flatMap((m) => (m.module ? [summarize(m.module, m.tokens)] : []));
      const text = opts.html
        ? renderSummaryPage(summaries)
        : opts.json
          ? JSON.stringify(summaries.length === 1 ? summaries[0] : summaries, null, 2) + "\n"
          : summaries.map(renderSummary).join("\n\n") + "\n";
      setExit(writeOutput(io, text, opts.output) ? EXIT.ok : EXIT.userError);
    });

  fmtCommand(program, io, setExit);
  compileCommand(program, io, setExit);
  runCommand(program, io, setExit);
  graphCommand(program, io, setExit);
  lspCommand(program);
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

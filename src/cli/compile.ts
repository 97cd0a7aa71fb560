// `vlmc compile`: .vlm → ONNX, one file per graph, with a progress bar on a terminal (the flags
// and the call it shares with `vlmc run` are in common.ts).

import { InvalidArgumentError, Option, type Command } from "commander";
import { renderReport } from "../driver/compile.js";
import { renderVerifyReport, verifyCompiled } from "../driver/verify.js";
import { compilePackage } from "../driver/package.js";
import {
  compileFlags,
  compileWithFlags,
  EXIT,
  parseTolerance,
  passOptions,
  printDiagnostics,
  progressBar,
  type CliIo,
  type CompileFlags,
} from "./common.js";

export function compileCommand(program: Command, io: CliIo, setExit: (code: number) => void): void {
  compileFlags(
    program
      .command("compile")
      .description(
        "compile a .vlm model to ONNX: one file per graph, parameters from checkpoints or seeded random initialisation",
      )
      .argument("<file>", ".vlm file")
      .option("-o, --out <path>", "output .onnx file (one graph) or folder (default: out/<model>/)"),
    "seed of the random initialisation of parameters no checkpoint provides",
  )
    .addOption(
      new Option(
        "--external-data <mode>",
        "store initializers in <file>.onnx.data beside the model: always, never, or auto (when over 1 GiB)",
      )
        .choices(["auto", "always", "never"])
        .default("auto"),
    )
    .option(
      "--package <dir>",
      "write the model's generation package (vision, embedding and decoder with a key/value cache, genai_config.json, tokenizer files) into this new folder",
    )
    .option(
      "--checkpoint <dir>",
      "with --package: the checkpoint folder whose tokenizer and config files the package carries",
    )
    .option("--replace", "with --package: replace an existing package folder (atomically)")
    .option("--print-ir-after <pass>", "print the IR after this pass (or all) to stderr")
    .option("--emit <what>", "ir: print the optimized IR to stdout instead of writing ONNX")
    .option("--report", "print what each pass changed, rule fires and near misses")
    .option(
      "--verify",
      "run the compiled graphs and the unoptimized fp32 ones (no passes, portable) in onnxruntime on the same random inputs and compare; exit 1 when an output is off",
    )
    .option(
      "--verify-tolerance <t>",
      "threshold of --verify (implies it): max abs error relative to the output's scale for fp32 (default 1e-4), least cosine similarity when quantized or fp16/bf16 (default 0.99; with it the norm error √(2(1 − t)))",
      parseTolerance,
    )
    .action(
      async (
        file: string,
        opts: CompileFlags & {
          out?: string;
          externalData: "auto" | "always" | "never";
          printIrAfter?: string;
          emit?: string;
          report?: boolean;
          verify?: boolean;
          verifyTolerance?: number;
          package?: string;
          checkpoint?: string;
          replace?: boolean;
        },
      ) => {
        const packageOnly = [opts.checkpoint !== undefined && "--checkpoint", opts.replace && "--replace"].filter(
          Boolean,
        );
        const usage = (message: string) => {
          io.err(`error: ${message}\n`);
          setExit(EXIT.usage);
        };
        if (opts.package === undefined && packageOnly.length > 0)
          return usage(`${packageOnly.join(" and ")} ${packageOnly.length === 1 ? "needs" : "need"} --package DIR`);
        if (opts.package !== undefined) {
          const clash = [
            opts.out !== undefined && "-o",
            opts.graph !== undefined && "--graph",
            opts.emit !== undefined && "--emit",
            (opts.verify || opts.verifyTolerance !== undefined) && "--verify",
          ].filter(Boolean);
          if (clash.length > 0)
            return usage(
              `--package writes a folder of its own; ${clash.join(", ")} ${clash.length === 1 ? "does" : "do"} not apply`,
            );
          const bar = io.isTty ? progressBar(io) : undefined;
          const result = await compilePackage([file], {
            ...passOptions(opts),
            out: opts.package,
            ...(opts.model !== undefined ? { model: opts.model } : {}),
            ...(opts.checkpoint !== undefined ? { checkpoint: opts.checkpoint } : {}),
            ...(opts.replace ? { replace: true } : {}),
            weights: opts.weights,
            seed: opts.seed,
            externalData: opts.externalData,
            ...(bar ? { onProgress: bar.onProgress } : {}),
          });
          bar?.done();
          printDiagnostics(io, result.diagnostics, result.sources, "pretty");
          if (result.dir !== undefined) io.out(`${result.dir}\n`);
          setExit(result.ok ? EXIT.ok : EXIT.userError);
          return;
        }
        if (opts.emit !== undefined && opts.emit !== "ir")
          throw new InvalidArgumentError(`--emit takes "ir", not "${opts.emit}"`);
        const result = await compileWithFlags(io, file, opts, {
          ...(opts.out !== undefined ? { out: opts.out } : {}),
          externalData: opts.externalData,
          ...(opts.emit === "ir" ? { emit: "ir" as const } : {}),
          ...(opts.printIrAfter !== undefined
            ? { printIrAfter: opts.printIrAfter, printIr: (text: string) => io.err(text + "\n") }
            : {}),
        });
        if (opts.emit === "ir") io.out(result.ir.join("\n\n") + "\n");
        if (opts.report) io.out(result.passReports.map((r) => renderReport(r, result.sources)).join("\n\n") + "\n");
        for (const f of result.files) io.out(`${f.path}\n`);
        if ((opts.verify || opts.verifyTolerance !== undefined) && result.ok && opts.emit !== "ir") {
          const same = {
            ...passOptions(opts),
            ...(opts.model !== undefined ? { model: opts.model } : {}),
            ...(opts.graph !== undefined ? { graph: opts.graph } : {}),
            weights: opts.weights,
            seed: opts.seed,
          };
          const verified = await verifyCompiled(
            [file],
            same,
            result,
            opts.verifyTolerance !== undefined ? { tolerance: opts.verifyTolerance } : {},
          );
          printDiagnostics(io, verified.diagnostics, result.sources, "pretty");
          io.out(renderVerifyReport(verified) + "\n");
          setExit(verified.ok ? EXIT.ok : EXIT.userError);
          return;
        }
        setExit(result.ok ? EXIT.ok : EXIT.userError);
      },
    );
}

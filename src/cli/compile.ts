// `vlmc compile`: .vlm → ONNX, one file per graph, with a progress bar on a terminal; also the
// option parsing and progress display that `vlmc run` shares when it compiles a .vlm first.

import { InvalidArgumentError, Option, type Command } from "commander";
import { compile, type CompileOptions, type CompileProgress, type CompileResult } from "../driver/compile.js";
import { renderReport, TARGETS, type Precision, type QuantizeMode, type Target } from "../passes/index.js";
import { renderVerifyReport, verifyCompiled } from "../driver/verify.js";
import { compilePackage } from "../driver/package.js";
import type { CliIo } from "./io.js";
import { EXIT, printDiagnostics } from "./main.js";

/** Options that compile a .vlm, common to `compile` and `run`. */
export interface CompileFlags {
  model?: string;
  graph?: string;
  weights: string[];
  seed: number;
  target: Target;
  passes?: string;
  quantize?: QuantizeMode;
  precision?: Precision;
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** A finite non-negative number (--verify-tolerance). */
export function parseTolerance(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError("expected a non-negative number");
  return n;
}

export function parseInteger(value: string): number {
  if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError("expected an integer");
  return Number(value);
}

/** Adds --model, --graph, --weights, --seed and the pass options (target, passes, quantization). */
export function compileFlags(command: Command, seedHelp: string): Command {
  return command
    .option("--model <name>", "the model to compile (default: every model in the file)")
    .option("--graph <name>", "only this graph (forward or a graph name)")
    .option(
      "--weights <spec>",
      "safetensors checkpoint: PATH for the whole model or COMPONENT=PATH (repeatable)",
      collect,
      [],
    )
    .option("--seed <n>", seedHelp, parseInteger, 0)
    .addOption(
      new Option(
        "--target <target>",
        "what the ONNX runs on: portable (standard ONNX), ort-cpu or ort-cuda (ONNX Runtime's fused ops)",
      )
        .choices([...TARGETS])
        .default("portable"),
    )
    .option(
      "--passes <list>",
      "comma-separated pass selection: names replace the pipeline, -name skips one (e.g. -cse)",
    )
    .addOption(
      new Option("--quantize <mode>", "weight quantization, overriding the model's policy").choices([
        "none",
        "int8",
        "int4",
      ]),
    )
    .addOption(
      new Option("--precision <p>", "floating-point precision for GPU targets, overriding the model's policy").choices([
        "fp32",
        "fp16",
        "bf16",
      ]),
    );
}

/** The pass-related compile options from the CLI flags. */
export function passOptions(flags: CompileFlags): Pick<CompileOptions, "target" | "passes" | "quantize" | "precision"> {
  return {
    target: flags.target,
    ...(flags.passes !== undefined
      ? {
          passes: flags.passes
            .split(",")
            .map((p) => p.trim())
            .filter((p) => p !== ""),
        }
      : {}),
    ...(flags.quantize !== undefined ? { quantize: flags.quantize } : {}),
    ...(flags.precision !== undefined ? { precision: flags.precision } : {}),
  };
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** A one-line bar on stderr, redrawn at most every 100 ms; `onProgress` for compile(). */
function progressBar(io: CliIo): { onProgress: (p: CompileProgress) => void; done: () => void } {
  let started = { path: "", at: 0 };
  let drawnAt = 0;
  let drawn = false;
  return {
    onProgress: (p) => {
      const now = Date.now();
      if (p.path !== started.path) started = { path: p.path, at: now };
      if (now - drawnAt < 100 && p.writtenBytes < p.totalBytes) return;
      drawnAt = now;
      drawn = true;
      const width = 24;
      const filled = p.totalBytes === 0 ? width : Math.round((p.writtenBytes / p.totalBytes) * width);
      const seconds = Math.max((now - started.at) / 1000, 1e-3);
      io.err(
        `\r\x1b[K${p.path} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${megabytes(p.writtenBytes)} / ${megabytes(p.totalBytes)} ${megabytes(p.writtenBytes / seconds)}/s`,
      );
    },
    done: () => {
      if (drawn) io.err("\r\x1b[K");
    },
  };
}

/** compile() with the CLI's flags, a progress bar on a terminal, and diagnostics printed. */
export async function compileWithFlags(
  io: CliIo,
  file: string,
  flags: CompileFlags,
  extra: Pick<CompileOptions, "out" | "externalData" | "printIrAfter" | "printIr" | "emit">,
): Promise<CompileResult> {
  const bar = io.isTty ? progressBar(io) : undefined;
  const result = await compile([file], {
    ...extra,
    ...passOptions(flags),
    ...(flags.model !== undefined ? { model: flags.model } : {}),
    ...(flags.graph !== undefined ? { graph: flags.graph } : {}),
    weights: flags.weights,
    seed: flags.seed,
    ...(bar ? { onProgress: bar.onProgress } : {}),
  });
  bar?.done();
  printDiagnostics(io, result.diagnostics, result.sources, "pretty");
  return result;
}

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
      "threshold of --verify (implies it): max abs error relative to the output's scale for fp32 (default 1e-4), least cosine similarity when quantized or fp16/bf16 (default 0.99)",
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

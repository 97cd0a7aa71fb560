// What the command files share, so that main.ts only wires commands and no command imports
// another: exit codes, the injectable view of the outside world (tests run commands in-process),
// printing diagnostics, and the options, progress bar and call that compile a .vlm (`compile`, `run`).

import { InvalidArgumentError, Option, type Command } from "commander";
import type { Diagnostic } from "../diagnostics/diagnostic.js";
import { renderGithub, renderPretty, toJson, type DiagnosticFormat, type SourceLookup } from "../diagnostics/render.js";
import {
  compile,
  INT4_BLOCK_SIZES,
  TARGET_NAMES,
  type CompileOptions,
  type CompileProgress,
  type CompileResult,
  type Precision,
  type QuantizeMode,
  type TargetName,
} from "../driver/compile.js";

/** Exit codes: 0 success, 1 user errors (diagnostics printed), 2 usage errors, 3 internal compiler errors. */
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

/** The CLI's view of the outside world, injectable so tests run commands in-process. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Whether stderr is a terminal: colour and progress bars only then. */
  readonly isTty: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export const processIo: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  isTty: process.stderr.isTTY === true,
  env: process.env,
};

export function useColor(io: CliIo): boolean {
  return io.isTty && io.env["NO_COLOR"] === undefined && io.env["TERM"] !== "dumb";
}

/** Options that compile a .vlm, common to `compile` and `run`. */
export interface CompileFlags {
  model?: string;
  graph?: string;
  weights: string[];
  seed: number;
  target: TargetName;
  passes?: string;
  quantize?: QuantizeMode;
  int4Block?: number;
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

/** One of INT4_BLOCK_SIZES (--int4-block). */
export function parseInt4Block(value: string): number {
  const n = Number(value);
  if (!INT4_BLOCK_SIZES.includes(n)) throw new InvalidArgumentError(`expected one of ${INT4_BLOCK_SIZES.join(", ")}`);
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
        .choices([...TARGET_NAMES])
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
      new Option(
        "--int4-block <n>",
        "block of int4 weights along the input axis (default 32; larger decodes faster on CPU, less exactly)",
      ).argParser(parseInt4Block),
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
export function passOptions(
  flags: CompileFlags,
): Pick<CompileOptions, "target" | "passes" | "quantize" | "int4Block" | "precision"> {
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
    ...(flags.int4Block !== undefined ? { int4Block: flags.int4Block } : {}),
    ...(flags.precision !== undefined ? { precision: flags.precision } : {}),
  };
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** A one-line bar on stderr, redrawn at most every 100 ms; `onProgress` for compile(). */
export function progressBar(io: CliIo): { onProgress: (p: CompileProgress) => void; done: () => void } {
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

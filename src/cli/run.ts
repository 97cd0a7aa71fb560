// `vlmc run`: runs an ONNX model (or a .vlm, compiled to a temporary folder first) in
// onnxruntime on given .npy inputs or seeded random ones, and prints each output's shape and
// statistics; --save-outputs keeps the outputs as .npy files for comparison with other runtimes.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Command } from "commander";
import type { InferenceSession } from "onnxruntime-node";
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import { NpyError, readNpy, writeNpy, type NpyArray } from "../runtime/npy.js";
import { FeedError, planFeeds, type PlannedFeeds } from "../runtime/feeds.js";
import {
  numbers,
  onnxruntime,
  RandomInputError,
  withSession,
  type Onnxruntime,
  type Tensor,
  type TensorType,
} from "../runtime/onnxruntime.js";
import {
  collect,
  compileFlags,
  compileWithFlags,
  EXIT,
  printDiagnostics,
  type CliIo,
  type CompileFlags,
} from "./common.js";

interface OutputStats {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly mean: number | null;
  readonly std: number | null;
  readonly min: number | null;
  readonly max: number | null;
}

const NPY_TYPES: Record<NpyArray["dtype"], TensorType> = {
  "<f4": "float32",
  "<f2": "float16",
  "<f8": "float64",
  "<i8": "int64",
  "<i4": "int32",
  "|i1": "int8",
  "|u1": "uint8",
  "|b1": "bool",
};

function npyTensor(ort: Onnxruntime, file: string): Tensor {
  const array = readNpy(file);
  return new ort.Tensor(NPY_TYPES[array.dtype], array.data, array.shape);
}

function stats(name: string, t: Tensor): OutputStats {
  const values = numbers(t);
  const n = values.length;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sum / n;
  let squares = 0;
  for (let i = 0; i < n; i++) squares += (values[i]! - mean) ** 2;
  return n === 0
    ? { name, dtype: t.type, shape: [...t.dims], mean: null, std: null, min: null, max: null }
    : { name, dtype: t.type, shape: [...t.dims], mean, std: Math.sqrt(squares / n), min, max };
}

const TO_NPY: Partial<Record<TensorType, NpyArray["dtype"]>> = Object.fromEntries(
  Object.entries(NPY_TYPES).map(([k, v]) => [v, k]),
);

function saveNpy(dir: string, name: string, t: Tensor): void {
  const dtype = TO_NPY[t.type];
  if (!dtype) throw new RunError(diagnostic("VLM4006", `cannot save output "${name}" of type ${t.type} as .npy`));
  writeNpy(path.join(dir, `${name}.npy`), { dtype, shape: [...t.dims], data: t.data } as NpyArray);
}

class RunError extends Error {
  constructor(readonly diagnostic: Diagnostic) {
    super(diagnostic.message);
  }
}

interface RunOptions {
  /** name → .npy path, or "random". */
  readonly inputs: ReadonlyMap<string, string>;
  readonly seed: number;
  readonly saveOutputs?: string;
}

/** Runs one ONNX file; input and runtime problems are thrown as RunError. */
async function runModel(
  modelPath: string,
  options: RunOptions,
): Promise<{ sizes: Record<string, number>; outputs: OutputStats[] }> {
  const ort = await onnxruntime();
  const loadError = (e: unknown) =>
    new RunError(
      diagnostic("VLM4007", `onnxruntime cannot load ${modelPath}: ${e instanceof Error ? e.message : String(e)}`),
    );
  return withSession(modelPath, { loadError }, async (session) => {
    for (const name of options.inputs.keys()) {
      if (!session.inputNames.includes(name))
        throw new RunError(
          diagnostic(
            "VLM4008",
            `--input ${name}: the model has no input named "${name}" (inputs: ${session.inputNames.join(", ")})`,
          ),
        );
    }
    const given: Record<string, Tensor> = {};
    for (const [name, file] of options.inputs) {
      if (file === "random") continue;
      try {
        given[name] = npyTensor(ort, file);
      } catch (e) {
        if (e instanceof NpyError) throw new RunError(diagnostic("VLM4008", `--input ${name}: ${e.message}`));
        if (e instanceof Error && "code" in e)
          throw new RunError(diagnostic("VLM4008", `--input ${name}: cannot read ${file}: ${e.message}`));
        throw e;
      }
    }
    let planned: PlannedFeeds;
    try {
      planned = await planFeeds(modelPath, given, { seed: options.seed });
    } catch (e) {
      if (e instanceof FeedError) throw new RunError(diagnostic("VLM4008", e.message));
      if (e instanceof RandomInputError)
        throw new RunError(
          diagnostic(
            "VLM4008",
            `cannot make a random value for input "${e.input}" of this element type; pass --input ${e.input}=FILE.npy`,
          ),
        );
      throw e;
    }
    let results: InferenceSession.ReturnType;
    try {
      results = await session.run(planned.feeds);
    } catch (e) {
      throw new RunError(
        diagnostic("VLM4007", `onnxruntime failed running ${modelPath}: ${e instanceof Error ? e.message : String(e)}`),
      );
    }
    if (options.saveOutputs !== undefined) fs.mkdirSync(options.saveOutputs, { recursive: true });
    const outputs = session.outputNames.map((name) => {
      const t = results[name] as Tensor;
      if (options.saveOutputs !== undefined) saveNpy(options.saveOutputs, name, t);
      return stats(name, t);
    });
    return { sizes: planned.sizes, outputs };
  });
}

function fmt(v: number | null): string {
  return v === null ? "-" : String(Number(v.toPrecision(6)));
}

function render(s: OutputStats): string {
  return `${s.name}  ${s.dtype}[${s.shape.join(", ")}]  mean ${fmt(s.mean)}  std ${fmt(s.std)}  min ${fmt(s.min)}  max ${fmt(s.max)}`;
}

/** The symbol sizes a run used (`sizes  B = 1, T = 8`); empty for a model without symbols. */
function renderSizes(sizes: Record<string, number>): string {
  const entries = Object.entries(sizes);
  return entries.length === 0 ? "" : `sizes  ${entries.map(([s, n]) => `${s} = ${n}`).join(", ")}`;
}

function parseInputs(specs: readonly string[]): Map<string, string> | Diagnostic {
  const inputs = new Map<string, string>();
  for (const spec of specs) {
    const at = spec.indexOf("=");
    if (at <= 0) return diagnostic("VLM4008", `--input ${spec}: expected NAME=FILE.npy or NAME=random`);
    inputs.set(spec.slice(0, at), spec.slice(at + 1));
  }
  return inputs;
}

export function runCommand(program: Command, io: CliIo, setExit: (code: number) => void): void {
  compileFlags(
    program
      .command("run")
      .description(
        "run an ONNX model (or a .vlm, compiled first) in onnxruntime and print each output's shape and statistics",
      )
      .argument("<model>", ".onnx file, or .vlm file to compile and run")
      .option(
        "--input <name=file>",
        "an input from a .npy file, or NAME=random (repeatable; other inputs are random)",
        collect,
        [],
      )
      .option("--json", "print JSON")
      .option("--save-outputs <dir>", "write each output to DIR/<name>.npy"),
    "seed of random inputs (and, for a .vlm, of parameter initialisation)",
  ).action(async (file: string, opts: CompileFlags & { input: string[]; json?: boolean; saveOutputs?: string }) => {
    const fail = (diags: Diagnostic[]) => {
      printDiagnostics(io, diags, () => undefined, "pretty");
      setExit(EXIT.userError);
    };
    const inputs = parseInputs(opts.input);
    if (!(inputs instanceof Map)) return fail([inputs]);

    let models: { graph: string; path: string }[] = [{ graph: path.basename(file, ".onnx"), path: file }];
    let temp: string | undefined;
    try {
      if (file.endsWith(".vlm")) {
        temp = fs.mkdtempSync(path.join(os.tmpdir(), "vlmc-run-"));
        const compiled = await compileWithFlags(io, file, opts, { out: temp });
        if (!compiled.ok) {
          setExit(EXIT.userError);
          return;
        }
        models = compiled.files.map((f) => ({ graph: f.graph, path: f.path }));
      }
      const runs: { graph: string; sizes: Record<string, number>; outputs: OutputStats[] }[] = [];
      for (const m of models) {
        // Each graph's outputs go to their own folder when a .vlm has several graphs.
        const saveOutputs =
          opts.saveOutputs !== undefined && models.length > 1 ? path.join(opts.saveOutputs, m.graph) : opts.saveOutputs;
        runs.push({
          graph: m.graph,
          ...(await runModel(m.path, {
            inputs,
            seed: opts.seed,
            ...(saveOutputs !== undefined ? { saveOutputs } : {}),
          })),
        });
      }
      if (opts.json) io.out(JSON.stringify(runs.length === 1 ? runs[0] : runs, null, 2) + "\n");
      else
        io.out(
          runs
            .map(
              (r) =>
                (runs.length > 1 ? `${r.graph}:\n` : "") +
                [renderSizes(r.sizes), ...r.outputs.map(render)]
                  .filter((line) => line !== "")
                  .map((line) => (runs.length > 1 ? "  " : "") + line)
                  .join("\n"),
            )
            .join("\n") + "\n",
        );
      setExit(EXIT.ok);
    } catch (e) {
      if (e instanceof RunError) return fail([e.diagnostic]);
      throw e;
    } finally {
      if (temp !== undefined) fs.rmSync(temp, { recursive: true, force: true });
    }
  });
}

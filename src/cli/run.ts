// `vlmc run`: runs an ONNX model (or a .vlm, compiled to a temporary folder first) in
// onnxruntime on given .npy inputs or seeded random ones, and prints each output's shape and
// statistics; --save-outputs keeps the outputs as .npy files for comparison with other runtimes.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Command } from "commander";
import * as ort from "onnxruntime-node";
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import { float16ToFloat32, float32ToFloat16 } from "../codegen/float-convert.js";
import { namedRng } from "../codegen/init.js";
import { NpyError, readNpy, writeNpy, type NpyArray } from "../codegen/npy.js";
import { decodeOnnxModel } from "../codegen/onnx-writer.js";
import { collect, compileFlags, compileWithFlags, type CompileFlags } from "./compile.js";
import type { CliIo } from "./io.js";
import { EXIT, printDiagnostics } from "./main.js";

interface OutputStats {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly mean: number | null;
  readonly std: number | null;
  readonly min: number | null;
  readonly max: number | null;
}

/** Symbolic sizes of random inputs: token counts (T, Tq, T_text…) get a few tokens, all else 1. */
const TOKEN_SIZE = 8;

function symbolSize(symbol: string): number {
  return /^T/.test(symbol) ? TOKEN_SIZE : 1;
}

/** Evaluates a dim_param written by the compiler (`B*N`, `2*T + 1`, `T - 1`). */
function evalDimParam(text: string): number {
  let total = 0;
  for (const [, sign, term] of text.replace(/\s+/g, "").matchAll(/([+-]?)([^+-]+)/g)) {
    const value = term!.split("*").reduce((p, f) => p * (/^\d+$/.test(f) ? Number(f) : symbolSize(f)), 1);
    total += sign === "-" ? -value : value;
  }
  return Math.max(total, 1);
}

/** TensorProto element types this command feeds and reads. */
const ELEM_TYPES: Record<number, ort.Tensor.Type> = { 1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 9: "bool", 10: "float16", 11: "float64" };

const NPY_TYPES: Record<NpyArray["dtype"], ort.Tensor.Type> = { "<f4": "float32", "<f2": "float16", "<f8": "float64", "<i8": "int64", "<i4": "int32", "|i1": "int8", "|u1": "uint8", "|b1": "bool" };

interface InputInfo {
  readonly name: string;
  readonly type: ort.Tensor.Type | undefined;
  readonly dims: number[];
  /** Integer inputs used as Gather indices into an initializer stay below its first dim. */
  readonly bound: number;
}

function inputInfos(modelPath: string): InputInfo[] {
  const graph = decodeOnnxModel(fs.readFileSync(modelPath)).graph!;
  const tables = new Map((graph.initializer ?? []).map((t) => [t.name!, Number(t.dims?.[0] ?? 0)]));
  return (graph.input ?? []).map((input) => {
    const tensor = input.type?.tensorType;
    const bounds = (graph.node ?? []).flatMap((n) => {
      const [table, ids] = n.input ?? [];
      const rows = n.opType === "Gather" && ids === input.name ? tables.get(table ?? "") : undefined;
      return rows === undefined ? [] : [rows];
    });
    return {
      name: input.name!,
      type: ELEM_TYPES[tensor?.elemType ?? 0],
      dims: (tensor?.shape?.dim ?? []).map((d) => (d.dimParam ? evalDimParam(d.dimParam) : Number(d.dimValue ?? 1))),
      // Ids of unknown range (masks, positions) are drawn from {0, 1}.
      bound: bounds.length > 0 ? Math.min(...bounds) : 2,
    };
  });
}

function randomTensor(info: InputInfo, seed: number): ort.Tensor {
  const rng = namedRng(`input:${info.name}`, seed);
  const n = info.dims.reduce((p, d) => p * d, 1);
  switch (info.type) {
    case "float32":
    case "float64":
    case "float16": {
      const values = Float32Array.from({ length: n }, () => rng.normal());
      const data = info.type === "float32" ? values : info.type === "float64" ? Float64Array.from(values) : float32ToFloat16(values);
      return new ort.Tensor(info.type, data, info.dims);
    }
    case "int64":
      return new ort.Tensor("int64", BigInt64Array.from({ length: n }, () => BigInt(rng.below(info.bound))), info.dims);
    case "int32":
    case "int8":
    case "uint8":
    case "bool": {
      const Typed = info.type === "int32" ? Int32Array : info.type === "int8" ? Int8Array : Uint8Array;
      const bound = info.type === "bool" ? 2 : Math.min(info.bound, 128);
      return new ort.Tensor(info.type, Typed.from(Array.from({ length: n }, () => rng.below(bound))), info.dims);
    }
    default:
      throw new RunError(diagnostic("VLM4008", `cannot make a random value for input "${info.name}" of this element type; pass --input ${info.name}=FILE.npy`));
  }
}

function npyTensor(file: string): ort.Tensor {
  const array = readNpy(file);
  return new ort.Tensor(NPY_TYPES[array.dtype], array.data, array.shape);
}

function numbers(t: ort.Tensor): ArrayLike<number> {
  if (t.type === "int64" || t.type === "uint64") return Array.from(t.data as BigInt64Array, Number);
  if (t.type === "float16") return float16ToFloat32(t.data as Uint16Array);
  return t.data as ArrayLike<number>;
}

function stats(name: string, t: ort.Tensor): OutputStats {
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
  return n === 0 ? { name, dtype: t.type, shape: [...t.dims], mean: null, std: null, min: null, max: null } : { name, dtype: t.type, shape: [...t.dims], mean, std: Math.sqrt(squares / n), min, max };
}

const TO_NPY: Partial<Record<ort.Tensor.Type, NpyArray["dtype"]>> = Object.fromEntries(Object.entries(NPY_TYPES).map(([k, v]) => [v, k]));

function saveNpy(dir: string, name: string, t: ort.Tensor): void {
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
async function runModel(modelPath: string, options: RunOptions): Promise<OutputStats[]> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelPath);
  } catch (e) {
    throw new RunError(diagnostic("VLM4007", `onnxruntime cannot load ${modelPath}: ${e instanceof Error ? e.message : String(e)}`));
  }
  try {
    const infos = inputInfos(modelPath);
    for (const name of options.inputs.keys()) {
      if (!infos.some((i) => i.name === name)) throw new RunError(diagnostic("VLM4008", `--input ${name}: the model has no input named "${name}" (inputs: ${infos.map((i) => i.name).join(", ")})`));
    }
    const feeds: Record<string, ort.Tensor> = {};
    for (const info of infos) {
      const given = options.inputs.get(info.name);
      try {
        feeds[info.name] = given === undefined || given === "random" ? randomTensor(info, options.seed) : npyTensor(given);
      } catch (e) {
        if (e instanceof NpyError) throw new RunError(diagnostic("VLM4008", `--input ${info.name}: ${e.message}`));
        if (e instanceof Error && "code" in e) throw new RunError(diagnostic("VLM4008", `--input ${info.name}: cannot read ${given}: ${e.message}`));
        throw e;
      }
    }
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await session.run(feeds);
    } catch (e) {
      throw new RunError(diagnostic("VLM4007", `onnxruntime failed running ${modelPath}: ${e instanceof Error ? e.message : String(e)}`));
    }
    if (options.saveOutputs !== undefined) fs.mkdirSync(options.saveOutputs, { recursive: true });
    return session.outputNames.map((name) => {
      const t = results[name] as ort.Tensor;
      if (options.saveOutputs !== undefined) saveNpy(options.saveOutputs, name, t);
      return stats(name, t);
    });
  } finally {
    await session.release();
  }
}

function fmt(v: number | null): string {
  return v === null ? "-" : String(Number(v.toPrecision(6)));
}

function render(s: OutputStats): string {
  return `${s.name}  ${s.dtype}[${s.shape.join(", ")}]  mean ${fmt(s.mean)}  std ${fmt(s.std)}  min ${fmt(s.min)}  max ${fmt(s.max)}`;
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
      .description("run an ONNX model (or a .vlm, compiled first) in onnxruntime and print each output's shape and statistics")
      .argument("<model>", ".onnx file, or .vlm file to compile and run")
      .option("--input <name=file>", "an input from a .npy file, or NAME=random (repeatable; other inputs are random)", collect, [])
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
      const runs: { graph: string; outputs: OutputStats[] }[] = [];
      for (const m of models) {
        // Each graph's outputs go to their own folder when a .vlm has several graphs.
        const saveOutputs = opts.saveOutputs !== undefined && models.length > 1 ? path.join(opts.saveOutputs, m.graph) : opts.saveOutputs;
        runs.push({ graph: m.graph, outputs: await runModel(m.path, { inputs, seed: opts.seed, ...(saveOutputs !== undefined ? { saveOutputs } : {}) }) });
      }
      if (opts.json) io.out(JSON.stringify(runs.length === 1 ? runs[0] : runs, null, 2) + "\n");
      else io.out(runs.map((r) => (runs.length > 1 ? `${r.graph}:\n` : "") + r.outputs.map((s) => (runs.length > 1 ? "  " : "") + render(s)).join("\n")).join("\n") + "\n");
      setExit(EXIT.ok);
    } catch (e) {
      if (e instanceof RunError) return fail([e.diagnostic]);
      throw e;
    } finally {
      if (temp !== undefined) fs.rmSync(temp, { recursive: true, force: true });
    }
  });
}

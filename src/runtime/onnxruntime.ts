// onnxruntime-node, loaded on first use, and what its callers share: `vlmc run`, `vlmc compile
// --verify` and the evaluation of precomputed values. Loading its native binding takes about a
// quarter of a second, so nothing else in src/ imports it as a value: `vlmc check` and
// `vlmc --version` never load it.

import * as fs from "node:fs";
import type * as Ort from "onnxruntime-node";
import { float16ToFloat32, float32ToFloat16 } from "../numerics/float-convert.js";
import { namedRng } from "../numerics/rng.js";
import { decodeOnnxModel } from "../onnx/onnx-writer.js";
import { GUARD_SCOPE } from "../onnx/manifest.js";

export type Onnxruntime = typeof Ort;
export type Tensor = Ort.Tensor;
export type TensorType = Ort.Tensor.Type;

let loading: Promise<Onnxruntime> | undefined;

/** onnxruntime-node, imported by the first call; every later call gets the same module. */
export function onnxruntime(): Promise<Onnxruntime> {
  return (loading ??= import("onnxruntime-node"));
}

/** TensorProto element types that can be fed to and read from a session. */
export const ELEM_TYPES: Readonly<Record<number, TensorType>> = {
  1: "float32",
  2: "uint8",
  3: "int8",
  6: "int32",
  7: "int64",
  9: "bool",
  10: "float16",
  11: "float64",
};

/** A tensor's values as numbers: int64 converted, float16 widened, bool as 0/1. */
export function numbers(t: Tensor): ArrayLike<number> {
  if (t.type === "int64" || t.type === "uint64") return Array.from(t.data as BigInt64Array, Number);
  if (t.type === "float16") return float16ToFloat32(t.data as Uint16Array);
  if (t.type === "bool") return Array.from(t.data as Uint8Array);
  return t.data as ArrayLike<number>;
}

/** A float tensor's values as float32: float16 ones (a reduced-precision graph's outputs) widened, float32 ones as they are. */
export function float32s(t: Tensor): Float32Array {
  if (t.type === "float16") return float16ToFloat32(t.data as Uint16Array);
  if (t.type !== "float32") throw new Error(`expected a float tensor, got ${t.type}`);
  return t.data as Float32Array;
}

/** Size of token-count symbols (T, Tq, T_text…) in random inputs. */
export const TOKEN_SIZE = 8;

/**
 * The one rule for sizing the symbolic dims of random inputs (`vlmc run`, `--verify`): token counts
 * (T, Tq, T_text…) are TOKEN_SIZE, every other symbol (batch, images…) is `batch`.
 */
export function symbolSizes(batch = 1): (symbol: string) => number {
  return (symbol) => (/^T/.test(symbol) ? TOKEN_SIZE : batch);
}

/** Evaluates a dim_param the compiler wrote (`B`, `B*N`, `2*T + 1`, `T - 1`) with each symbol of size `symbolSize(symbol)`; at least 1. */
export function evalDimParam(text: string, symbolSize: (symbol: string) => number): number {
  let total = 0;
  for (const [, sign, term] of text.replace(/\s+/g, "").matchAll(/([+-]?)([^+-]+)/g)) {
    const value = term!.split("*").reduce((p, f) => p * (/^\d+$/.test(f) ? Number(f) : symbolSize(f)), 1);
    total += sign === "-" ? -value : value;
  }
  return Math.max(total, 1);
}

/** A model to run: its file, or its encoded bytes. */
export type ModelSource = string | Uint8Array;

/** A graph input as random values are made for it. */
export interface InputSpec {
  readonly name: string;
  /** undefined for an element type no session can be fed (see ELEM_TYPES). */
  readonly type: TensorType | undefined;
  readonly dims: readonly number[];
  /** Integer inputs used as Gather indices into an initializer stay below its first dim; others below 2. */
  readonly bound: number;
  /** The rows of the smallest table the input indexes directly; undefined when it indexes none. */
  readonly rows?: number;
}

/** The inputs of a model, symbolic dims sized by `symbolSize`. */
export function modelInputs(model: ModelSource, symbolSize: (symbol: string) => number): InputSpec[] {
  const graph = decodeOnnxModel(typeof model === "string" ? fs.readFileSync(model) : model).graph!;
  const tables = new Map((graph.initializer ?? []).map((t) => [t.name!, Number(t.dims?.[0] ?? 0)]));
  return (graph.input ?? []).map((input) => {
    const name = input.name!;
    const tensor = input.type?.tensorType;
    // The input as the graph reads it: itself, or through its run-time size guard.
    const reads = new Set([
      name,
      ...(graph.node ?? [])
        .filter((n) => n.name?.startsWith(`${GUARD_SCOPE} ${name}/`) && n.input?.[0] === name)
        .map((n) => n.output![0]!),
    ]);
    const rows = (graph.node ?? []).flatMap((n) =>
      n.opType === "Gather" && reads.has(n.input?.[1] ?? "") && tables.has(n.input![0] ?? "")
        ? [tables.get(n.input![0]!)!]
        : [],
    );
    return {
      name,
      type: ELEM_TYPES[tensor?.elemType ?? 0],
      dims: (tensor?.shape?.dim ?? []).map((d) =>
        d.dimParam ? evalDimParam(d.dimParam, symbolSize) : Number(d.dimValue ?? 1),
      ),
      // Ids of unknown range (masks, positions) are drawn from {0, 1}.
      bound: rows.length > 0 ? Math.min(...rows) : 2,
      ...(rows.length > 0 ? { rows: Math.min(...rows) } : {}),
    };
  });
}

/** Thrown for an input of an element type random values cannot be made of. */
export class RandomInputError extends Error {
  constructor(readonly input: string) {
    super(`cannot make random values for input "${input}" of its element type`);
  }
}

/**
 * Seeded values of an input, the same for the same name and seed: standard normal floats, integers
 * below its bound (8-bit ones also below 128), booleans 0/1.
 */
export async function randomTensor(input: InputSpec, seed: number): Promise<Tensor> {
  const { Tensor } = await onnxruntime();
  const rng = namedRng(`input:${input.name}`, seed);
  const dims = [...input.dims];
  const n = dims.reduce((p, d) => p * d, 1);
  switch (input.type) {
    case "float32":
    case "float64":
    case "float16": {
      const values = Float32Array.from({ length: n }, () => rng.normal());
      return new Tensor(
        input.type,
        input.type === "float32"
          ? values
          : input.type === "float64"
            ? Float64Array.from(values)
            : float32ToFloat16(values),
        dims,
      );
    }
    case "int64":
      return new Tensor(
        "int64",
        BigInt64Array.from({ length: n }, () => BigInt(rng.below(input.bound))),
        dims,
      );
    case "int32":
      return new Tensor(
        "int32",
        Int32Array.from({ length: n }, () => rng.below(input.bound)),
        dims,
      );
    case "int8":
    case "uint8":
    case "bool": {
      const bound = input.type === "bool" ? 2 : Math.min(input.bound, 128);
      const values = Array.from({ length: n }, () => rng.below(bound));
      return input.type === "int8"
        ? new Tensor("int8", Int8Array.from(values), dims)
        : new Tensor(input.type, Uint8Array.from(values), dims);
    }
    default:
      throw new RandomInputError(input.name);
  }
}

/** Seeded random values of every input of a model (see randomTensor). */
export async function randomInputs(
  model: ModelSource,
  seed: number,
  symbolSize: (symbol: string) => number,
): Promise<Record<string, Tensor>> {
  const feeds: Record<string, Tensor> = {};
  for (const input of modelInputs(model, symbolSize)) feeds[input.name] = await randomTensor(input, seed);
  return feeds;
}

/**
 * A session on a model file or its bytes. onnxruntime's own log is off unless `options` ask for it:
 * every failure is thrown with its message, which vlmc reports once, and the log would repeat it
 * first, with raw ANSI colour escapes even into a pipe.
 */
export async function createSession(
  model: ModelSource,
  options: Ort.InferenceSession.SessionOptions = {},
): Promise<Ort.InferenceSession> {
  const { InferenceSession } = await onnxruntime();
  const quiet = { logSeverityLevel: 4 as const, ...options };
  // Two calls: create's overloads take a path or bytes, not a union of them.
  return typeof model === "string" ? InferenceSession.create(model, quiet) : InferenceSession.create(model, quiet);
}

/**
 * Creates a session on `model`, hands it to `use` and releases it however `use` ends. A failure to
 * create the session is thrown as `loadError(e)` when given, so callers can tell it from their own.
 */
export async function withSession<T>(
  model: ModelSource,
  { loadError }: { readonly loadError?: (e: unknown) => Error },
  use: (session: Ort.InferenceSession) => Promise<T>,
): Promise<T> {
  let session: Ort.InferenceSession;
  try {
    session = await createSession(model);
  } catch (e) {
    throw loadError ? loadError(e) : e;
  }
  try {
    return await use(session);
  } finally {
    await session.release();
  }
}

/** Runs `model` once on the feeds it reads (any others are left out) and returns its outputs. */
export function runModel(model: ModelSource, feeds: Readonly<Record<string, Tensor>>): Promise<Record<string, Tensor>> {
  return withSession(model, {}, async (session) => {
    const wanted = Object.fromEntries(session.inputNames.map((n) => [n, feeds[n]!]));
    return (await session.run(wanted)) as Record<string, Tensor>;
  });
}

// The inputs of a run, checked before onnxruntime sees them: given tensors against the declared
// dtypes, ranks, sizes, symbols and symbol bounds (which vlmc writes into the model as
// `vlmc.bounds`), and random tensors for the rest, sized by the symbols the given ones fix.
// Without this, a wrong size fails deep inside a kernel ("208 by 308") or a random input of one
// size meets a given one of another in a Concat.

import * as fs from "node:fs";
import type * as Ort from "onnxruntime-node";
import { BOUNDS_METADATA } from "../onnx/manifest.js";
import { decodeOnnxModel } from "../onnx/onnx-writer.js";
import {
  ELEM_TYPES,
  modelInputs,
  numbers,
  randomTensor,
  TOKEN_SIZE,
  type ModelSource,
  type Tensor,
} from "./onnxruntime.js";

/** A given input that does not fit the model, named with its axis and symbol where it has them. */
export class FeedError extends Error {
  constructor(
    message: string,
    readonly input: string,
  ) {
    super(message);
  }
}

interface DeclaredInput {
  readonly name: string;
  readonly type: Ort.Tensor.Type | undefined;
  /** A size, or the dim_param vlmc wrote (`B`, `T`, `B*N`, `T + 1`). */
  readonly dims: readonly (number | string)[];
}

export interface PlannedFeeds {
  readonly feeds: Record<string, Tensor>;
  /** The size of every symbol of the inputs, given or chosen. */
  readonly sizes: Record<string, number>;
}

export interface FeedOptions {
  readonly seed: number;
  /** Size of a symbol no given input fixes; default: token counts (T…) TOKEN_SIZE, others 1, both within the bound. */
  readonly size?: (symbol: string, bound: number | undefined) => number;
}

const SYMBOL = /^[A-Za-z_][A-Za-z0-9_]*$/;
const symbolsIn = (text: string): string[] => text.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? [];

function defaultSize(symbol: string, bound: number | undefined): number {
  return Math.min(/^T/.test(symbol) ? TOKEN_SIZE : 1, bound ?? Infinity);
}

/** Declared inputs and symbol bounds of a model. */
function declarations(bytes: Uint8Array): { inputs: DeclaredInput[]; bounds: Map<string, number> } {
  const model = decodeOnnxModel(bytes);
  const entry = (model.metadataProps ?? []).find((p) => p.key === BOUNDS_METADATA);
  const bounds = new Map<string, number>(entry?.value ? Object.entries(JSON.parse(entry.value) as object) : []);
  const inputs = (model.graph?.input ?? []).map((input) => {
    const tensor = input.type?.tensorType;
    return {
      name: input.name!,
      type: ELEM_TYPES[tensor?.elemType ?? 0],
      dims: (tensor?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue ?? 1))),
    };
  });
  return { inputs, bounds };
}

/** Evaluates a dim_param (`B*N`, `2*T + 1`) once its symbols have sizes; undefined while one has none. */
function evaluate(text: string, sizes: ReadonlyMap<string, number>): number | undefined {
  let total = 0;
  for (const [, sign, term] of text.replace(/\s+/g, "").matchAll(/([+-]?)([^+-]+)/g)) {
    let value = 1;
    for (const f of term!.split("*")) {
      const v = /^\d+$/.test(f) ? Number(f) : sizes.get(f);
      if (v === undefined) return undefined;
      value *= v;
    }
    total += sign === "-" ? -value : value;
  }
  return total;
}

/** Binds the symbols of the given inputs, checking every given tensor against its declaration. */
function bindGiven(
  inputs: readonly DeclaredInput[],
  given: Readonly<Record<string, Tensor>>,
  bounds: ReadonlyMap<string, number>,
): Map<string, number> {
  const sizes = new Map<string, number>();
  const boundBy = new Map<string, string>();
  for (const decl of inputs) {
    const t = given[decl.name];
    if (!t) continue;
    const declared = `[${decl.dims.join(", ")}]`;
    if (decl.type !== undefined && t.type !== decl.type)
      throw new FeedError(`input "${decl.name}" is ${t.type}, the model declares ${decl.type}${declared}`, decl.name);
    if (t.dims.length !== decl.dims.length)
      throw new FeedError(
        `input "${decl.name}" has rank ${t.dims.length} [${t.dims.join(", ")}], the model declares rank ${decl.dims.length} ${declared}`,
        decl.name,
      );
    decl.dims.forEach((d, axis) => {
      const n = t.dims[axis]!;
      const at = `input "${decl.name}" axis ${axis}`;
      if (typeof d === "number") {
        if (n !== d) throw new FeedError(`${at} is ${n}, the model declares ${d} ${declared}`, decl.name);
        return;
      }
      if (!SYMBOL.test(d)) return; // compound sizes are checked once every symbol has a size
      if (n < 1) throw new FeedError(`${at} (${d}) is ${n}; symbolic sizes are at least 1`, decl.name);
      const bound = bounds.get(d);
      if (bound !== undefined && n > bound)
        throw new FeedError(`${at} (${d}) is ${n}, but the model declares ${d} <= ${bound}`, decl.name);
      const earlier = sizes.get(d);
      if (earlier !== undefined && earlier !== n)
        throw new FeedError(`${at} (${d}) is ${n}, but ${boundBy.get(d)} makes ${d} = ${earlier}`, decl.name);
      sizes.set(d, n);
      boundBy.set(d, at);
    });
  }
  return sizes;
}

/**
 * Feeds for every input of `model`: the given tensors, checked (FeedError names the input, axis
 * and symbol at fault), and seeded random tensors for the others, their symbols sized as the given
 * inputs fix them, else by `options.size` within the declared bounds.
 */
export async function planFeeds(
  model: ModelSource,
  given: Readonly<Record<string, Tensor>>,
  options: FeedOptions,
): Promise<PlannedFeeds> {
  const bytes = typeof model === "string" ? fs.readFileSync(model) : model;
  const { inputs, bounds } = declarations(bytes);
  const sizes = bindGiven(inputs, given, bounds);
  const size = options.size ?? defaultSize;
  for (const decl of inputs)
    for (const d of decl.dims) {
      if (typeof d !== "string") continue;
      for (const s of symbolsIn(d)) if (!sizes.has(s)) sizes.set(s, Math.max(1, size(s, bounds.get(s))));
    }
  for (const decl of inputs) {
    const t = given[decl.name];
    if (!t) continue;
    decl.dims.forEach((d, axis) => {
      if (typeof d !== "string" || SYMBOL.test(d)) return;
      const expected = evaluate(d, sizes);
      if (expected !== undefined && expected !== t.dims[axis])
        throw new FeedError(
          `input "${decl.name}" axis ${axis} is ${t.dims[axis]}, but ${d} = ${expected} with ${symbolsIn(d)
            .map((s) => `${s} = ${sizes.get(s)}`)
            .join(", ")}`,
          decl.name,
        );
    });
  }
  const feeds: Record<string, Tensor> = {};
  for (const spec of modelInputs(bytes, (s) => sizes.get(s) ?? 1)) {
    const t = given[spec.name];
    if (t && spec.rows !== undefined) checkIndices(spec.name, t, spec.rows);
    feeds[spec.name] = t ?? (await randomTensor(spec, options.seed));
  }
  return { feeds, sizes: Object.fromEntries([...sizes].sort(([a], [b]) => a.localeCompare(b))) };
}

/** Ids that index a table directly (an embedding's Gather) lie in [0, rows): a fact of the values, checked here. */
function checkIndices(name: string, t: Tensor, rows: number): void {
  const values = numbers(t);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < 0 || v >= rows)
      throw new FeedError(
        `input "${name}" holds ${v} at flat index ${i}, but it indexes a table of ${rows} rows (ids from 0 to ${rows - 1})`,
        name,
      );
  }
}

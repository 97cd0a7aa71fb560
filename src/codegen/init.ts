// Deterministic random initialisation of parameters. Each parameter draws from its own stream,
// seeded from its full name and the user's seed, so its values are the same whichever graph uses
// it, in whatever order parameters are written, and whichever other parameters the model has.
// Values are computed on demand (one tensor at a time) so large models stream to disk.

import { InternalError } from "../diagnostics/diagnostic.js";
import type { Initializer, Param } from "../ir/graph.js";
import type { DType } from "../ir/types.js";
import { float32ToBfloat16, float32ToFloat16 } from "../numerics/float-convert.js";
import { freshBytes, ScratchRing, type Allocate } from "../numerics/scratch.js";
import { namedRng, type Rng } from "../numerics/rng.js";
import type { LowerOptions } from "./lower.js";
import type { LoadedWeights } from "./weights.js";

function elementCount(p: Param): number {
  return p.type.shape.reduce<number>((n, d) => {
    if (typeof d !== "number") throw new InternalError(`parameter ${p.name} has a symbolic dimension`);
    return n * d;
  }, 1);
}

/** The initial values of a parameter as float32, following its declared initializer, in memory from `allocate`. */
export function initialValues(p: Param, seed: number, allocate: Allocate = freshBytes): Float32Array {
  const n = elementCount(p);
  const out = new Float32Array(allocate(n * 4).buffer, 0, n);
  fill(out, p.init, () => namedRng(p.name, seed));
  return out;
}

function fill(out: Float32Array, init: Initializer, rng: () => Rng): void {
  switch (init.kind) {
    case "zeros":
      out.fill(0); // reused memory is not zeroed
      return;
    case "ones":
      out.fill(1);
      return;
    case "full":
      out.fill(init.value);
      return;
    case "normal": {
      rng().fillNormal(out, init.mean, init.std);
      return;
    }
    case "uniform": {
      const r = rng();
      for (let i = 0; i < out.length; i++) out[i] = (2 * r.uniform() - 1) * init.bound;
      return;
    }
  }
}

/** Little-endian bytes of float32 values stored as a floating-point parameter dtype. */
export function encodeFloats(values: Float32Array, dtype: DType): Uint8Array {
  const view = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (dtype) {
    case "f32":
      return view(values);
    case "f16":
      return view(float32ToFloat16(values));
    case "bf16":
      return view(float32ToBfloat16(values));
    default:
      // Parameters are declared without a dtype and are always floating point.
      throw new InternalError(`parameter of dtype ${dtype} cannot hold initial values`);
  }
}

/**
 * How lowering reads a module's parameters: each tensor read from `weights` (or drawn with `seed`
 * where no checkpoint covers it) and transposed into reused memory, alive until it is written.
 */
export function parameterBytes(weights: LoadedWeights, seed: number): Pick<LowerOptions, "paramBytes" | "allocate"> {
  const reads = new ScratchRing();
  const transposes = new ScratchRing();
  return {
    paramBytes: (p: Param, allocate = reads.take) =>
      encodeFloats(weights.values(p, allocate) ?? initialValues(p, seed, allocate), p.type.dtype),
    allocate: transposes.take,
  };
}

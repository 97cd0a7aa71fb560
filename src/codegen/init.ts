// Deterministic random initialisation of parameters. Each parameter draws from its own stream,
// seeded from its full name and the user's seed, so its values are the same whichever graph uses
// it, in whatever order parameters are written, and whichever other parameters the model has.
// Values are computed on demand (one tensor at a time) so large models stream to disk.

import { InternalError } from "../diagnostics/diagnostic.js";
import type { Initializer, Param } from "../ir/graph.js";
import type { DType } from "../ir/types.js";
import { float32ToBfloat16, float32ToFloat16 } from "./float-convert.js";

/** 32-bit FNV-1a over the UTF-8 bytes of `text`. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * xoshiro128** (Blackman & Vigna) with its state filled by splitmix32 from one 32-bit seed, as its
 * authors recommend: 32-bit arithmetic only, so it is fast in JavaScript and identical everywhere.
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | undefined;

  constructor(seed: number) {
    let x = seed >>> 0;
    const splitmix32 = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = splitmix32();
    this.s1 = splitmix32();
    this.s2 = splitmix32();
    this.s3 = splitmix32();
  }

  /** A uniformly distributed 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in the open interval (0, 1): never 0, so log() in Box–Muller stays finite. */
  uniform(): number {
    return (this.nextU32() + 0.5) / 4294967296;
  }

  /** Standard normal by Box–Muller; the second value of each pair is kept for the next call. */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const theta = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /**
   * Fills `out` with mean + std·N(0, 1): the same values, in the same order, as repeated normal()
   * calls, computed a pair at a time without the per-call spare (several times faster on big tensors).
   */
  fillNormal(out: Float32Array, mean: number, std: number): void {
    let i = 0;
    if (this.spare !== undefined && out.length > 0) {
      out[i++] = mean + std * this.spare;
      this.spare = undefined;
    }
    for (; i + 1 < out.length; i += 2) {
      const r = Math.sqrt(-2 * Math.log(this.uniform()));
      const theta = 2 * Math.PI * this.uniform();
      out[i] = mean + std * r * Math.cos(theta);
      out[i + 1] = mean + std * r * Math.sin(theta);
    }
    if (i < out.length) out[i] = mean + std * this.normal();
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.uniform() * n);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** The generator for one named stream (a parameter, or a random input of `vlmc run`). */
export function namedRng(name: string, seed: number): Rng {
  return new Rng(fnv1a(name) ^ (seed >>> 0));
}

function elementCount(p: Param): number {
  return p.type.shape.reduce<number>((n, d) => {
    if (typeof d !== "number") throw new InternalError(`parameter ${p.name} has a symbolic dimension`);
    return n * d;
  }, 1);
}

/** The initial values of a parameter as float32, following its declared initializer. */
export function initialValues(p: Param, seed: number): Float32Array {
  const out = new Float32Array(elementCount(p));
  fill(out, p.init, () => namedRng(p.name, seed));
  return out;
}

function fill(out: Float32Array, init: Initializer, rng: () => Rng): void {
  switch (init.kind) {
    case "zeros":
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

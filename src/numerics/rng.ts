// Seeded random numbers that are the same on every machine: one named stream per parameter
// (initialisation) or per random input (`vlmc run`, `--verify`), from the stream's name and the user's seed.

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

  /** Uniform in the open interval (0, 1): never 0, so log() stays finite. */
  uniform(): number {
    return (this.nextU32() + 0.5) / 4294967296;
  }

  /** Standard normal (see ZIGGURAT). */
  normal(): number {
    const hz = this.nextU32() | 0;
    const strip = hz & 127;
    return Math.abs(hz) < ZIGGURAT.k[strip]! ? hz * ZIGGURAT.w[strip]! : this.normalOutside(hz, strip);
  }

  /** Fills `out` with mean + std·N(0, 1): the same values, in the same order, as repeated normal() calls. */
  fillNormal(out: Float32Array, mean: number, std: number): void {
    const { k, w } = ZIGGURAT;
    for (let i = 0; i < out.length; i++) {
      const hz = this.nextU32() | 0;
      const strip = hz & 127;
      out[i] = mean + std * (Math.abs(hz) < k[strip]! ? hz * w[strip]! : this.normalOutside(hz, strip));
    }
  }

  /** The ziggurat's rare path (about 1 draw in 100): a wedge, or the tail beyond R. */
  private normalOutside(hz: number, strip: number): number {
    const { k, w, f } = ZIGGURAT;
    for (;;) {
      const x = hz * w[strip]!;
      if (strip === 0) {
        // Marsaglia's tail method: exact beyond R.
        let tx: number;
        let ty: number;
        do {
          tx = -Math.log(this.uniform()) / ZIGGURAT_R;
          ty = -Math.log(this.uniform());
        } while (ty + ty < tx * tx);
        return hz > 0 ? ZIGGURAT_R + tx : -ZIGGURAT_R - tx;
      }
      if (f[strip]! + this.uniform() * (f[strip - 1]! - f[strip]!) < Math.exp(-0.5 * x * x)) return x;
      hz = this.nextU32() | 0;
      strip = hz & 127;
      if (Math.abs(hz) < k[strip]!) return hz * w[strip]!;
    }
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.uniform() * n);
  }
}

/** Where the ziggurat's base strip ends and its tail begins (128 strips). */
const ZIGGURAT_R = 3.442619855899;

/**
 * Marsaglia and Tsang's ziggurat for the normal distribution (J. Stat. Softw. 5(8), 2000), 128
 * strips, on 32-bit draws: one draw, a compare and a multiply for 99% of the values, about 7 times
 * the speed of Box–Muller in JavaScript, which made random initialisation the slowest part of a
 * full-size compile. The strip index reuses the low 7 bits of the draw, as in the paper; that
 * slight dependence is immaterial for initial weights and random test inputs. The tables are
 * computed with Math.exp/log/sqrt, which V8 computes identically on every platform.
 */
const ZIGGURAT = (() => {
  const k = new Float64Array(128);
  const w = new Float64Array(128);
  const f = new Float64Array(128);
  const m1 = 2 ** 31;
  const area = 9.91256303526217e-3;
  let d = ZIGGURAT_R;
  let t = d;
  const q = area / Math.exp(-0.5 * d * d);
  k[0] = (d / q) * m1;
  k[1] = 0;
  w[0] = q / m1;
  w[127] = d / m1;
  f[0] = 1;
  f[127] = Math.exp(-0.5 * d * d);
  for (let i = 126; i >= 1; i--) {
    d = Math.sqrt(-2 * Math.log(area / d + Math.exp(-0.5 * d * d)));
    k[i + 1] = (d / t) * m1;
    t = d;
    f[i] = Math.exp(-0.5 * d * d);
    w[i] = d / m1;
  }
  return { k, w, f };
})();

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** The generator for one named stream (a parameter, or a random input of `vlmc run`). */
export function namedRng(name: string, seed: number): Rng {
  return new Rng(fnv1a(name) ^ (seed >>> 0));
}

import { describe, expect, it } from "vitest";
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from "./float-convert.js";

function f32FromBits(...bits: number[]): Float32Array {
  return new Float32Array(new Uint32Array(bits).buffer);
}

function bitsOfF32(values: Float32Array): number[] {
  return Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));
}

function toHalf(...values: number[]): number[] {
  return Array.from(float32ToFloat16(new Float32Array(values)));
}

// Independent numeric reference: round |x| on the binary16 grid, ties to even.
function referenceHalfRound(x: number): number {
  if (Number.isNaN(x) || x === 0 || !Number.isFinite(x)) return x;
  const a = Math.abs(x);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  e = Math.max(e, -14);
  const ulp = 2 ** (e - 10);
  const q = a / ulp;
  const fl = Math.floor(q);
  const diff = q - fl;
  const r = diff > 0.5 || (diff === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  const rounded = r * ulp;
  const result = rounded >= 65520 ? Infinity : rounded;
  return x < 0 ? -result : result;
}

describe("float32ToFloat16", () => {
  it("encodes known values to exact bit patterns", () => {
    // 3.14159 (not Math.PI): the bit pattern below is that of float16(3.14159).
    // biome-ignore lint/suspicious/noApproximativeNumericConstant: a fixed test input, not π
    expect(toHalf(1.0, -2.0, 0.5, 65504, 0.1, 1 / 3, 3.14159)).toEqual([
      0x3c00, 0xc000, 0x3800, 0x7bff, 0x2e66, 0x3555, 0x4248,
    ]);
  });

  it("keeps signed zeros", () => {
    expect(toHalf(0, -0)).toEqual([0x0000, 0x8000]);
  });

  it("overflows to infinity at and above 65520, but not just below", () => {
    expect(toHalf(65519.99, 65520, 1e6, -65520, Infinity, -Infinity)).toEqual([
      0x7bff, 0x7c00, 0x7c00, 0xfc00, 0x7c00, 0xfc00,
    ]);
  });

  it("handles subnormals and the normal boundary", () => {
    expect(toHalf(2 ** -24, 2 ** -14, 2 ** -14 - 2 ** -24, -(2 ** -24))).toEqual([0x0001, 0x0400, 0x03ff, 0x8001]);
  });

  it("rounds ties to even", () => {
    // 1 + 2^-11 lies exactly between 0x3C00 and 0x3C01; 1 + 3*2^-11 between 0x3C01 and 0x3C02.
    expect(toHalf(1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20)).toEqual([0x3c00, 0x3c02, 0x3c01]);
    // Subnormal ties: 2^-25 -> 0, 3*2^-25 -> 2 ulps, 1.5*2^-25 -> 1 ulp.
    expect(toHalf(2 ** -25, 3 * 2 ** -25, 1.5 * 2 ** -25)).toEqual([0x0000, 0x0002, 0x0001]);
    // Rounding up out of the subnormal range reaches the smallest normal.
    expect(toHalf(2 ** -14 - 2 ** -26)).toEqual([0x0400]);
  });

  it("flushes values far below the subnormal range (including float32 subnormals) to zero", () => {
    expect(toHalf(2 ** -26, 1e-30, -1e-30)).toEqual([0x0000, 0x0000, 0x8000]);
    expect(Array.from(float32ToFloat16(f32FromBits(0x00000001, 0x80400000)))).toEqual([0x0000, 0x8000]);
  });

  it("keeps NaN a NaN, even when the payload is only in the low bits", () => {
    const out = float32ToFloat16(f32FromBits(0x7fc00000, 0x7f800001, 0xffc00000));
    for (const h of out) {
      expect(h & 0x7c00).toBe(0x7c00);
      expect(h & 0x03ff).not.toBe(0);
    }
    expect(out[2]! & 0x8000).toBe(0x8000);
  });

  it("respects byteOffset of the source view", () => {
    const backing = new Float32Array([99, 1, 2]);
    expect(Array.from(float32ToFloat16(backing.subarray(1)))).toEqual([0x3c00, 0x4000]);
  });

  it("matches a numeric reference on pseudo-random float32 bit patterns", () => {
    let seed = 0x12345678;
    const n = 100_000;
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      // Bias exponents into and around the binary16 range so rounding paths are exercised.
      const exp = 100 + (seed % 50);
      bits[i] = ((seed & 0x80000000) | (exp << 23) | (Math.imul(seed, 2654435761) & 0x7fffff)) >>> 0;
    }
    const src = new Float32Array(bits.buffer);
    const back = float16ToFloat32(float32ToFloat16(src));
    for (let i = 0; i < n; i++) {
      const expected = referenceHalfRound(src[i]!);
      if (!Object.is(back[i], expected)) {
        throw new Error(`mismatch for 0x${bits[i]!.toString(16)}: got ${back[i]}, want ${expected}`);
      }
    }
  });
});

describe("float16ToFloat32", () => {
  it("decodes known bit patterns", () => {
    const out = float16ToFloat32(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x7c00, 0xfc00]));
    expect(Array.from(out)).toEqual([1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, Infinity, -Infinity]);
  });

  it("decodes signed zeros and NaN", () => {
    const out = float16ToFloat32(new Uint16Array([0x0000, 0x8000, 0x7e00, 0x7c01]));
    expect(Object.is(out[0], 0)).toBe(true);
    expect(Object.is(out[1], -0)).toBe(true);
    expect(Number.isNaN(out[2])).toBe(true);
    expect(Number.isNaN(out[3])).toBe(true);
  });

  it("round-trips every non-NaN binary16 bit pattern exactly", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = float32ToFloat16(float16ToFloat32(all));
    for (let i = 0; i < 65536; i++) {
      const nan = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
      if (nan) {
        expect((back[i]! & 0x7c00) === 0x7c00 && (back[i]! & 0x3ff) !== 0).toBe(true);
      } else if (back[i] !== i) {
        throw new Error(`0x${i.toString(16)} round-tripped to 0x${back[i]!.toString(16)}`);
      }
    }
  });
});

describe("float32ToBfloat16", () => {
  it("encodes known values", () => {
    expect(Array.from(float32ToBfloat16(new Float32Array([1, -2, 0, -0, Infinity, -Infinity])))).toEqual([
      0x3f80, 0xc000, 0x0000, 0x8000, 0x7f80, 0xff80,
    ]);
  });

  it("rounds to nearest, ties to even", () => {
    const out = float32ToBfloat16(f32FromBits(0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff));
    expect(Array.from(out)).toEqual([0x3f80, 0x3f82, 0x3f81, 0x3f80]);
  });

  it("overflows the largest float32 to infinity", () => {
    expect(Array.from(float32ToBfloat16(f32FromBits(0x7f7fffff, 0xff7fffff)))).toEqual([0x7f80, 0xff80]);
  });

  it("keeps NaN a NaN, even when the payload is only in the low bits", () => {
    const out = float32ToBfloat16(f32FromBits(0x7f800001, 0xffc00000, 0x7fffffff));
    for (const h of out) {
      expect(h & 0x7f80).toBe(0x7f80);
      expect(h & 0x007f).not.toBe(0);
    }
  });
});

describe("bfloat16ToFloat32", () => {
  it("places the bits in the upper half of a float32", () => {
    expect(bitsOfF32(bfloat16ToFloat32(new Uint16Array([0x3f80, 0xc000, 0x8000, 0x7fc0])))).toEqual([
      0x3f800000, 0xc0000000, 0x80000000, 0x7fc00000,
    ]);
  });

  it("round-trips every bfloat16 bit pattern", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = float32ToBfloat16(bfloat16ToFloat32(all));
    for (let i = 0; i < 65536; i++) {
      const nan = (i & 0x7f80) === 0x7f80 && (i & 0x7f) !== 0;
      const ok = nan ? (back[i]! & 0x7f80) === 0x7f80 && (back[i]! & 0x7f) !== 0 : back[i] === i;
      if (!ok) throw new Error(`0x${i.toString(16)} round-tripped to 0x${back[i]!.toString(16)}`);
    }
  });
});

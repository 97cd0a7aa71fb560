// Quantization arithmetic: rounding, the int8 per-channel round trip and its error bound, and the
// MatMulNBits 4-bit layout (bytes written out by hand, pack/unpack round trip, padding, both
// weight layouts).

import { describe, expect, it } from "vitest";
import { namedRng } from "./rng.js";
import { float16ToFloat32, float32ToFloat16 } from "./float-convert.js";
import {
  dequantizeInt4,
  dequantizeInt8,
  INT4_SCALE_FRACTIONS,
  quantizeInt4Blockwise,
  quantizeInt8PerChannel,
  quantizedBytes,
  roundHalfEven,
  unpackInt4,
  type ScaleRounding,
} from "./quant-math.js";

/** [K, N] normal values, and the same tensor as [N, K]. */
function weights(K: number, N: number, seed = 1): { kn: Float32Array; nk: Float32Array } {
  const rng = namedRng("quant-math", seed);
  const kn = Float32Array.from({ length: K * N }, () => rng.normal());
  const nk = new Float32Array(K * N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) nk[n * K + k] = kn[k * N + n]!;
  return { kn, nk };
}

describe("roundHalfEven", () => {
  it("rounds ties to the even neighbour, like ONNX QuantizeLinear", () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6, -2.6, 3].map(roundHalfEven)).toEqual([
      0, 2, 2, -0, -2, -2, 2, 3, -3, 3,
    ]);
  });
});

describe("int8 per-channel", () => {
  it("maps each column's largest magnitude to ±127 and stays within half a step", () => {
    const K = 40;
    const N = 7;
    const { kn } = weights(K, N);
    const q = quantizeInt8PerChannel(kn, "in_out", K, N);
    const back = dequantizeInt8(q, K, N);
    for (let n = 0; n < N; n++) {
      let max = 0;
      for (let k = 0; k < K; k++) max = Math.max(max, Math.abs(kn[k * N + n]!));
      expect(q.scales[n]).toBeCloseTo(max / 127, 6);
      const codes = Array.from({ length: K }, (_, k) => q.q[k * N + n]!);
      expect(Math.max(...codes.map(Math.abs))).toBe(127);
      for (let k = 0; k < K; k++)
        expect(Math.abs(back[k * N + n]! - kn[k * N + n]!)).toBeLessThanOrEqual(q.scales[n]! / 2 + 1e-7);
    }
    expect(Math.min(...q.q)).toBeGreaterThanOrEqual(-127);
  });

  it("reads [out, in] the same as [in, out], and gives a zero column scale 1", () => {
    const { kn, nk } = weights(5, 3);
    for (let k = 0; k < 5; k++) kn[k * 3 + 1] = 0;
    for (let k = 0; k < 5; k++) nk[1 * 5 + k] = 0;
    const a = quantizeInt8PerChannel(kn, "in_out", 5, 3);
    const b = quantizeInt8PerChannel(nk, "out_in", 5, 3);
    expect(a).toEqual(b);
    expect(a.scales[1]).toBe(1);
    expect([0, 1, 2, 3, 4].map((k) => a.q[k * 3 + 1])).toEqual([0, 0, 0, 0, 0]);
  });

  it("quantizes with the stored scale, so exact multiples survive", () => {
    const q = quantizeInt8PerChannel([127, -64, 1, 0], "in_out", 4, 1);
    expect(q.scales[0]).toBe(1);
    expect(Array.from(q.q)).toEqual([127, -64, 1, 0]);
  });
});

describe("int4 block-wise (MatMulNBits layout)", () => {
  it("packs per column along K, low nibble first, one block after another", () => {
    // K = 20 with block 16: two blocks, the second padded. One column (N = 1) of k − 8 for k < 16,
    // so the block's largest magnitude is -8 (scale 1) and code = value + 8 = k.
    const values = Array.from({ length: 20 }, (_, k) => (k < 16 ? k - 8 : k === 16 ? 3.5 : k === 17 ? -7 : 0));
    const q = quantizeInt4Blockwise(values, "in_out", 20, 1, 16);
    expect(q.blocks).toBe(2);
    expect(q.packed.length).toBe(1 * 2 * 8);
    expect(Array.from(q.packed.slice(0, 8))).toEqual([0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
    // Block 2: extreme -7 → scale 7/8; 3.5 / 0.875 = 4 → code 12; -7 → 0; zeros and padding → 8.
    expect(q.scales[1]).toBeCloseTo(7 / 8, 7);
    expect(Array.from(q.packed.slice(8))).toEqual([0x0c, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88]);
    expect(q.scales[0]).toBe(1);
  });

  it("round-trips through unpack, each block no worse than with the unclipped scale, padding at the zero point", () => {
    const K = 70; // two full blocks of 32 and a padded one
    const N = 5;
    const { kn, nk } = weights(K, N, 2);
    const q = quantizeInt4Blockwise(kn, "in_out", K, N, 32);
    expect(q).toEqual(quantizeInt4Blockwise(nk, "out_in", K, N, 32));
    expect(q.packed.length).toBe(N * 3 * 16);
    expect(q.scales.length).toBe(N * 3);
    expect(Math.max(...unpackInt4(q.packed, K, N, 32))).toBeLessThanOrEqual(15);
    const back = dequantizeInt4(q, K, N, 32);
    for (let n = 0; n < N; n++) {
      for (let b = 0; b < 3; b++) {
        const ks = Array.from({ length: Math.min(32, K - 32 * b) }, (_, i) => 32 * b + i);
        const vals = ks.map((k) => kn[k * N + n]!);
        const extreme = vals.reduce((m, v) => (Math.abs(v) > Math.abs(m) ? v : m), 0);
        const plain = Math.fround(extreme / -8);
        const plainErr = vals.reduce(
          (e, v) => e + ((Math.min(15, Math.max(0, roundHalfEven(v / plain) + 8)) - 8) * plain - v) ** 2,
          0,
        );
        const err = ks.reduce((e, k) => e + (back[k * N + n]! - kn[k * N + n]!) ** 2, 0);
        expect(err).toBeLessThanOrEqual(plainErr * (1 + 1e-6)); // back is float32
        const scale = q.scales[n * 3 + b]!;
        expect(Math.sign(scale)).toBe(-Math.sign(extreme));
        expect(Math.abs(scale)).toBeLessThanOrEqual(Math.abs(plain));
        expect(Math.abs(scale)).toBeGreaterThanOrEqual(0.6 * Math.abs(plain) - 1e-7);
      }
      // The padded tail of the last block (k = 70 … 95) holds the zero point.
      const lastBlock = q.packed.slice((n * 3 + 2) * 16, (n * 3 + 3) * 16);
      expect(Array.from(lastBlock.slice(3))).toEqual(new Array(13).fill(0x88));
    }
  });

  it("picks, per block, the first fraction of least error (as a plain in-order search), f16 scales included", () => {
    // The quantizer tries the previous block's fraction first and stops sums early; neither may
    // change its choice. float16 scales make neighbouring fractions tie, where the earlier must win.
    const K = 128;
    const N = 24;
    const { kn } = weights(K, N, 4);
    const f16: ScaleRounding = (x) => float16ToFloat32(float32ToFloat16(Float32Array.of(x)))[0]!;
    for (const round of [Math.fround, f16]) {
      const q = quantizeInt4Blockwise(kn, "in_out", K, N, 32, round);
      for (let n = 0; n < N; n++)
        for (let b = 0; b < K / 32; b++) {
          const vals = Array.from({ length: 32 }, (_, i) => kn[(32 * b + i) * N + n]!);
          const extreme = vals.reduce((m, v) => (Math.abs(v) > Math.abs(m) ? v : m), 0);
          const errors = INT4_SCALE_FRACTIONS.map((f) => {
            const s = round((f * extreme) / -8);
            return vals.reduce((e, v) => e + (Math.min(7, Math.max(-8, roundHalfEven(v / s))) * s - v) ** 2, 0);
          });
          const first = errors.indexOf(Math.min(...errors));
          expect(q.scales[n * (K / 32) + b]).toBe(round((INT4_SCALE_FRACTIONS[first]! * extreme) / -8));
        }
    }
  });

  it("keeps the relative weight error near what 4 bits allow", () => {
    const K = 256;
    const N = 16;
    const { kn } = weights(K, N, 3);
    const back = dequantizeInt4(quantizeInt4Blockwise(kn, "in_out", K, N, 32), K, N, 32);
    let err = 0;
    let norm = 0;
    kn.forEach((w, i) => {
      err += (w - back[i]!) ** 2;
      norm += w * w;
    });
    expect(Math.sqrt(err / norm)).toBeLessThan(0.1);
    const int8 = dequantizeInt8(quantizeInt8PerChannel(kn, "in_out", K, N), K, N);
    let err8 = 0;
    kn.forEach((w, i) => (err8 += (w - int8[i]!) ** 2));
    expect(Math.sqrt(err8 / norm)).toBeLessThan(0.012);
  });

  it("refuses block sizes MatMulNBits does not take", () => {
    expect(() => quantizeInt4Blockwise([1], "in_out", 1, 1, 24)).toThrow(RangeError);
    expect(() => quantizeInt4Blockwise([1], "in_out", 1, 1, 8)).toThrow(RangeError);
  });

  it("counts the bytes a quantized weight takes", () => {
    expect(quantizedBytes("int8", 64, 10, 0)).toBe(640 + 40);
    expect(quantizedBytes("int4", 70, 5, 32)).toBe(5 * 3 * 16 + 4 * 15);
  });
});

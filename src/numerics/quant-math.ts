// The arithmetic of weight quantization, shared by codegen (which quantizes the real weights when
// it writes them) and tests: per-output-channel symmetric int8, and block-wise symmetric 4-bit in
// the layout of ONNX Runtime's MatMulNBits. Weights are W[K, N] of y = x·W (K inputs, N outputs),
// read from either of the two layouts the IR holds them in.

/** How a weight's values are laid out: `in_out` is [K, N] (MatMul's right operand), `out_in` is [N, K] (Linear's PyTorch layout). */
export type WeightLayout = "in_out" | "out_in";

/** W[k, n] of a row-major tensor in `layout`. */
export function weightAt(
  values: ArrayLike<number>,
  layout: WeightLayout,
  k: number,
  n: number,
  K: number,
  N: number,
): number {
  return layout === "in_out" ? values[k * N + n]! : values[n * K + k]!;
}

/** 1.5 · 2^52: adding and subtracting it leaves a float64 of magnitude below 2^51 rounded to an integer, half to even. */
const ROUND_EVEN = 6755399441055744;

/** Round half to even, as ONNX QuantizeLinear and numpy.round do. */
export function roundHalfEven(x: number): number {
  // The float64 addition rounds to nearest even (IEEE 754's default); larger magnitudes are integers
  // already. Rounding the magnitude keeps the sign of a result of zero (-0.5 → -0), as Math.round does.
  const a = Math.abs(x);
  const r = a < 2 ** 51 ? a + ROUND_EVEN - ROUND_EVEN : a;
  return x < 0 ? -r : r;
}

const clamp = (x: number, lo: number, hi: number): number => (x < lo ? lo : x > hi ? hi : x);

/** Rounds a scale to the precision it is stored in (float32 unless the runtime reads it as float16). */
export type ScaleRounding = (x: number) => number;

export interface Int8Weights {
  /** Row-major [K, N], the layout of DequantizeLinear(axis 1) + MatMul and of DynamicQuantizeMatMul's B. */
  readonly q: Int8Array;
  /** One per output column. */
  readonly scales: Float32Array;
}

/**
 * Symmetric per-output-channel int8: scale_n = max_k |W[k, n]| / 127, q = round(W / scale_n)
 * clamped to [-127, 127] (the zero point is 0, and -128 is left out so the range is symmetric). A
 * column of zeros gets scale 1. Quantizing with the stored (rounded) scale makes the runtime's
 * dequantized value the nearest representable one.
 */
export function quantizeInt8PerChannel(
  values: ArrayLike<number>,
  layout: WeightLayout,
  K: number,
  N: number,
  roundScale: ScaleRounding = Math.fround,
): Int8Weights {
  const scales = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let max = 0;
    for (let k = 0; k < K; k++) max = Math.max(max, Math.abs(weightAt(values, layout, k, n, K, N)));
    scales[n] = max > 0 && Number.isFinite(max) ? roundScale(max / 127) : 1;
  }
  const q = new Int8Array(K * N);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++)
      q[k * N + n] = clamp(roundHalfEven(weightAt(values, layout, k, n, K, N) / scales[n]!), -127, 127);
  }
  return { q, scales };
}

/** W[K, N] back from int8 and per-column scales. */
export function dequantizeInt8(w: Int8Weights, K: number, N: number): Float32Array {
  const out = new Float32Array(K * N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) out[k * N + n] = w.q[k * N + n]! * w.scales[n]!;
  return out;
}

export interface Int4Weights {
  /** uint8 [N, blocks, blockSize / 2]: per output column, K in blocks, two values a byte, low nibble first. */
  readonly packed: Uint8Array;
  /** [N, blocks]. */
  readonly scales: Float32Array;
  readonly blocks: number;
}

/** The zero point MatMulNBits assumes for 4 bits when none is given. */
export const INT4_ZERO_POINT = 8;

/** Blocks of `blockSize` along K, the last one padded. */
export function int4Blocks(K: number, blockSize: number): number {
  return Math.ceil(K / blockSize);
}

/** Scales tried per block, as fractions of extreme / -8: clipping the extreme often lowers the block's error. */
export const INT4_SCALE_FRACTIONS: readonly number[] = Array.from({ length: 21 }, (_, i) => 1 - i * 0.02);

/**
 * Block-wise symmetric 4-bit in MatMulNBits' layout, with the default zero point 8 (so no
 * zero-point tensor is written): in each block of `blockSize` consecutive k of one column, with m
 * the value of largest magnitude (sign kept), scale = f·m / -8 for the f in INT4_SCALE_FRACTIONS
 * (1 … 0.6) that gives the least squared error of the block (the first on ties, so f = 1 when it
 * is exact), and q = round(W / scale) + 8 clamped to [0, 15]; dequantized, (q - 8)·scale. Mapping
 * the signed extreme to -8 rather than |m| to 7 uses all 16 levels, as ONNX Runtime's block
 * quantizer does (the scale may be negative); the search is round-to-nearest with clipping, as
 * llama.cpp's quantizers do, and costs nothing at run time. The last block is padded with zeros
 * (q = 8). A block of zeros gets scale 1.
 */
export function quantizeInt4Blockwise(
  values: ArrayLike<number>,
  layout: WeightLayout,
  K: number,
  N: number,
  blockSize: number,
  roundScale: ScaleRounding = Math.fround,
): Int4Weights {
  if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0)
    throw new RangeError(`block size ${blockSize} is not a power of two of at least 16`);
  const blocks = int4Blocks(K, blockSize);
  const bytesPerBlock = blockSize / 2;
  const packed = new Uint8Array(N * blocks * bytesPerBlock);
  const scales = new Float32Array(N * blocks);
  const q = new Uint8Array(blockSize);
  // One block's weights, gathered once: the scale search reads them once per candidate, and in the
  // [in, out] layout they lie a row apart.
  const block = new Float64Array(blockSize);
  const fractions = INT4_SCALE_FRACTIONS.length;
  let hint = 0;
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < blocks; b++) {
      const start = b * blockSize;
      const length = Math.min(start + blockSize, K) - start;
      let extreme = 0;
      for (let i = 0; i < length; i++) {
        const v = (block[i] = weightAt(values, layout, start + i, n, K, N));
        if (Math.abs(v) > Math.abs(extreme)) extreme = v;
      }
      let scale = 1;
      if (extreme !== 0 && Number.isFinite(extreme)) {
        // The previous block's winner is tried first: neighbouring blocks mostly pick the same
        // fraction, and a low error found early cuts the other candidates' sums short.
        let best = Infinity;
        let bestAt = -1;
        for (let t = -1; t < fractions; t++) {
          const c = t < 0 ? hint : t;
          if (t === hint) continue;
          const s = roundScale((INT4_SCALE_FRACTIONS[c]! * extreme) / -INT4_ZERO_POINT);
          let err = 0;
          // The sum only grows: once it passes the best so far, this candidate cannot win.
          for (let i = 0; i < length && err <= best; i++) {
            const v = block[i]!;
            // roundHalfEven inlined: |v / s| is about 8 / 0.6 at most here (far below 2^51), or not
            // finite (s = 0), which the sum carries through as roundHalfEven would.
            const r = v / s + ROUND_EVEN - ROUND_EVEN;
            const d = (r < -INT4_ZERO_POINT ? -INT4_ZERO_POINT : r > 7 ? 7 : r) * s - v;
            err += d * d;
          }
          // Ties go to the earlier fraction, as if they were tried in order.
          if (err < best || (err === best && c < bestAt)) {
            best = err;
            bestAt = c;
            scale = s;
          }
        }
        hint = bestAt;
      }
      scales[n * blocks + b] = scale;
      q.fill(INT4_ZERO_POINT);
      for (let i = 0; i < length; i++) q[i] = clamp(roundHalfEven(block[i]! / scale) + INT4_ZERO_POINT, 0, 15);
      const at = (n * blocks + b) * bytesPerBlock;
      for (let j = 0; j < bytesPerBlock; j++) packed[at + j] = q[2 * j]! | (q[2 * j + 1]! << 4);
    }
  }
  return { packed, scales, blocks };
}

/** The 4-bit codes of a packed tensor as [N, K] (padding dropped), for tests and inspection. */
export function unpackInt4(packed: Uint8Array, K: number, N: number, blockSize: number): Uint8Array {
  const blocks = int4Blocks(K, blockSize);
  const out = new Uint8Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const byte =
        packed[(n * blocks + Math.floor(k / blockSize)) * (blockSize / 2) + Math.floor((k % blockSize) / 2)]!;
      out[n * K + k] = k % 2 === 0 ? byte & 0x0f : byte >>> 4;
    }
  }
  return out;
}

/** W[K, N] back from packed 4-bit codes and block scales. */
export function dequantizeInt4(w: Int4Weights, K: number, N: number, blockSize: number): Float32Array {
  const codes = unpackInt4(w.packed, K, N, blockSize);
  const out = new Float32Array(K * N);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++)
      out[k * N + n] = (codes[n * K + k]! - INT4_ZERO_POINT) * w.scales[n * w.blocks + Math.floor(k / blockSize)]!;
  }
  return out;
}

/** Bytes a quantized weight takes in the file (codes and scales), for the pass statistics. */
export function quantizedBytes(mode: "int8" | "int4", K: number, N: number, blockSize: number): number {
  if (mode === "int8") return K * N + 4 * N;
  const blocks = int4Blocks(K, blockSize);
  return N * blocks * (blockSize / 2) + 4 * N * blocks;
}

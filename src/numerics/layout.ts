// Reordering tensor bytes at build time: the transposes that store Linear weights as [in, out]
// and the layout-only values the precompute pass hoists (a parameter's transpose or reshape).

import { freshBytes, type Allocate } from "./scratch.js";

const TILE = 32;

type Words = Uint8Array | Uint16Array | Uint32Array | Float64Array;

function words(bytes: Uint8Array, size: number): Words {
  // Tensors read from a file start at offset 0; a slice elsewhere is copied to align it.
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  const Word = { 1: Uint8Array, 2: Uint16Array, 4: Uint32Array, 8: Float64Array }[size as 1 | 2 | 4 | 8];
  if (!Word) throw new RangeError(`no ${size}-byte element type`);
  // Float64Array moves 8 bytes at a time bit for bit (no arithmetic), so int64 survives too.
  return new Word(aligned.buffer as ArrayBuffer, aligned.byteOffset, aligned.byteLength / size);
}

/** An output of the same element size as `src`, in memory from `allocate`. */
function outputWords(src: Words, size: number, allocate: Allocate): Words {
  return words(allocate(src.length * size), size);
}

/**
 * Row-major [rows, cols] → [cols, rows], in tiles of TILE × TILE so that both the reads and the
 * writes stay within a few cache lines (a row-by-row loop runs several times slower on big weights).
 */
export function transposeBytes(
  bytes: Uint8Array,
  rows: number,
  cols: number,
  size: number,
  allocate: Allocate = freshBytes,
): Uint8Array {
  const src = words(bytes, size);
  const out = outputWords(src, size, allocate);
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(r0 + TILE, rows);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(c0 + TILE, cols);
      for (let r = r0; r < r1; r++) {
        const rowStart = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = src[rowStart + c]!;
      }
    }
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** ONNX Transpose on bytes: output axis i is input axis perm[i]. */
export function permuteBytes(
  bytes: Uint8Array,
  shape: readonly number[],
  perm: readonly number[],
  size: number,
  allocate: Allocate = freshBytes,
): Uint8Array {
  // Axes of size 1 do not move data; without them most permutations are a plain 2-D transpose.
  const moved = perm.filter((axis) => shape[axis] !== 1);
  const kept = moved.slice().sort((a, b) => a - b);
  if (moved.every((axis, i) => axis === kept[i])) return bytes;
  if (moved.length === 2) return transposeBytes(bytes, shape[kept[0]!]!, shape[kept[1]!]!, size, allocate);

  const src = words(bytes, size);
  const out = outputWords(src, size, allocate);
  const rank = shape.length;
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; s *= shape[i]!, i--) inStrides[i] = s;
  // Walks the output in order, stepping the input index by the permuted strides.
  const outShape = perm.map((axis) => shape[axis]!);
  const step = perm.map((axis) => inStrides[axis]!);
  const index = new Array<number>(rank).fill(0);
  let from = 0;
  for (let to = 0; to < out.length; to++) {
    out[to] = src[from]!;
    for (let i = rank - 1; i >= 0; i--) {
      index[i]!++;
      from += step[i]!;
      if (index[i]! < outShape[i]!) break;
      from -= step[i]! * outShape[i]!;
      index[i] = 0;
    }
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

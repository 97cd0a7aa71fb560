// Tests of build-time transposes against a direct index computation, for every element size,
// ranks 1–4, shapes with size-1 axes, and buffers taken from a ScratchRing.

import { describe, expect, it } from "vitest";
import { Rng } from "./rng.js";
import { permuteBytes, transposeBytes } from "./layout.js";
import { ScratchRing } from "./scratch.js";

/** ONNX Transpose computed from its definition, one element (of `size` bytes) at a time. */
function reference(bytes: Uint8Array, shape: number[], perm: number[], size: number): Uint8Array {
  const outShape = perm.map((a) => shape[a]!);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, d) => a * d, 1));
  const n = shape.reduce((a, d) => a * d, 1);
  const out = new Uint8Array(bytes.length);
  for (let to = 0; to < n; to++) {
    let rest = to;
    let from = 0;
    for (let i = outShape.length - 1; i >= 0; i--) {
      from += (rest % outShape[i]!) * strides[perm[i]!]!;
      rest = Math.floor(rest / outShape[i]!);
    }
    out.set(bytes.subarray(from * size, from * size + size), to * size);
  }
  return out;
}

function randomBytes(n: number, rng: Rng): Uint8Array {
  return Uint8Array.from({ length: n }, () => rng.below(256));
}

function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) =>
    Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]),
  );
}

describe("transposeBytes", () => {
  it("matches the definition across tile edges, for 1-, 2-, 4- and 8-byte elements", () => {
    const rng = new Rng(7);
    for (const size of [1, 2, 4, 8]) {
      for (const [rows, cols] of [
        [1, 1],
        [3, 70],
        [33, 32],
        [64, 31],
        [100, 1],
      ] as const) {
        const bytes = randomBytes(rows * cols * size, rng);
        expect(transposeBytes(bytes, rows, cols, size)).toEqual(reference(bytes, [rows, cols], [1, 0], size));
      }
    }
  });

  it("reads an unaligned view correctly", () => {
    const rng = new Rng(8);
    const backing = randomBytes(1 + 5 * 7 * 4, rng);
    const view = backing.subarray(1);
    expect(transposeBytes(view, 5, 7, 4)).toEqual(reference(view.slice(), [5, 7], [1, 0], 4));
  });
});

describe("permuteBytes", () => {
  it("matches the definition for every permutation of ranks 1 to 4, with and without size-1 axes", () => {
    const rng = new Rng(9);
    for (const shape of [[5], [3, 4], [2, 3, 5], [1, 6, 1, 4], [2, 3, 4, 5], [3, 1, 2]]) {
      for (const perm of permutations(shape.length)) {
        const bytes = randomBytes(shape.reduce((a, d) => a * d, 1) * 4, rng);
        expect(permuteBytes(bytes, shape, perm, 4), `${shape} ${perm}`).toEqual(reference(bytes, shape, perm, 4));
      }
    }
  });

  it("writes into memory from the allocator it is given", () => {
    const ring = new ScratchRing();
    const bytes = randomBytes(2 * 3 * 5 * 2, new Rng(10));
    const first = permuteBytes(bytes, [2, 3, 5], [2, 0, 1], 2, ring.take);
    const expected = reference(bytes, [2, 3, 5], [2, 0, 1], 2);
    expect(first).toEqual(expected);
    permuteBytes(bytes, [2, 3, 5], [1, 0, 2], 2, ring.take);
    // The third take reuses the first buffer.
    const third = permuteBytes(bytes, [2, 3, 5], [0, 2, 1], 2, ring.take);
    expect(third.buffer).toBe(first.buffer);
    expect(third).toEqual(reference(bytes, [2, 3, 5], [0, 2, 1], 2));
  });
});

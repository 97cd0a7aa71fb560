// Feeds for a run: given tensors checked against the declared inputs (dtype, rank, sizes, shared
// symbols, bounds, table rows), random ones sized by what the given ones fix, within the bounds.

import fs from "node:fs";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { tempFolders } from "./temp-folders.js";
import { compile } from "../src/driver/compile.js";
import { FeedError, planFeeds } from "../src/runtime/feeds.js";

const tempFolder = tempFolders("vlmc-feeds-test-");

async function model(): Promise<string> {
  const dir = tempFolder();
  const spec = path.join(dir, "m.vlm");
  fs.writeFileSync(
    spec,
    `model m {
  emb = embedding(10, 4)
  forward(ids: i64[B, T <= 3], x: f32[B, N, 4]) {
    return y: concat(emb(ids), x, axis: 1)
  }
}
`,
  );
  const result = await compile([spec], { out: path.join(dir, "m.onnx") });
  expect(result.ok).toBe(true);
  return result.files[0]!.path;
}

const floats = (dims: number[]) => new ort.Tensor("float32", new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);

describe("planFeeds", () => {
  it("sizes random inputs within the declared bound and by the given inputs", async () => {
    const file = await model();
    const free = await planFeeds(file, {}, { seed: 0 });
    expect(free.sizes).toEqual({ B: 1, N: 1, T: 3 }); // T: TOKEN_SIZE 8, held to its bound 3
    expect(free.feeds["ids"]!.dims).toEqual([1, 3]);
    const fixed = await planFeeds(file, { x: floats([2, 5, 4]) }, { seed: 0 });
    expect(fixed.sizes).toEqual({ B: 2, N: 5, T: 3 });
    expect(fixed.feeds["ids"]!.dims).toEqual([2, 3]);
    expect(Math.max(...Array.from(fixed.feeds["ids"]!.data as BigInt64Array, Number))).toBeLessThan(10);
  });

  it("names the input, axis and symbol of what does not fit", async () => {
    const file = await model();
    const ids = (values: number[], dims: number[]) => new ort.Tensor("int64", BigInt64Array.from(values, BigInt), dims);
    const cases: [Record<string, ort.Tensor>, RegExp][] = [
      [{ ids: ids([1, 2, 3, 4], [1, 4]) }, /input "ids" axis 1 \(T\) is 4, but the model declares T <= 3/],
      [{ x: floats([2, 1, 3]) }, /input "x" axis 2 is 3, the model declares 4/],
      [{ x: floats([2, 4]) }, /input "x" has rank 2/],
      [
        { ids: ids([1], [1, 1]), x: floats([2, 1, 4]) },
        /input "x" axis 0 \(B\) is 2, but input "ids" axis 0 makes B = 1/,
      ],
      [{ ids: ids([10], [1, 1]) }, /input "ids" holds 10 at flat index 0, but it indexes a table of 10 rows/],
      [{ ids: floats([1, 1]) }, /input "ids" is float32, the model declares int64/],
    ];
    for (const [given, message] of cases) {
      const error = await planFeeds(file, given, { seed: 0 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FeedError);
      expect((error as FeedError).message).toMatch(message);
    }
  });
});

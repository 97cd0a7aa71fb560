// LLaVA-NeXT's AnyRes against transformers 5.18: the arithmetic (best resolution, crop grid,
// unpadded feature window, token count) on a table of image sizes that
// scripts/generate/make_llava_next.py computed with transformers' own functions, the feature
// index the vision graph gathers by (against the model's own pack_image_features), and the processor's crops (LlavaNextImageProcessorPil) for a
// wide and a tall image.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { readNpy } from "../npy.js";
import { anyResPlan, featureIndex, type Size } from "./anyres.js";
import { preprocessImage, readImageProcessing } from "./image.js";

const DIR = path.join(import.meta.dirname, "../../../test/fixtures/generate/llava_next");
interface Row {
  size: Size;
  best: Size;
  grid: Size;
  unpadded: Size;
  tokens: number;
}
const reference = JSON.parse(fs.readFileSync(path.join(DIR, "reference.json"), "utf8")) as {
  arithmetic: { crop: number; patch: number; pinpoints: Size[]; rows: Row[] }[];
  cases: { images: string[]; image_sizes: Size[]; image_tokens: number }[];
  packing: { size: Size; rows: number[] }[];
};

describe("AnyRes arithmetic", () => {
  for (const table of reference.arithmetic)
    it(`equals transformers' on ${table.rows.length} image sizes, ${table.crop} px crops`, () => {
      const layout = { pinpoints: table.pinpoints, cropSize: table.crop, patchesPerSide: table.crop / table.patch };
      for (const row of table.rows) {
        const plan = anyResPlan(row.size, layout);
        expect({ size: row.size, best: plan.best, grid: plan.grid }).toEqual({
          size: row.size,
          best: row.best,
          grid: row.grid,
        });
        expect([plan.window.rows, plan.window.cols]).toEqual(row.unpadded);
        expect(plan.tokens).toBe(row.tokens);
      }
    });

  it("the feature index names the rows transformers' pack_image_features gives, in its order", () => {
    // The model's packing of numbered features (crop rows 0, 1, …; the newline -1), 2 × 2 grids included.
    const layout = { pinpoints: reference.arithmetic[0]!.pinpoints, cropSize: 30, patchesPerSide: 5 };
    for (const p of reference.packing) {
      const { index, crops } = featureIndex([p.size], layout);
      expect({ size: p.size, rows: index.map((i) => (i === crops * 25 ? -1 : i)) }).toEqual(p);
    }
  });

  it("the feature index reads the base crop, then the unpadded grid row by row, each row ended by the newline", () => {
    // The wide fixture image (40 × 100): a 1 × 3 grid of 5 × 5 features, 13 of its 15 columns kept.
    const layout = { pinpoints: reference.arithmetic[0]!.pinpoints, cropSize: 30, patchesPerSide: 5 };
    const { index, crops } = featureIndex(
      [
        [40, 100],
        [96, 44],
      ],
      layout,
    );
    expect(crops).toBe(8);
    const newline = crops * 25;
    expect(index.length).toBe(95 + 91);
    expect(index.slice(0, 25)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    // Grid row 0, columns 1..13: crop 1 columns 1–4, crop 2 columns 0–4, crop 3 columns 0–3.
    expect(index.slice(25, 39)).toEqual([26, 27, 28, 29, 50, 51, 52, 53, 54, 75, 76, 77, 78, newline]);
    // The tall image's crops follow the wide one's (4 crops each): its base crop is crop 4.
    expect(index.slice(95, 120)).toEqual(Array.from({ length: 25 }, (_, i) => 100 + i));
    // A 3 × 1 grid, rows 2..12 kept: the first kept row is row 2 of crop 5.
    expect(index.slice(120, 126)).toEqual([135, 136, 137, 138, 139, newline]);
    expect(index.filter((i) => i === newline).length).toBe(5 + 11);
  });
});

describe("AnyRes image processing", () => {
  const processing = readImageProcessing(DIR);
  for (const [name, size] of [
    ["wide", [40, 100]],
    ["tall", [96, 44]],
  ] as const)
    it(`${name}.png: the crops equal LlavaNextImageProcessorPil's within the resize tolerance`, async () => {
      const ref = readNpy(path.join(DIR, `pixel_values_${name}.npy`));
      const got = await preprocessImage(path.join(DIR, `${name}.png`), processing);
      expect([got.crops, 3, got.height, got.width]).toEqual(ref.shape);
      expect(got.size).toEqual(size);
      const want = ref.data as Float32Array;
      const plane = got.height * got.width;
      const levels = Array.from(
        want,
        (w, i) => Math.abs(got.pixels[i]! - w) * processing.std[Math.floor(i / plane) % 3]! * 255,
      );
      const sorted = [...levels].sort((a, b) => a - b);
      // The tolerance of image.test.ts (PIL bicubic against libvips cubic); measured here: at most 13
      // levels of 255 (wide) and 10 (tall), 95th percentile 1, mean 0.23 and 0.15.
      expect(sorted.at(-1)!).toBeLessThanOrEqual(16.01);
      expect(sorted[Math.floor(sorted.length * 0.95)]!).toBeLessThanOrEqual(2.01);
      expect(levels.reduce((a, b) => a + b, 0) / levels.length).toBeLessThan(0.5);
    });
});

// The weights of a parity fixture (test/fixtures/parity/<case>), as its case.json names them: a
// safetensors file or checkpoint folder to pass as `weights`, a recipe (hash-generated weights,
// written out as safetensors first), or none when the spec's own `weights … from` declarations name
// its checkpoints. Every key is the library's own; the spec's layouts map them.

import fs from "node:fs";
import path from "node:path";
import { writeSafetensors } from "../../src/codegen/safetensors.js";

interface RecipeTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly seed: number;
  readonly scale: number;
  readonly offset: number;
  /** The first values, as Python computed them: a generator mismatch shows up here first. */
  readonly sample: readonly number[];
}

/**
 * The hash-based weights of scripts/parity/common.py, bit for bit: element i of a tensor is
 * f32(f32(u · scale) + offset) with u = (mix(seed + (i + 1) · 0x9E3779B9) >>> 8) · 2⁻²³ − 1 in [−1, 1).
 */
export function recipeValues(seed: number, count: number, scale: number, offset: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    let z = (seed + Math.imul(i + 1, 0x9e3779b9)) >>> 0;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z = (z ^ (z >>> 16)) >>> 0;
    const u = (z >>> 8) * 2 ** -23 - 1;
    out[i] = Math.fround(u * scale) + offset; // the sum of two float32 values, rounded once on store
  }
  return out;
}

/** Writes the safetensors file a recipe describes into `dir`; returns its path. */
function materializeRecipe(recipePath: string, dir: string): string {
  const recipe = JSON.parse(fs.readFileSync(recipePath, "utf8")) as { generator: string; tensors: RecipeTensor[] };
  if (recipe.generator !== "splitmix32-uniform-v1") throw new Error(`${recipePath}: generator ${recipe.generator}`);
  const tensors = recipe.tensors.map((t) => {
    const data = recipeValues(
      t.seed,
      t.shape.reduce((a, b) => a * b, 1),
      t.scale,
      t.offset,
    );
    const first = Array.from(data.subarray(0, t.sample.length));
    if (first.some((v, i) => v !== t.sample[i]))
      throw new Error(`${recipePath}: recipe generator differs from Python's for ${t.name}: ${first} vs ${t.sample}`);
    return { name: t.name, dtype: "F32" as const, shape: t.shape, data };
  });
  const file = path.join(dir, "weights.safetensors");
  writeSafetensors(file, tensors);
  return file;
}

/** The `weights` option for the fixture in `dir`; a recipe is written out into `scratch`. */
export function fixtureWeights(dir: string, scratch?: string): string | string[] {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "case.json"), "utf8")) as { weights: string | null };
  if (manifest.weights === null) return [];
  if (!manifest.weights.endsWith(".recipe.json")) return path.join(dir, manifest.weights);
  if (!scratch) throw new Error(`${dir}: recipe weights need a folder to be written to`);
  return materializeRecipe(path.join(dir, manifest.weights), scratch);
}

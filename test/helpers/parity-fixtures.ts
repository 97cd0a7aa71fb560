// The weights of a parity fixture (test/fixtures/parity/<case>), as its case.json names them: a
// safetensors file or checkpoint folder to pass as `weights`, or none when the spec's own
// `weights … from` declarations name its checkpoints. Recipes (generated weights) are the parity
// test's own business.

import fs from "node:fs";
import path from "node:path";

export function fixtureWeights(dir: string): string | string[] {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "case.json"), "utf8")) as { weights: string | null };
  if (manifest.weights === null) return [];
  if (manifest.weights.endsWith(".recipe.json")) throw new Error(`${dir}: recipe weights need materialising`);
  return path.join(dir, manifest.weights);
}

/** Cases built from transformers' save_pretrained folders (scripts/parity/hf_fixtures.py). */
export function isHfCase(name: string): boolean {
  return name.startsWith("hf_");
}

// End to end: the tiny LLaVA and BLIP-2 checkpoints that transformers wrote
// (test/fixtures/generate/, scripts/generate/make_fixtures.py) compiled by vlmc into packages, run by
// vlmc: the greedy token ids equal transformers' `generate` for the same prompts (reference.json).
// LLaVA goes through the whole command (image file, chat template, tokenizer); BLIP-2 takes the
// processor's pixel_values, because its random model has a near-tie at one step that sharp's
// resize (not PIL's) tips the other way (the pixel parity itself is in image.test.ts).

import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../src/cli/main.js";
import { compilePackage } from "../src/driver/package.js";
import { generate } from "../src/runtime/generate/generate.js";
import { openPackage } from "../src/runtime/generate/package-engine.js";
import { readNpy } from "../src/runtime/npy.js";
import { captureIo } from "./helpers/capture-io.js";
import { tempFolders } from "./temp-folders.js";

const FIXTURES = path.join(import.meta.dirname, "fixtures", "generate");
const tempFolder = tempFolders("vlmc-generate-");

interface Reference {
  max_new_tokens: number;
  cases: { prompt: string; input_ids: number[]; greedy_ids: number[] }[];
}

function reference(name: string): Reference {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, name, "reference.json"), "utf8")) as Reference;
}

async function packageOf(name: string, target: "portable" | "ort-cpu"): Promise<string> {
  const dir = path.join(FIXTURES, name);
  const out = path.join(tempFolder(), `${name}-${target}`);
  const result = await compilePackage([path.join(dir, "spec.vlm")], { out, target, weights: [dir] });
  expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  return out;
}

describe("vlmc generate on packages compiled from transformers' checkpoints", () => {
  for (const target of ["portable", "ort-cpu"] as const) {
    it(`LLaVA (${target}): image file and prompt in, transformers' greedy ids out`, async () => {
      const pkg = await packageOf("llava", target);
      const ref = reference("llava");
      for (const c of ref.cases) {
        const image = path.join(FIXTURES, "llava", "image.png");
        const args = ["generate", pkg, "--image", image, "--prompt", c.prompt, "--json"];
        const cli = captureIo();
        expect(await runCli([...args, "--max-new-tokens", String(ref.max_new_tokens)], cli.io)).toBe(0);
        const row = (JSON.parse(cli.out) as { rows: { tokens: number[] }[] }).rows[0]!;
        expect(row.tokens).toEqual(c.greedy_ids);
      }
    });
  }

  it("BLIP-2 (portable): the processor's ids and pixels in, transformers' greedy ids out", async () => {
    const engine = await openPackage(await packageOf("blip2", "portable"));
    const ref = reference("blip2");
    const pixels = readNpy(path.join(FIXTURES, "blip2", "pixel_values.npy")).data as Float32Array;
    try {
      for (const c of ref.cases) {
        const rows = [{ ids: c.input_ids.map(BigInt), images: { pixels, count: 1 } }];
        const tokens: number[] = [];
        for await (const t of generate(engine, rows, { maxNewTokens: ref.max_new_tokens })) tokens.push(t.token);
        expect(tokens).toEqual(c.greedy_ids);
      }
    } finally {
      await engine.release();
    }
  });
});

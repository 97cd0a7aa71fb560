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

// scripts/generate/make_llava_next.py: a tiny LlavaNextForConditionalGeneration and two images, one
// wide (40 × 100: a 1 × 3 grid, 13 of 15 feature columns kept) and one tall (96 × 44: 3 × 1, 11 of
// 15 rows kept), so each takes another number of <image> tokens and unpadding trims both.
describe("vlmc generate on a LLaVA-NeXT (AnyRes) package", () => {
  interface NextReference {
    max_new_tokens: number;
    cases: {
      images: string[];
      image_sizes: [number, number][];
      prompt: string;
      input_ids: number[];
      greedy_ids: number[];
    }[];
  }
  const dir = path.join(FIXTURES, "llava_next");
  const ref = JSON.parse(fs.readFileSync(path.join(dir, "reference.json"), "utf8")) as NextReference;

  for (const target of ["portable", "ort-cpu"] as const) {
    it(`image files and prompts in (one image, then two in one prompt), transformers' greedy ids out, alone and as one batch (${target})`, async () => {
      const pkg = await packageOf("llava_next", target);
      const budget = ["--max-new-tokens", String(ref.max_new_tokens), "--json"];
      for (const c of ref.cases) {
        const cli = captureIo();
        const images = c.images.flatMap((i) => ["--image", path.join(dir, i)]);
        const args = ["generate", pkg, ...images, "--prompt", c.prompt, ...budget];
        expect(await runCli(args, cli.io)).toBe(0);
        const row = (JSON.parse(cli.out) as { rows: { promptTokens: number; tokens: number[] }[] }).rows[0]!;
        expect(row.promptTokens).toBe(c.input_ids.length);
        expect(row.tokens).toEqual(c.greedy_ids);
      }
      // Both images in one batch: rows of different lengths, crops of both in one vision call.
      const batch = path.join(tempFolder(), "batch.jsonl");
      fs.writeFileSync(
        batch,
        ref.cases
          .map((c) => JSON.stringify({ prompt: c.prompt, images: c.images.map((i) => path.join(dir, i)) }))
          .join("\n"),
      );
      const cli = captureIo();
      expect(await runCli(["generate", pkg, "--batch", batch, ...budget], cli.io)).toBe(0);
      const rows = (JSON.parse(cli.out) as { rows: { tokens: number[] }[] }).rows;
      expect(rows.map((r) => r.tokens)).toEqual(ref.cases.map((c) => c.greedy_ids));
    });
  }

  it("refuses a processor config whose pinpoints are not the package's (VLM5012), before any graph runs", async () => {
    const pkg = await packageOf("llava_next", "portable");
    const file = path.join(pkg, "processor_config.json");
    const config = JSON.parse(fs.readFileSync(file, "utf8"));
    config.image_processor.image_grid_pinpoints = [[60, 60]];
    fs.writeFileSync(file, JSON.stringify(config));
    const cli = captureIo();
    const args = ["generate", pkg, "--image", path.join(dir, "wide.png"), "--prompt", "Hi"];
    expect(await runCli(args, cli.io)).toBe(1);
    expect(cli.err).toContain("VLM5012");
    expect(cli.err).toContain("[[60,60]]");
  });

  it("the processor's ids and pixels in: the same greedy ids (portable)", async () => {
    const engine = await openPackage(await packageOf("llava_next", "portable"));
    try {
      for (const c of ref.cases) {
        const crops = c.images.map((i) => readNpy(path.join(dir, `pixel_values_${i.replace(".png", "")}.npy`)));
        const pixels = new Float32Array(crops.flatMap((p) => Array.from(p.data as Float32Array)));
        const images = { pixels, count: c.images.length, sizes: c.image_sizes };
        const rows = [{ ids: c.input_ids.map(BigInt), images }];
        const tokens: number[] = [];
        for await (const t of generate(engine, rows, { maxNewTokens: ref.max_new_tokens })) tokens.push(t.token);
        expect(tokens).toEqual(c.greedy_ids);
      }
    } finally {
      await engine.release();
    }
  });
});

// scripts/generate/flamingo_reference.py: a tiny Flamingo built outside vlmc (transformers' CLIP and
// LLaMA, open_flamingo's Perceiver Resampler and tanh-gated cross-attention with non-zero gates), its
// greedy ids from a loop that recomputes the whole forward at every step, and each step's logits.
describe("vlmc generate on a Flamingo package with two interleaved images", () => {
  interface FlamingoReference {
    max_new_tokens: number;
    input_ids: number[];
    greedy_ids: number[];
    logits: number[][];
  }
  const dir = path.join(FIXTURES, "flamingo");
  const ref = JSON.parse(fs.readFileSync(path.join(dir, "reference.json"), "utf8")) as FlamingoReference;
  // [2, 3, 16, 16]: the first <image> token's image, then the second's.
  const pixels = readNpy(path.join(dir, "pixels.npy")).data as Float32Array;

  for (const target of ["portable", "ort-cpu"] as const) {
    it(`greedy ids and every step's logits equal the reference loop (${target})`, async () => {
      const engine = await openPackage(await packageOf("flamingo", target));
      try {
        const rows = [{ ids: ref.input_ids.map(BigInt), images: { pixels, count: 2 } }];
        const tokens: number[] = [];
        for await (const t of generate(engine, rows, { maxNewTokens: ref.max_new_tokens })) tokens.push(t.token);
        expect(tokens).toEqual(ref.greedy_ids);

        // The same steps through the cache, fed the reference's own tokens: logits, not only their argmax.
        const steps = [(await engine.prefill({ rows: [rows[0]!.ids], images: [rows[0]!.images] }))[0]!];
        for (const t of ref.greedy_ids.slice(0, -1)) steps.push((await engine.step([BigInt(t)]))[0]!);
        const diff = Math.max(...steps.flatMap((l, i) => Array.from(l, (x, j) => Math.abs(x - ref.logits[i]![j]!))));
        expect(diff).toBeLessThan(1e-4);
      } finally {
        await engine.release();
      }
    });
  }
});

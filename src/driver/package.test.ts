// Generation packages end to end: `compilePackage` on the tiny LLaVA and BLIP-2 models of
// test/fixtures/package/tiny.vlm (seeded random weights), run through PackageEngine in
// onnxruntime-node. The reference is the model's own whole-sequence `forward` graph compiled the
// ordinary way (visual tokens in front of the text, no cache): prefill plus cached steps must give
// its logits at every position, alone and in a padded batch, on portable and ort-cpu.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { compile } from "./compile.js";
import { elaborate } from "./check.js";
import { renderSummary, summarize } from "./summary.js";
import { writeSafetensors } from "../codegen/safetensors.js";
import { compilePackage } from "./package.js";
import { tempFolders } from "../../test/temp-folders.js";
import { createSession, onnxruntime } from "../runtime/onnxruntime.js";
import { openPackage } from "../runtime/generate/package-engine.js";
import { MANIFEST_FILE } from "../onnx/manifest.js";

const FIXTURES = path.resolve(import.meta.dirname, "../../test/fixtures/package");
const SPEC = path.join(FIXTURES, "tiny.vlm");
const temp = tempFolders("vlmc-package-");

/** Seeded pixels for `count` 3×28×28 images (or crops). */
function pixels(count: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: count * 3 * 28 * 28 }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  });
}

/** The forward graph's logits [visual tokens + T, vocab] for one image (of `crops` crops) and `text` ids. */
async function forwardLogits(
  model: string,
  image: Float32Array,
  text: readonly number[],
  crops = 1,
): Promise<Float32Array[]> {
  const out = path.join(temp(), "forward.onnx");
  const result = await compile([SPEC], { model, graph: "forward", out });
  expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  const ort = await onnxruntime();
  const session = await createSession(out);
  const run = await session.run({
    pixels: new ort.Tensor("float32", image, crops > 1 ? [1, crops, 3, 28, 28] : [1, 3, 28, 28]),
    ids: new ort.Tensor("int64", BigInt64Array.from(text.map(BigInt)), [1, text.length]),
  });
  await session.release();
  const logits = run["logits"]!.data as Float32Array;
  return Array.from({ length: logits.length / 100 }, (_, i) => logits.slice(i * 100, (i + 1) * 100));
}

async function writePackage(model: string, target: "portable" | "ort-cpu", checkpoint: string): Promise<string> {
  const out = path.join(temp(), model);
  const result = await compilePackage([SPEC], { model, target, out, checkpoint: path.join(FIXTURES, checkpoint) });
  expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  return out;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

const IMAGE = 3n;
const TEXT = [10, 11, 12, 13, 14, 15, 16, 17];

const cases = [
  { model: "tiny_llava", checkpoint: "llava", tokens: 4, crops: 1 },
  { model: "tiny_blip2", checkpoint: "blip2", tokens: 4, crops: 1 },
  // AnyRes: a square image (56 × 56) takes the 2 × 2 grid, as the forward graph's fixed one.
  { model: "tiny_llava_next", checkpoint: "llava_next", tokens: 24, crops: 5 },
] as const;

describe.each(cases)("$model package", ({ model, checkpoint, tokens, crops }) => {
  // The prompt holds the image tokens in front of the text (where BLIP-2's processor puts them too).
  const prompt = (text: readonly number[]) => [...Array<bigint>(tokens).fill(IMAGE), ...text.map(BigInt)];
  const imageOf = (p: Float32Array) => ({ pixels: p, count: 1, ...(crops > 1 ? { sizes: [[56, 56] as const] } : {}) });

  for (const target of ["portable", "ort-cpu"] as const) {
    it(`prefill and cached steps equal the full forward (${target})`, async () => {
      const image = pixels(crops, 7);
      const full = await forwardLogits(model, image, TEXT, crops);
      const engine = await openPackage(await writePackage(model, target, checkpoint));
      const split = 3;
      const got = [(await engine.prefill({ rows: [prompt(TEXT.slice(0, split))], images: [imageOf(image)] }))[0]!];
      for (const t of TEXT.slice(split)) got.push((await engine.step([BigInt(t)]))[0]!);
      await engine.release();
      for (const [i, logits] of got.entries())
        expect(maxDiff(logits, full[tokens + split - 1 + i]!)).toBeLessThan(1e-4);
    });
  }

  it("a padded batch of two prompts equals each prompt alone (ort-cpu and portable)", async () => {
    for (const target of ["portable", "ort-cpu"] as const) {
      const dir = await writePackage(model, target, checkpoint);
      const rows = [prompt(TEXT.slice(0, 6)), prompt(TEXT.slice(2, 4))];
      const images = [imageOf(pixels(crops, 1)), imageOf(pixels(crops, 2))];
      const steps = [
        [20n, 21n],
        [22n, 23n],
        [24n, 25n],
      ];
      const batched = await openPackage(dir);
      const together = [await batched.prefill({ rows, images })];
      for (const s of steps) together.push(await batched.step(s));
      await batched.release();
      for (const r of [0, 1]) {
        const alone = await openPackage(dir);
        const own = [(await alone.prefill({ rows: [rows[r]!], images: [images[r]!] }))[0]!];
        for (const s of steps) own.push((await alone.step([s[r]!]))[0]!);
        await alone.release();
        for (const [i, logits] of own.entries()) expect(maxDiff(together[i]![r]!, logits)).toBeLessThan(1e-4);
      }
    }
  });
});

describe("tiny_flamingo package", () => {
  // The gates start at zero (std's init), which would hide the cross-attention: every parameter of
  // the gated blocks comes from a file of seeded random values instead, for both graphs compared.
  async function randomCrossWeights(): Promise<string> {
    const checked = elaborate([SPEC]);
    const module = checked.models.find((m) => m.module?.name === "tiny_flamingo")!.module!;
    let s = 11;
    const tensors = module.params
      .filter((p) => p.component === "xattn")
      .map((p) => ({
        name: p.name.slice("xattn.".length),
        dtype: "F32" as const,
        shape: p.type.shape as number[],
        data: Float32Array.from({ length: (p.type.shape as number[]).reduce((a, b) => a * b, 1) }, () => {
          s = (s * 1103515245 + 12345) % 2147483648;
          return (s / 2147483648 - 0.5) * 0.5;
        }),
      }));
    const file = path.join(temp(), "xattn.safetensors");
    writeSafetensors(file, tensors);
    return `xattn=${file}`;
  }

  for (const target of ["portable", "ort-cpu"] as const) {
    it(`prefill and cached steps (an <image> token among them) equal the full forward (${target})`, async () => {
      const weights = await randomCrossWeights();
      const images = pixels(2, 5);
      // Two images in the prompt; a third <image> generated later has no latents and sees none.
      const prompt = [1, 3, 10, 11, 3, 12];
      const steps = [13, 3, 14, 15];
      const all = [...prompt, ...steps];
      const out = path.join(temp(), "forward.onnx");
      const compiled = await compile([SPEC], { model: "tiny_flamingo", graph: "forward", out, weights });
      expect(compiled.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
      const ort = await onnxruntime();
      const session = await createSession(out);
      const run = await session.run({
        pixels: new ort.Tensor("float32", images, [1, 2, 3, 28, 28]),
        ids: new ort.Tensor("int64", BigInt64Array.from(all.map(BigInt)), [1, all.length]),
        media_locations: new ort.Tensor("bool", Uint8Array.from(all.map((t) => (t === 3 ? 1 : 0))), [1, all.length]),
      });
      await session.release();
      const full = run["logits"]!.data as Float32Array;
      const at = (i: number) => full.slice(i * 100, (i + 1) * 100);

      const dir = path.join(temp(), "flamingo");
      const result = await compilePackage([SPEC], {
        model: "tiny_flamingo",
        target,
        out: dir,
        weights,
        checkpoint: path.join(FIXTURES, "flamingo"),
      });
      expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
      expect(result.manifest?.crossCache).toMatchObject({ layers: 2, heads: 2, headDim: 16 });
      const engine = await openPackage(dir);
      const got = [(await engine.prefill({ rows: [prompt.map(BigInt)], images: [{ pixels: images, count: 2 }] }))[0]!];
      for (const t of steps.slice(0, -1)) got.push((await engine.step([BigInt(t)]))[0]!);
      await engine.release();
      for (const [i, logits] of got.entries()) expect(maxDiff(logits, at(prompt.length - 1 + i))).toBeLessThan(1e-4);
    });
  }
});

describe("embedding graph", () => {
  it("places features by a running index across the batch, and takes N = 0 features", async () => {
    const dir = await writePackage("tiny_llava", "portable", "llava");
    const ort = await onnxruntime();
    const session = await createSession(path.join(dir, "embedding.onnx"));
    const ids = [3, 3, 3, 3, 10, 11, 12, 13, 3, 3, 3, 3];
    const features = Float32Array.from({ length: 8 * 64 }, (_, i) => i / 7);
    const run = (tokens: number[], n: number, data: Float32Array) =>
      session.run({
        input_ids: new ort.Tensor("int64", BigInt64Array.from(tokens.map(BigInt)), [2, 6]),
        image_features: new ort.Tensor("float32", data, [n, 64]),
      });
    const merged = (await run(ids, 8, features))["inputs_embeds"]!.data as Float32Array;
    // Row 0 holds image tokens at columns 0-3, row 1 at 2-5: feature rows 0-3, then 4-7.
    const slots = [0, 1, 2, 3, 8, 9, 10, 11];
    for (const [k, slot] of slots.entries())
      expect(merged.slice(slot * 64, (slot + 1) * 64)).toEqual(features.slice(k * 64, (k + 1) * 64));
    // A decode step: no image tokens and N = 0 features; text columns embed as they did beside images.
    const textOnly = ids.map((t) => (t === 3 ? 20 : t));
    const text = (await run(textOnly, 0, new Float32Array(0)))["inputs_embeds"]!.data as Float32Array;
    for (const col of [4, 5, 6, 7])
      expect(text.slice(col * 64, (col + 1) * 64)).toEqual(merged.slice(col * 64, (col + 1) * 64));
    await session.release();
  });
});

describe("package folder", () => {
  it("writes the manifest, genai_config.json and the checkpoint's tokenizer files", async () => {
    const dir = await writePackage("tiny_llava", "ort-cpu", "llava");
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_FILE), "utf8"));
    expect(manifest.tokens).toEqual({ bos: 1, eos: [2], pad: 0 });
    expect(manifest.image).toMatchObject({ tokenId: 3, tokensPerImage: 4, placement: "image-tokens" });
    expect(manifest.sharedBuffer).toBe(true);
    expect(manifest.positionIds).toBe(false);
    const genai = JSON.parse(fs.readFileSync(path.join(dir, "genai_config.json"), "utf8"));
    expect(genai.model).toMatchObject({ eos_token_id: 2, bos_token_id: 1, image_token_id: 3, context_length: 64 });
    expect(genai.model.decoder).toMatchObject({ num_key_value_heads: 2, head_size: 16, num_hidden_layers: 2 });
    for (const f of ["tokenizer.json", "tokenizer_config.json", "config.json", "generation_config.json"])
      expect(fs.existsSync(path.join(dir, f)), f).toBe(true);
    const decoder = fs.readFileSync(path.join(dir, "decoder.onnx"));
    expect(decoder.includes(Buffer.from("GroupQueryAttention"))).toBe(true);
  });

  it("names the graphs' inputs and outputs as the generation contract does, whatever the spec called them", async () => {
    // tiny.vlm's vision graph reads `pixels`; a runtime that knows only the contract feeds `pixel_values`.
    const dir = await writePackage("tiny_llava", "ort-cpu", "llava");
    const names = async (file: string) => {
      const session = await createSession(path.join(dir, file));
      const io = { inputs: [...session.inputNames], outputs: [...session.outputNames] };
      await session.release();
      return io;
    };
    expect(await names("vision.onnx")).toEqual({ inputs: ["pixel_values"], outputs: ["image_features"] });
    expect(await names("embedding.onnx")).toEqual({
      inputs: ["input_ids", "image_features"],
      outputs: ["inputs_embeds"],
    });
    const decoder = await names("decoder.onnx");
    expect(decoder.inputs.slice(0, 4)).toEqual([
      "inputs_embeds",
      "attention_mask",
      "past_key_values.0.key",
      "past_key_values.0.value",
    ]);
    expect(decoder.outputs.slice(0, 3)).toEqual(["logits", "present.0.key", "present.0.value"]);
  });
});

describe("attention kernels", () => {
  it("OPT on ort-cpu attends with MultiHeadAttention over its past; portable with standard ops", async () => {
    const ort = fs.readFileSync(path.join(await writePackage("tiny_blip2", "ort-cpu", "blip2"), "decoder.onnx"));
    expect(ort.includes(Buffer.from("MultiHeadAttention"))).toBe(true);
    const portable = fs.readFileSync(path.join(await writePackage("tiny_blip2", "portable", "blip2"), "decoder.onnx"));
    expect(portable.includes(Buffer.from("com.microsoft"))).toBe(false);
  });
});

describe("bad input", () => {
  const llava = (out: string, extra: Partial<Parameters<typeof compilePackage>[1]> = {}) =>
    compilePackage([SPEC], { model: "tiny_llava", out, checkpoint: path.join(FIXTURES, "llava"), ...extra });

  it("refuses an existing folder, and --replace swaps it whole", async () => {
    const parent = temp();
    const out = path.join(parent, "pkg");
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, "old.txt"), "old");
    expect(codes(await llava(out))).toEqual(["VLM4300"]);
    expect(fs.readdirSync(out)).toEqual(["old.txt"]);
    expect(codes(await llava(out, { replace: true }))).toEqual([]);
    expect(fs.existsSync(path.join(out, "old.txt"))).toBe(false);
    expect(fs.existsSync(path.join(out, MANIFEST_FILE))).toBe(true);
    expect(fs.readdirSync(parent)).toEqual(["pkg"]); // no temporary folder left behind
  });

  it("says which checkpoint files are missing, and writes nothing", async () => {
    const parent = temp();
    const partial = path.join(parent, "checkpoint");
    fs.mkdirSync(partial);
    fs.copyFileSync(path.join(FIXTURES, "llava", "config.json"), path.join(partial, "config.json"));
    const result = await llava(path.join(parent, "pkg"), { checkpoint: partial });
    expect(codes(result)).toEqual(["VLM4301"]);
    expect(result.diagnostics[0]!.message).toContain("tokenizer_config.json, tokenizer.json");
    const none = await compilePackage([SPEC], { model: "tiny_llava", out: path.join(parent, "pkg") });
    expect(codes(none)).toEqual(["VLM4301"]);
    expect(fs.readdirSync(parent)).toEqual(["checkpoint"]);
  });

  it("checks the spec's image token against the checkpoint's config.json", async () => {
    // The BLIP-2 folder's config says 3 as well; a LLaMA config without one says nothing.
    const parent = temp();
    const ckpt = path.join(parent, "checkpoint");
    fs.cpSync(path.join(FIXTURES, "llava"), ckpt, { recursive: true });
    const config = JSON.parse(fs.readFileSync(path.join(ckpt, "config.json"), "utf8"));
    fs.writeFileSync(path.join(ckpt, "config.json"), JSON.stringify({ ...config, image_token_index: 7 }));
    const result = await llava(path.join(parent, "pkg"), { checkpoint: ckpt });
    expect(codes(result)).toEqual(["VLM3200"]);
    expect(result.diagnostics[0]!.span).toBeDefined();
  });

  it("refuses graphs that cannot form a package (a vision encoder as the decoder)", async () => {
    const dir = temp();
    const spec = path.join(dir, "bad.vlm");
    fs.writeFileSync(spec, fs.readFileSync(SPEC, "utf8").replace("decoder: llm,", "decoder: vision,"));
    const result = await compilePackage([spec], {
      model: "tiny_llava",
      out: path.join(dir, "pkg"),
      checkpoint: path.join(FIXTURES, "llava"),
    });
    expect(codes(result)).toEqual(["VLM3203"]);
    expect(fs.existsSync(path.join(dir, "pkg"))).toBe(false);
  });
});

describe("AnyRes packages", () => {
  const next = (spec: string, checkpoint = path.join(FIXTURES, "llava_next")) =>
    compilePackage([spec], { model: "tiny_llava_next", out: path.join(temp(), "pkg"), checkpoint });
  /** tiny.vlm with one edit inside tiny_llava_next. */
  const edited = (from: string, to: string) => {
    const text = fs.readFileSync(SPEC, "utf8");
    const at = text.indexOf("model tiny_llava_next");
    const file = path.join(temp(), "edited.vlm");
    fs.writeFileSync(file, text.slice(0, at) + text.slice(at).replace(from, to));
    return file;
  };

  it("writes the pinpoints, crop and feature grid into the manifest and genai_config.json", async () => {
    const result = await next(SPEC);
    expect(result.manifest?.family).toBe("llava-next");
    expect(result.manifest?.image.anyres).toEqual({
      pinpoints: [
        [28, 56],
        [56, 28],
        [56, 56],
      ],
      cropSize: 28,
      patchesPerSide: 2,
    });
    expect(result.manifest?.graphs.vision.inputs).toEqual({ pixel_values: "pixel_values", image_index: "image_index" });
    const genai = JSON.parse(fs.readFileSync(path.join(result.dir!, "genai_config.json"), "utf8"));
    expect(genai.model.vision).toMatchObject({
      image_grid_pinpoints: [
        [28, 56],
        [56, 28],
        [56, 56],
      ],
      crop_size: 28,
    });
  });

  it("proves at the spec line: a square crop grid, whole-crop pinpoints, the newline's width, the prompt bound", async () => {
    const cases: [string, string, string][] = [
      ["proj(vision(pixels, layer: -2)[:, 1:])", "proj(vision(pixels, layer: -2))", "VLM3204"], // class token kept: 5 per crop
      ["[[28, 56], [56, 28], [56, 56]]", "[[28, 50]]", "VLM3204"],
      ["    newline: image_newline,\n", "", "VLM3204"],
      ["prompt: 64,", "prompt: 23,", "VLM3205"], // the 2 × 2 grid needs 4 + 4 × 5 = 24 tokens
      ["[[28, 56], [56, 28], [56, 56]]", "[[28, 56], [56, 28], [56, 56], [112, 112]]", "VLM3205"], // 4 + 8 × 9 = 76,
    ];
    for (const [from, to, code] of cases) {
      const result = await next(edited(from, to));
      expect(codes(result), `${from} → ${to}`).toContain(code);
      expect(result.diagnostics.find((d) => d.code === code)!.span, code).toBeDefined();
      expect(result.dir).toBeUndefined();
    }
  });

  it("checks the pinpoints and crop against the checkpoint's config.json and image processor", async () => {
    const ckpt = path.join(temp(), "checkpoint");
    fs.cpSync(path.join(FIXTURES, "llava_next"), ckpt, { recursive: true });
    const file = path.join(ckpt, "preprocessor_config.json");
    const config = JSON.parse(fs.readFileSync(file, "utf8"));
    fs.writeFileSync(file, JSON.stringify({ ...config, image_grid_pinpoints: [[56, 56]] }));
    const result = await next(SPEC, ckpt);
    expect(codes(result)).toEqual(["VLM3206"]);
    expect(result.diagnostics[0]!.message).toContain("preprocessor_config.json");
    // The plain LLaVA folder: no pinpoints in config.json, no image processor.
    expect(codes(await next(SPEC, path.join(FIXTURES, "llava")))).toContain("VLM3206");
  });
});

describe("quantized decoders", () => {
  for (const quantize of ["int8", "int4"] as const) {
    it(`${quantize} on ort-cpu: the decoder's projections are quantized and the logits stay close`, async () => {
      const image = pixels(1, 7);
      const prompt = [IMAGE, IMAGE, IMAGE, IMAGE, ...TEXT.slice(0, 4).map(BigInt)];
      const logits = async (q: "none" | "int8" | "int4") => {
        const out = path.join(temp(), "pkg");
        const result = await compilePackage([SPEC], {
          model: "tiny_llava",
          target: "ort-cpu",
          quantize: q,
          out,
          checkpoint: path.join(FIXTURES, "llava"),
        });
        expect(codes(result)).toEqual([]);
        const engine = await openPackage(out);
        const got = [(await engine.prefill({ rows: [prompt], images: [{ pixels: image, count: 1 }] }))[0]!];
        got.push((await engine.step([20n]))[0]!);
        await engine.release();
        return { got, decoder: fs.readFileSync(path.join(out, "decoder.onnx")) };
      };
      const exact = await logits("none");
      const quantized = await logits(quantize);
      const op = quantize === "int4" ? "MatMulNBits" : "DynamicQuantizeMatMul";
      expect(quantized.decoder.includes(Buffer.from(op))).toBe(true);
      expect(exact.decoder.includes(Buffer.from(op))).toBe(false);
      for (const [i, q] of quantized.got.entries()) expect(cosine(q, exact.got[i]!)).toBeGreaterThan(0.99);
    });
  }
});

describe("quantization policy", () => {
  it("a model's `policy llm { quantize: int4 }` quantizes the package decoder", async () => {
    const dir = temp();
    const spec = path.join(dir, "policy.vlm");
    const text = fs
      .readFileSync(SPEC, "utf8")
      .replace(
        "  package {\n    vision: image_features,",
        "  policy llm { quantize: int4 }\n\n  package {\n    vision: image_features,",
      );
    expect(text).toContain("policy llm");
    fs.writeFileSync(spec, text);
    const out = path.join(dir, "pkg");
    const result = await compilePackage([spec], {
      model: "tiny_llava",
      target: "ort-cpu",
      out,
      checkpoint: path.join(FIXTURES, "llava"),
    });
    expect(codes(result)).toEqual([]);
    expect(fs.readFileSync(path.join(out, "decoder.onnx")).includes(Buffer.from("MatMulNBits"))).toBe(true);
  });
});

function codes(r: { diagnostics: readonly { code: string; severity: string }[] }): string[] {
  return r.diagnostics.filter((d) => d.severity === "error").map((d) => d.code);
}

function cosine(a: Float32Array, b: Float32Array): number {
  let [ab, aa, bb] = [0, 0, 0];
  a.forEach((v, i) => {
    ab += v * b[i]!;
    aa += v * v;
    bb += b[i]! * b[i]!;
  });
  return ab / Math.sqrt(aa * bb);
}

describe("vlmc summary of a package", () => {
  it("shows the graphs and the bytes of key/value cache per token", () => {
    const checked = elaborate([SPEC]);
    const get = (name: string) => checked.models.find((m) => m.module?.name === name)!;
    const llava = summarize(get("tiny_llava").module!, get("tiny_llava").tokens).package!;
    // 2 layers × (key + value) × 2 kv heads × 16 × 4 bytes.
    expect(llava.cache.bytesPerToken).toBe(2 * 2 * 2 * 16 * 4);
    expect(llava.graphs.map((g) => g.file)).toEqual(["vision.onnx", "embedding.onnx", "decoder.onnx"]);
    expect(llava.maxLength).toBe(64);
    const flamingo = summarize(get("tiny_flamingo").module!, get("tiny_flamingo").tokens).package!;
    expect(flamingo.crossCache).toEqual({
      layers: 2,
      shape: "[batch, 2, 4, 16] × 2",
      bytesPerImage: 2 * 2 * 2 * 4 * 16 * 4,
    });
    expect(renderSummary(summarize(get("tiny_blip2").module!, get("tiny_blip2").tokens))).toContain(
      "1,024 bytes per token",
    );
  });
});

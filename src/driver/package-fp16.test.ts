// fp16 generation packages (`--target ort-cuda --precision fp16`), checked without a GPU: ONNX
// Runtime's CPU provider runs these graphs (GroupQueryAttention has an fp16 CPU kernel; MatMul and
// MultiHeadAttention have none, so ONNX Runtime casts around them, computing from the same fp16
// weights and activations). Prefill and cached steps must equal the fp32 package within fp16's
// rounding, and the structure must be what a CUDA provider runs fast: fp16 weights stored
// transposed, an fp16 cache that past and present share, fp32 only for the norms and the logits.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { compilePackage, type PackageOptions } from "./package.js";
import { elaborate } from "./check.js";
import { summarize } from "./summary.js";
import { tempFolders } from "../../test/temp-folders.js";
import { openPackage } from "../runtime/generate/package-engine.js";
import type { RowImages } from "../runtime/generate/step-engine.js";
import { runCli } from "../cli/main.js";
import { captureIo } from "../../test/helpers/capture-io.js";
import { decodeOnnxModel } from "../onnx/onnx-writer.js";
import { createSession, onnxruntime } from "../runtime/onnxruntime.js";
import type * as Ort from "onnxruntime-node";

const FIXTURES = path.resolve(import.meta.dirname, "../../test/fixtures/package");
const SPEC = path.join(FIXTURES, "tiny.vlm");
const temp = tempFolders("vlmc-package-fp16-");

/** TensorProto element types. */
const FLOAT = 1;
const FLOAT16 = 10;

async function writePackage(
  model: string,
  checkpoint: string,
  options: Pick<PackageOptions, "target" | "precision">,
): Promise<string> {
  const out = path.join(temp(), model);
  const result = await compilePackage([SPEC], { model, out, checkpoint: path.join(FIXTURES, checkpoint), ...options });
  expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  return out;
}

/** Seeded pixels for `count` 3×28×28 images. */
function pixels(count: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: count * 3 * 28 * 28 }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  });
}

/** Largest difference between `a` and `b`, relative to `b`'s largest magnitude. */
function relativeDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  const scale = b.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0) / scale;
}

/** Logits of a prefill and of each cached step after it. */
async function logitsOf(dir: string, prompt: readonly bigint[], images: RowImages, steps: readonly bigint[]) {
  const engine = await openPackage(dir);
  try {
    const got = [(await engine.prefill({ rows: [prompt], images: [images] }))[0]!];
    for (const t of steps) got.push((await engine.step([t]))[0]!);
    return got;
  } finally {
    await engine.release();
  }
}

function decoder(dir: string) {
  return decodeOnnxModel(fs.readFileSync(path.join(dir, "decoder.onnx")));
}

const cases = [
  {
    model: "tiny_llava",
    checkpoint: "llava",
    prompt: [3, 3, 3, 3, 10, 11, 12],
    images: 1,
    attention: "GroupQueryAttention",
  },
  {
    model: "tiny_blip2",
    checkpoint: "blip2",
    prompt: [3, 3, 3, 3, 2, 10, 11],
    images: 1,
    attention: "MultiHeadAttention",
  },
  { model: "tiny_flamingo", checkpoint: "flamingo", prompt: [1, 3, 10, 11, 3, 12], images: 2, attention: "MatMul" },
  // AnyRes: a 56 × 56 image is 5 crops (base + 2 × 2) and 24 feature rows.
  {
    model: "tiny_llava_next",
    checkpoint: "llava_next",
    prompt: [...Array<number>(24).fill(3), 10, 11],
    images: 1,
    attention: "GroupQueryAttention",
  },
] as const;

/** The images of a case: seeded pixels, with AnyRes's crops and the image's size. */
function imagesOf(model: string, count: number) {
  return model === "tiny_llava_next"
    ? { pixels: pixels(5, 7), count, sizes: [[56, 56] as const] }
    : { pixels: pixels(count, 7), count };
}

/**
 * fp16 keeps 11 significant bits (a relative step of 2^-11 ≈ 4.9e-4); weights, activations and
 * the cache each round once per layer. Measured here (largest difference over the prefill and 4
 * steps, relative to the largest fp32 logit), ort-cuda / portable: llava 4.9e-4 / 4.9e-4, blip2
 * 5.9e-4 / 5.8e-4, flamingo 5.3e-4 / 5.2e-4, llava_next (AnyRes) 5.9e-4 / 5.7e-4.
 */
const FP16_TOLERANCE = 2e-3;

describe.each(cases)(
  "$model fp16 package (ort-cuda, run on the CPU provider)",
  ({ model, checkpoint, prompt, images, attention }) => {
    // portable fp16 packages (standard ops, for other GPU runtimes) take the same path through the pass.
    for (const target of ["ort-cuda", "portable"] as const)
      it(`prefill and cached steps equal the fp32 package within fp16 rounding (${target})`, async () => {
        const fp16 = await writePackage(model, checkpoint, { target, precision: "fp16" });
        const fp32 = await writePackage(model, checkpoint, { target: "ort-cpu" });
        const steps = [20n, 21n, 22n, 23n];
        const request = [prompt.map(BigInt), imagesOf(model, images), steps] as const;
        const reduced = await logitsOf(fp16, ...request);
        const full = await logitsOf(fp32, ...request);
        const diffs = reduced.map((l, i) => relativeDiff(l, full[i]!));
        expect(Math.max(...diffs)).toBeLessThan(FP16_TOLERANCE);
        // Not fp32 in disguise: fp16 rounding shows.
        expect(Math.max(...diffs)).toBeGreaterThan(1e-5);
      });

    it(`stores weights and the cache in fp16, attends with ${attention} in fp16, and keeps fp32 for norms and logits`, async () => {
      const dir = await writePackage(model, checkpoint, { target: "ort-cuda", precision: "fp16" });
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, "vlmc-package.json"), "utf8"));
      expect(manifest.cache.dtype).toBe("float16");
      if (model === "tiny_flamingo") expect(manifest.crossCache.dtype).toBe("float16");
      const graph = decoder(dir).graph!;
      const typeOf = new Map<string, number>();
      for (const v of [...graph.input!, ...graph.output!]) typeOf.set(v.name!, v.type!.tensorType!.elemType!);
      for (const t of graph.initializer!) typeOf.set(t.name!, t.dataType!);
      for (const n of graph.node!)
        if (n.opType === "Cast") typeOf.set(n.output![0]!, Number(n.attribute!.find((a) => a.name === "to")!.i));
      // The cache: fp16 in and out (one buffer for past and present with GroupQueryAttention).
      const cache = [...graph.input!, ...graph.output!].filter((v) => /past|present/.test(v.name!));
      expect(cache.length).toBeGreaterThan(0);
      for (const v of cache) expect([v.name, typeOf.get(v.name!)]).toEqual([v.name, FLOAT16]);
      expect(typeOf.get("inputs_embeds")).toBe(FLOAT);
      expect(typeOf.get("logits")).toBe(FLOAT);
      // Every matrix product reads an fp16 weight stored as [in, out]: no Transpose at run time.
      const weights = graph.node!.filter((n) => n.opType === "MatMul").map((n) => n.input![1]!);
      expect(weights.length).toBeGreaterThan(0);
      for (const w of weights.filter((w) => graph.initializer!.some((t) => t.name === w)))
        expect([w, typeOf.get(w)]).toEqual([w, FLOAT16]);
      const stored = new Set(graph.initializer!.map((t) => t.name!));
      expect(graph.node!.filter((n) => n.opType === "Transpose" && stored.has(n.input![0]!))).toEqual([]);
      // The attention op reads the fp16 past directly.
      const attend = graph.node!.filter((n) => n.opType === attention && n.input!.some((i) => /past/.test(i)));
      if (attention !== "MatMul") expect(attend.length).toBe(2);
      for (const n of attend)
        for (const i of n.input!.filter((i) => /past/.test(i))) expect(typeOf.get(i)).toBe(FLOAT16);
      // fp32 work: the norms (kept fp32 for accuracy) and the logits output, nothing else.
      const readers = (name: string) => graph.node!.filter((n) => n.input!.includes(name)).map((n) => n.opType);
      const toFloat = graph.node!.filter((n) => n.opType === "Cast" && typeOf.get(n.output![0]!) === FLOAT);
      for (const c of toFloat) {
        const out = c.output![0]!;
        if (out === "logits" || graph.output!.some((o) => o.name === out)) continue;
        for (const op of readers(out))
          expect(["SimplifiedLayerNormalization", "LayerNormalization", "Add", "Cast"]).toContain(op);
      }
    });
  },
);

describe("GroupQueryAttention over the fp16 cache", () => {
  // The package engine binds each cache buffer as past and present; on the CPU provider the op then
  // writes in place. The CUDA provider copies host tensors to separate device buffers, so there the
  // op reads a full-length past and writes a full-length present: both must give the same logits.
  it("gives the same logits whether past and present share one buffer or not", async () => {
    const dir = await writePackage("tiny_llava", "llava", { target: "ort-cuda", precision: "fp16" });
    const m = JSON.parse(fs.readFileSync(path.join(dir, "vlmc-package.json"), "utf8"));
    const ort = await onnxruntime();
    const session = await createSession(path.join(dir, "decoder.onnx"));
    const dims = [1, m.cache.heads, m.maxLength, m.cache.headDim];
    const size = dims.reduce((a: number, b: number) => a * b, 1);
    const names = Array.from({ length: m.cache.layers }, (_, i) =>
      ["key", "value"].map((kv) => [`past_key_values.${i}.${kv}`, `present.${i}.${kv}`] as const),
    ).flat();
    const steps = [5, 1, 1, 1].map((n, k) =>
      Float32Array.from({ length: n * m.hiddenSize }, (_, i) => Math.sin(i * 0.37 + k) * 0.5),
    );
    const run = async (shared: boolean) => {
      let past: Record<string, Ort.Tensor> = Object.fromEntries(
        names.map(([p]) => [p, new ort.Tensor("float16", new Uint16Array(size), dims)]),
      );
      let total = 0;
      const logits: Float32Array[] = [];
      for (const embeds of steps) {
        const news = embeds.length / m.hiddenSize;
        total += news;
        const feeds = {
          inputs_embeds: new ort.Tensor("float32", embeds, [1, news, m.hiddenSize]),
          attention_mask: new ort.Tensor("int64", new BigInt64Array(total).fill(1n), [1, total]),
          ...past,
        };
        const fetches: Record<string, Ort.Tensor | null> = { logits: null };
        for (const [p, q] of names) fetches[q] = shared ? past[p]! : null;
        const out = await session.run(feeds, fetches);
        const all = out["logits"]!.data as Float32Array;
        logits.push(all.slice(all.length - m.vocabSize));
        if (!shared) past = Object.fromEntries(names.map(([p, q]) => [p, out[q]!]));
      }
      return logits;
    };
    try {
      const inPlace = await run(true);
      const separate = await run(false);
      for (const [i, l] of separate.entries()) expect(Array.from(l)).toEqual(Array.from(inPlace[i]!));
    } finally {
      await session.release();
    }
  });
});

describe("fp16 packages and the generation loop", () => {
  // The tiny LlavaForConditionalGeneration that transformers wrote (test/fixtures/generate/llava).
  const GENERATE = path.resolve(import.meta.dirname, "../../test/fixtures/generate/llava");
  const reference = JSON.parse(fs.readFileSync(path.join(GENERATE, "reference.json"), "utf8")) as {
    cases: { prompt: string; greedy_ids: number[] }[];
  };

  async function greedy(options: Pick<PackageOptions, "target" | "precision">, prompt: string, tokens: number) {
    const out = path.join(temp(), "llava");
    const result = await compilePackage([path.join(GENERATE, "spec.vlm")], { out, weights: [GENERATE], ...options });
    expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const args = ["generate", out, "--image", path.join(GENERATE, "image.png"), "--prompt", prompt, "--json"];
    const cli = captureIo();
    expect(await runCli([...args, "--max-new-tokens", String(tokens)], cli.io)).toBe(0);
    return (JSON.parse(cli.out) as { rows: { tokens: number[] }[] }).rows[0]!.tokens;
  }

  it("tiny LLaVA from transformers: the fp16 package's greedy ids equal transformers' and the fp32 package's", async () => {
    for (const c of reference.cases) {
      // All 28 new tokens the package allows: transformers' reference has the first 12.
      const half = await greedy({ target: "ort-cuda", precision: "fp16" }, c.prompt, 28);
      expect(half.slice(0, c.greedy_ids.length)).toEqual(c.greedy_ids);
      expect(half).toEqual(await greedy({ target: "ort-cpu" }, c.prompt, 28));
    }
  });

  // Where onnxruntime-node's CUDA provider is installed (a GPU machine), this command would run instead.
  const cudaProvider = path.resolve(
    import.meta.dirname,
    "../../node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so",
  );
  it.skipIf(fs.existsSync(cudaProvider))(
    "--provider cuda without the CUDA provider is VLM5020, not a crash",
    async () => {
      const out = path.join(temp(), "llava");
      await compilePackage([path.join(GENERATE, "spec.vlm")], {
        out,
        weights: [GENERATE],
        target: "ort-cuda",
        precision: "fp16",
      });
      const cli = captureIo();
      const args = [
        "generate",
        out,
        "--image",
        path.join(GENERATE, "image.png"),
        "--prompt",
        "Hi",
        "--provider",
        "cuda",
      ];
      expect(await runCli(args, cli.io)).toBe(1);
      expect(cli.err).toMatch(/error VLM5020: .*cuda provider/);
    },
  );

  it("genai_config.json names the CUDA provider; the manifest says float16", async () => {
    const dir = await writePackage("tiny_llava", "llava", { target: "ort-cuda", precision: "fp16" });
    const config = JSON.parse(fs.readFileSync(path.join(dir, "genai_config.json"), "utf8"));
    expect(config.model.decoder.session_options).toEqual({ provider_options: [{ cuda: {} }] });
    expect(config.search.past_present_share_buffer).toBe(true);
  });
});

describe("int4 weights in an fp16 package", () => {
  it("MatMulNBits takes fp16 activations and scales, and the logits stay close to fp32", async () => {
    const int4 = path.join(temp(), "int4");
    const result = await compilePackage([SPEC], {
      model: "tiny_llava",
      out: int4,
      checkpoint: path.join(FIXTURES, "llava"),
      target: "ort-cuda",
      precision: "fp16",
      quantize: "int4",
    });
    expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const graph = decoder(int4).graph!;
    const stored = new Map(graph.initializer!.map((t) => [t.name!, t.dataType!]));
    const products = graph.node!.filter((n) => n.opType === "MatMulNBits");
    expect(products.length).toBe(15); // 2 layers × 7 projections + the head
    for (const n of products) expect(stored.get(n.input![2]!)).toBe(FLOAT16);
    const fp32 = await writePackage("tiny_llava", "llava", { target: "ort-cpu" });
    const request = [[3n, 3n, 3n, 3n, 10n, 11n], { pixels: pixels(1, 7), count: 1 }, [20n, 21n]] as const;
    const full = await logitsOf(fp32, ...request);
    for (const [i, q] of (await logitsOf(int4, ...request)).entries()) {
      const dot = q.reduce((a, v, j) => a + v * full[i]![j]!, 0);
      const norm = (x: Float32Array) => Math.sqrt(x.reduce((a, v) => a + v * v, 0));
      expect(dot / (norm(q) * norm(full[i]!))).toBeGreaterThan(0.99);
    }
  });
});

describe("a precision policy instead of --precision", () => {
  it("`policy llm { precision: fp16 }` makes the decoder and its cache fp16; vlmc summary counts 2 bytes a value", async () => {
    const spec = path.join(temp(), "policy.vlm");
    // tiny_llava's package is the first in the file; the policy goes into that model.
    fs.writeFileSync(
      spec,
      fs.readFileSync(SPEC, "utf8").replace("  package {", "  policy llm { precision: fp16 }\n\n  package {"),
    );
    const checked = elaborate([spec]);
    const llava = checked.models.find((m) => m.module?.name === "tiny_llava")!;
    const cache = summarize(llava.module!, llava.tokens).package!.cache;
    // 2 layers × (key + value) × 2 kv heads × 16 × 2 bytes.
    expect([cache.bytesPerToken, cache.dtype]).toEqual([2 * 2 * 2 * 16 * 2, "fp16"]);
    const out = path.join(temp(), "pkg");
    const result = await compilePackage([spec], {
      model: "tiny_llava",
      out,
      checkpoint: path.join(FIXTURES, "llava"),
      target: "ort-cuda",
    });
    expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    expect(result.manifest?.cache.dtype).toBe("float16");
    // The decoder's own ops (residual adds included) follow its policy: the same decoder as --precision fp16 makes.
    const ops = (dir: string) => decoder(dir).graph!.node!.map((n) => n.opType);
    const flag = await writePackage("tiny_llava", "llava", { target: "ort-cuda", precision: "fp16" });
    expect(ops(out)).toEqual(ops(flag));
    expect(ops(out).filter((op) => op === "GroupQueryAttention").length).toBe(2);
  });
});

describe("reduced-precision packages that cannot be built", () => {
  it("refuses bf16 (onnxruntime-node has no bfloat16 tensors for the cache) and fp16 on ort-cpu", async () => {
    const bf16 = await compilePackage([SPEC], {
      model: "tiny_llava",
      out: path.join(temp(), "bf16"),
      checkpoint: path.join(FIXTURES, "llava"),
      target: "ort-cuda",
      precision: "bf16",
    });
    expect(bf16.diagnostics.map((d) => d.code)).toEqual(["VLM3203"]);
    expect(bf16.dir).toBeUndefined();
    const cpu = await compilePackage([SPEC], {
      model: "tiny_llava",
      out: path.join(temp(), "cpu"),
      checkpoint: path.join(FIXTURES, "llava"),
      target: "ort-cpu",
      precision: "fp16",
    });
    expect(cpu.diagnostics.map((d) => d.code)).toEqual(["VLM2013"]);
    expect(cpu.dir).toBeUndefined();
  });
});

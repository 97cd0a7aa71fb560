// Numerical tests of quantization: tiny LLaMA, ViT and BERT from std, compiled quantized for
// ort-cpu, portable and ort-cuda (whose kernels ONNX Runtime also has on CPU) and checked by the
// verifier against the unoptimized fp32 graph, with the default seeded weights (cosine ≥ 0.99) and
// with a random checkpoint whose layers matter (weights ~ N(0, 1/fan_in); floors below). Also: the
// written tensors are exactly quant-math applied to the checkpoint's values, no float copy of a
// quantized weight ships, and the bytes are deterministic.
// VLMC_QUANT_REPORT=1 prints the measured errors.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { elaborate } from "../../driver/check.js";
import { compile, type CompileOptions } from "../../driver/compile.js";
import { Rng } from "../../numerics/rng.js";
import { decodeOnnxModel } from "../../onnx/onnx-writer.js";
import { writeSafetensors } from "../../codegen/safetensors.js";
import { verifyCompiled } from "../../driver/verify.js";
import { quantizeInt4Blockwise, quantizeInt8PerChannel } from "../../numerics/quant-math.js";

/** One spec per model, so each has a checkpoint of its own (loading is strict). */
const SPECS: Readonly<Record<string, string>> = {
  tiny_llama: `model tiny_llama {
  encoder llm = llama(vocab: 128, width: 64, depth: 2, heads: 4, kv_heads: 2, mlp: 128, context: 64) frozen
  forward(ids: i64[B, T <= 32]) {
    return logits: llm(llm.embed_tokens(ids))
  }
}`,
  tiny_vit: `model tiny_vit {
  encoder vision = vit(image: 32, patch: 8, width: 64, depth: 2, num_heads: 4, mlp: 128, classes: 0) frozen
  forward(pixels: f32[B, 3, 32, 32]) {
    return feats: vision(pixels)
  }
}`,
  tiny_bert: `model tiny_bert {
  encoder text = bert(vocab: 128, width: 64, depth: 2, heads: 4, ffn: 128, positions: 64, add_pooling_layer: false) frozen
  forward(ids: i64[B, T <= 32]) {
    return hidden: text(ids)
  }
}`,
};

const folders: string[] = [];
const figures: string[] = [];
afterAll(() => {
  for (const dir of folders.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  if (process.env["VLMC_QUANT_REPORT"]) console.log(`quantized vs fp32 (unoptimized, portable)\n${figures.join("\n")}`);
});

/** A model's spec and checkpoint: matrices N(0, 1/fan_in), norm scales 1 + 0.1·N, biases and tokens 0.5·N. */
function setup(model: string): { spec: string; weights: string; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vlmc-quant-"));
  folders.push(dir);
  const spec = path.join(dir, `${model}.vlm`);
  fs.writeFileSync(spec, `import { vit, llama, bert } from "std"\n\n${SPECS[model]}\n`);
  const rng = new Rng(5);
  const params = elaborate([spec]).models.flatMap((m) => m.module!.params);
  const weights = path.join(dir, "weights.safetensors");
  writeSafetensors(
    weights,
    params.map((p) => {
      const shape = p.type.shape as number[];
      const n = shape.reduce((a, b) => a * b, 1);
      const fanIn = shape.length >= 2 ? n / shape[0]! : 1;
      const draw =
        shape.length >= 2 && !p.name.includes("token") && !p.name.includes("pos")
          ? () => rng.normal() / Math.sqrt(fanIn)
          : p.name.endsWith("weight")
            ? () => 1 + 0.1 * rng.normal()
            : () => 0.5 * rng.normal();
      return { name: p.name, dtype: "F32" as const, shape, data: Float32Array.from({ length: n }, draw) };
    }),
  );
  return { spec, weights, dir };
}

const fixtures = Object.fromEntries(Object.keys(SPECS).map((m) => [m, setup(m)]));

/** Compiles a model with the given options (its checkpoint only when they name it). */
async function quantizedCompile(model: string, options: CompileOptions, tag: string) {
  const { spec, dir } = fixtures[model]!;
  const result = await compile([spec], { out: path.join(dir, tag), verifyIr: true, ...options });
  expect(result.diagnostics.filter((d) => d.severity === "error").map((d) => `${d.code} ${d.message}`)).toEqual([]);
  return result;
}

function opsOf(file: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of decodeOnnxModel(fs.readFileSync(file)).graph!.node!) counts[n.opType!] = (counts[n.opType!] ?? 0) + 1;
  return counts;
}

describe("quantized tiny models against fp32", () => {
  const cases: [string, CompileOptions, string][] = [
    ["int8 ort-cpu", { quantize: "int8", target: "ort-cpu" }, "DynamicQuantizeMatMul"],
    ["int4 ort-cpu", { quantize: "int4", target: "ort-cpu" }, "MatMulNBits"],
    ["int8 portable", { quantize: "int8", target: "portable" }, "DequantizeLinear"],
    ["int4 ort-cuda", { quantize: "int4", target: "ort-cuda" }, "MatMulNBits"],
  ];
  // LLaMA: 7 matrices a layer and lm_head; ViT: the packed in_proj, out_proj and 2 MLP; BERT: 6 a layer.
  const matrices: Record<string, number> = { tiny_llama: 15, tiny_vit: 8, tiny_bert: 12 };
  /**
   * The least cosine with the N(0, 1/fan_in) checkpoint. Its layers change the residual stream as
   * much as trained ones do, so 4-bit error compounds: through LLaMA's 15 matrices (SwiGLU
   * multiplies two quantized products, and lm_head is quantized too) block-32 int4 measures 0.982.
   */
  const checkpointFloor = (mode: string, model: string): number =>
    mode === "int8" ? 0.999 : model === "tiny_llama" ? 0.975 : 0.99;

  for (const [name, options, op] of cases) {
    for (const model of Object.keys(SPECS)) {
      for (const weights of ["seeded", "checkpoint"] as const) {
        const floor = weights === "seeded" ? 0.99 : checkpointFloor(options.quantize!, model);
        it(`${name} ${model}, ${weights} weights: cosine ≥ ${floor} to the unoptimized fp32 model`, async () => {
          const { spec, weights: file } = fixtures[model]!;
          const given = weights === "checkpoint" ? { weights: file } : {};
          const result = await quantizedCompile(
            model,
            { ...options, ...given },
            `${name}-${weights}`.replace(" ", "-"),
          );
          expect(opsOf(result.files[0]!.path)[op]).toBe(matrices[model]);
          const report = await verifyCompiled([spec], given, result);
          expect(report.diagnostics).toEqual([]);
          expect(report.comparisons).toHaveLength(1);
          const c = report.comparisons[0]!;
          figures.push(
            `${name.padEnd(14)} ${model.padEnd(11)} ${weights.padEnd(10)} cosine ${c.cosine.toFixed(6)}  max abs ${c.maxAbsError.toExponential(2)}  scale ${c.scale.toFixed(3)}  rel ${c.relativeError.toExponential(2)}`,
          );
          expect(c.metric).toBe("cosine");
          expect(c.cosine).toBeGreaterThanOrEqual(floor);
          // The verifier's own verdict uses its default threshold, 0.99.
          expect(report.ok).toBe(c.cosine >= 0.99);
        });
      }
    }
  }

  it("writes exactly quant-math's tensors of the checkpoint's values, and no float copy of them", async () => {
    const [int8, int4] = await Promise.all([
      quantizedCompile(
        "tiny_llama",
        { quantize: "int8", target: "ort-cpu", weights: fixtures["tiny_llama"]!.weights },
        "exact-int8",
      ),
      quantizedCompile(
        "tiny_llama",
        { quantize: "int4", target: "ort-cpu", weights: fixtures["tiny_llama"]!.weights },
        "exact-int4",
      ),
    ]);
    const checkpoint = new Map<string, Float32Array>();
    {
      const { openSafetensors } = await import("../../codegen/safetensors.js");
      const file = openSafetensors(fixtures["tiny_llama"]!.weights);
      for (const key of ["llm.layers.0.mlp.down_proj.weight", "llm.layers.1.self_attn.k_proj.weight"])
        checkpoint.set(key, file.readFloat32(key));
      file.close();
    }
    const tensors = (f: string) =>
      new Map(decodeOnnxModel(fs.readFileSync(f)).graph!.initializer!.map((t) => [t.name!, t]));
    const t8 = tensors(int8.files[0]!.path);
    const t4 = tensors(int4.files[0]!.path);
    for (const t of [t8, t4])
      expect([...t.keys()].filter((k) => /_proj\.weight$|lm_head\.weight$/.test(k))).toEqual([]);

    // down_proj: [out 64, in 128] → K = 128, N = 64.
    const down = quantizeInt8PerChannel(checkpoint.get("llm.layers.0.mlp.down_proj.weight")!, "out_in", 128, 64);
    const codes = t8.get("llm.layers.0.mlp.down_proj.weight.int8")!;
    expect(codes.dims!.map(Number)).toEqual([128, 64]);
    expect(Buffer.from(codes.rawData!).equals(Buffer.from(down.q.buffer))).toBe(true);
    expect(
      Buffer.from(t8.get("llm.layers.0.mlp.down_proj.weight.int8_scale")!.rawData!).equals(
        Buffer.from(down.scales.buffer),
      ),
    ).toBe(true);

    // k_proj: [out 32 (2 kv heads × 16), in 64] → K = 64, N = 32, two blocks of 32.
    const k = quantizeInt4Blockwise(checkpoint.get("llm.layers.1.self_attn.k_proj.weight")!, "out_in", 64, 32, 32);
    const packed = t4.get("llm.layers.1.self_attn.k_proj.weight.int4_b32")!;
    expect(packed.dims!.map(Number)).toEqual([32, 2, 16]);
    expect(Buffer.from(packed.rawData!).equals(Buffer.from(k.packed))).toBe(true);
    expect(
      Buffer.from(t4.get("llm.layers.1.self_attn.k_proj.weight.int4_b32_scale")!.rawData!).equals(
        Buffer.from(k.scales.buffer),
      ),
    ).toBe(true);
  });

  it("--int4-block 64: MatMulNBits of block 64 holding quant-math's tensors, within the fp32 model's cosine floor", async () => {
    const { spec, weights } = fixtures["tiny_llama"]!;
    const options: CompileOptions = { quantize: "int4", target: "ort-cpu", weights, int4Block: 64 };
    const result = await quantizedCompile("tiny_llama", options, "block-64");
    const graph = decodeOnnxModel(fs.readFileSync(result.files[0]!.path)).graph!;
    const blocks = graph
      .node!.filter((n) => n.opType === "MatMulNBits")
      .map((n) => n.attribute!.find((a) => a.name === "block_size")!.i);
    expect(blocks.map(Number)).toEqual(new Array(15).fill(64));
    const { openSafetensors } = await import("../../codegen/safetensors.js");
    const file = openSafetensors(weights);
    const values = file.readFloat32("llm.layers.0.mlp.down_proj.weight");
    file.close();
    // down_proj: K = 128, N = 64 → two blocks of 64 per column.
    const down = quantizeInt4Blockwise(values, "out_in", 128, 64, 64);
    const packed = graph.initializer!.find((t) => t.name === "llm.layers.0.mlp.down_proj.weight.int4_b64")!;
    expect(packed.dims!.map(Number)).toEqual([64, 2, 32]);
    expect(Buffer.from(packed.rawData!).equals(Buffer.from(down.packed))).toBe(true);
    const report = await verifyCompiled([spec], { weights }, result);
    expect(report.comparisons[0]!.cosine).toBeGreaterThanOrEqual(checkpointFloor("int4", "tiny_llama"));
  });

  it("compiles the same bytes twice", async () => {
    const a = await quantizedCompile("tiny_vit", { quantize: "int4", target: "ort-cpu" }, "det-a");
    const b = await quantizedCompile("tiny_vit", { quantize: "int4", target: "ort-cpu" }, "det-b");
    expect(fs.readFileSync(a.files[0]!.path).equals(fs.readFileSync(b.files[0]!.path))).toBe(true);
  });
});

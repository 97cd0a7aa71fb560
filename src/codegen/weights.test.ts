// Tests of checkpoint loading through compile(): values land in the initializers (Linear weights
// transposed) and in the outputs; strictness reports missing, unexpected and mis-shaped tensors.

import fs from "node:fs";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { tempFolders } from "../../test/temp-folders.js";
import { compile } from "../driver/compile.js";
import { decodeOnnxModel } from "../onnx/onnx-writer.js";
import { writeSafetensors, type SafetensorsTensorInput } from "./safetensors.js";
import { parseWeightSpec } from "./weights.js";

const tempFolder = tempFolders("vlmc-weights-");

const SPEC = `model m {
  encoder vision = linear(3, 2)
  bn = batch_norm(2)
  forward(x: f32[B, 3]) {
    return y: bn(unsqueeze(vision(x), 2))
  }
}
`;

/** A full checkpoint of SPEC: vision.weight [[1,2,3],[4,5,6]], bias [0.5,-0.5], BN statistics. */
function tensors(prefix = ""): SafetensorsTensorInput[] {
  const t = (
    name: string,
    shape: number[],
    values: number[],
    dtype: "F32" | "F16" | "BF16" = "F32",
  ): SafetensorsTensorInput => ({ name: prefix + name, dtype, shape, data: Float32Array.from(values) });
  return [
    t("vision.weight", [2, 3], [1, 2, 3, 4, 5, 6]),
    t("vision.bias", [2], [0.5, -0.5], "F16"),
    t("bn.weight", [2], [2, 3], "BF16"),
    t("bn.bias", [2], [0.25, 0]),
    t("bn.running_mean", [2], [1, -1]),
    t("bn.running_var", [2], [4, 0.25]),
    { name: prefix + "bn.num_batches_tracked", dtype: "I64", shape: [], data: new Uint8Array(8) },
  ];
}

function setup(text = SPEC): { dir: string; spec: string } {
  const dir = tempFolder();
  const spec = path.join(dir, "m.vlm");
  fs.writeFileSync(spec, text);
  return { dir, spec };
}

async function compileWith(spec: string, dir: string, weights: string | string[]) {
  return compile([spec], { out: path.join(dir, "m.onnx"), weights });
}

function codes(result: { diagnostics: readonly { code: string }[] }): string[] {
  return result.diagnostics.map((d) => d.code);
}

describe("weights", () => {
  it("load into the initializers and give the outputs PyTorch would", async () => {
    const { dir, spec } = setup();
    const file = path.join(dir, "w.safetensors");
    writeSafetensors(file, tensors());
    const result = await compileWith(spec, dir, file);
    expect(result.diagnostics).toEqual([]);

    const model = decodeOnnxModel(fs.readFileSync(path.join(dir, "m.onnx")));
    const init = new Map(
      model.graph!.initializer!.map((t) => [
        t.name!,
        { dims: t.dims!.map(Number), values: [...new Float32Array(Uint8Array.from(t.rawData!).buffer)] },
      ]),
    );
    // Stored transposed, [in, out], under the parameter's name.
    expect(init.get("vision.weight")).toEqual({ dims: [3, 2], values: [1, 4, 2, 5, 3, 6] });
    expect(init.get("bn.running_var")).toEqual({ dims: [2], values: [4, 0.25] });

    const session = await ort.InferenceSession.create(path.join(dir, "m.onnx"));
    const out = await session.run({ x: new ort.Tensor("float32", Float32Array.from([1, 0, -1]), [1, 3]) });
    await session.release();
    // linear: [1-3+0.5, 4-6-0.5] = [-1.5, -2.5]; batch norm: (v - mean) / sqrt(var + 1e-5) * w + b.
    const expected = [((-1.5 - 1) / Math.sqrt(4 + 1e-5)) * 2 + 0.25, ((-2.5 + 1) / Math.sqrt(0.25 + 1e-5)) * 3];
    [...(out["y"]!.data as Float32Array)].forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
  });

  it("report missing, unexpected and mis-shaped tensors by name", async () => {
    const { dir, spec } = setup();
    const file = path.join(dir, "w.safetensors");
    const bad = tensors().filter((t) => t.name !== "bn.bias");
    bad[0] = { ...bad[0]!, shape: [3, 2] };
    bad.push({ name: "extra.weight", dtype: "F32", shape: [1], data: Float32Array.from([0]) });
    writeSafetensors(file, bad);
    const result = await compileWith(spec, dir, file);
    expect(codes(result)).toEqual(["VLM4002", "VLM4003", "VLM4004"]);
    expect(result.diagnostics[0]!.message).toContain("lacks 1 weight: bn.bias");
    expect(result.diagnostics[1]!.message).toContain("extra.weight");
    expect(result.diagnostics[2]!.message).toContain("vision.weight: file [3, 2], model [2, 3]");
    expect(result.files).toEqual([]);
  });

  it("skip the derived buffers Hugging Face checkpoints store, but only in their own form", async () => {
    const { dir, spec } = setup();
    const file = path.join(dir, "w.safetensors");
    const buffers: SafetensorsTensorInput[] = [
      { name: "text_model.embeddings.position_ids", dtype: "I64", shape: [1, 2], data: new Uint8Array(16) },
      { name: "embeddings.token_type_ids", dtype: "I64", shape: [1, 2], data: new Uint8Array(16) },
      { name: "h.0.attn.bias", dtype: "U8", shape: [1, 1, 2, 2], data: Uint8Array.from([1, 0, 1, 1]) },
      { name: "h.0.attn.masked_bias", dtype: "F32", shape: [], data: Float32Array.from([-1e4]) },
      { name: "layers.0.self_attn.rotary_emb.inv_freq", dtype: "F32", shape: [2], data: Float32Array.from([1, 0.01]) },
    ];
    writeSafetensors(file, [...tensors(), ...buffers]);
    expect((await compileWith(spec, dir, file)).diagnostics).toEqual([]);

    // A float position_ids or a 1-D attn.bias is a weight the model lacks, not a derived buffer.
    const weights: SafetensorsTensorInput[] = [
      { name: "embeddings.position_ids", dtype: "F32", shape: [2], data: Float32Array.from([0, 1]) },
      { name: "h.0.attn.bias", dtype: "F32", shape: [2], data: Float32Array.from([0, 1]) },
    ];
    writeSafetensors(file, [...tensors(), ...weights]);
    const result = await compileWith(spec, dir, file);
    expect(codes(result)).toEqual(["VLM4003"]);
    expect(result.diagnostics[0]!.message).toContain("embeddings.position_ids, h.0.attn.bias");
  });

  it("list at most ten names, then a count", async () => {
    const { dir, spec } = setup();
    const file = path.join(dir, "w.safetensors");
    writeSafetensors(file, [
      ...tensors(),
      ...Array.from({ length: 12 }, (_, i) => ({
        name: `stray.${String(i).padStart(2, "0")}`,
        dtype: "F32" as const,
        shape: [1],
        data: Float32Array.from([0]),
      })),
    ]);
    const result = await compileWith(spec, dir, file);
    expect(result.diagnostics.map((d) => d.message)).toEqual([
      expect.stringMatching(/has 12 tensors the model does not declare: stray\.00, .*, stray\.09 \(and 2 more\)$/),
    ]);
  });

  it("report unreadable files with the reason, and non-float tensors", async () => {
    const { dir, spec } = setup();
    const garbage = path.join(dir, "bad.safetensors");
    fs.writeFileSync(garbage, "nope");
    const bad = await compileWith(spec, dir, garbage);
    expect(codes(bad)).toEqual(["VLM4001"]);
    expect(bad.diagnostics[0]!.message).toContain("(too-small)");
    expect(codes(await compileWith(spec, dir, path.join(dir, "absent.safetensors")))).toEqual(["VLM4001"]);

    const ints = path.join(dir, "ints.safetensors");
    writeSafetensors(
      ints,
      tensors().map((t) =>
        t.name === "bn.bias" ? { name: t.name, dtype: "I32", shape: [2], data: new Uint8Array(8) } : t,
      ),
    );
    expect(codes(await compileWith(spec, dir, ints))).toEqual(["VLM4005"]);
  });

  it("load a component from COMPONENT=PATH, keyed without the component's name", async () => {
    const { dir, spec } = setup();
    const file = path.join(dir, "vision.safetensors");
    writeSafetensors(
      file,
      tensors()
        .filter((t) => t.name.startsWith("vision."))
        .map((t) => ({ ...t, name: t.name.slice("vision.".length) })),
    );
    expect((await compileWith(spec, dir, `vision=${file}`)).diagnostics).toEqual([]);
    expect(codes(await compileWith(spec, dir, `text=${file}`))).toEqual(["VLM2001"]);
  });

  it("follow the model's own `weights` declaration, whose prefix selects part of a larger checkpoint", async () => {
    const { dir, spec } = setup(
      SPEC.replace("model m {", `model m {\n  weights vision from "clip.safetensors" prefix "vision_model."`),
    );
    writeSafetensors(path.join(dir, "clip.safetensors"), [
      { name: "vision_model.weight", dtype: "F32", shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
      { name: "vision_model.bias", dtype: "F32", shape: [2], data: Float32Array.from([0, 0]) },
      { name: "text_model.weight", dtype: "F32", shape: [7], data: new Float32Array(7) },
    ]);
    const result = await compile([spec], { out: path.join(dir, "m.onnx") });
    expect(result.diagnostics).toEqual([]);
    const model = decodeOnnxModel(fs.readFileSync(path.join(dir, "m.onnx")));
    const weight = model.graph!.initializer!.find((t) => t.name === "vision.weight")!;
    expect([...new Float32Array(Uint8Array.from(weight.rawData!).buffer)]).toEqual([1, 4, 2, 5, 3, 6]);
  });
});

describe("parseWeightSpec", () => {
  it("takes COMPONENT=PATH only when the left side is an identifier", () => {
    expect(parseWeightSpec("vision=a.safetensors")).toEqual({
      component: "vision",
      path: "a.safetensors",
      rules: [],
    });
    expect(parseWeightSpec("/data/run=3/a.safetensors")).toEqual({
      component: undefined,
      path: "/data/run=3/a.safetensors",
      rules: [],
    });
  });
});

describe("checkpoint folders and key maps", () => {
  // A LLaMA-shaped component: HF keeps all but the head under `model.`.
  const LM = `model m {
  encoder llm = lm()
  forward(x: f32[B, 2]) {
    return y: llm(x)
  }
  WEIGHTS
}
block lm() {
  embed = linear(2, 2, bias: false)
  lm_head = linear(2, 2, bias: false)
  forward(x) {
    return lm_head(embed(x))
  }
}
`;
  const t = (name: string, values = [1, 0, 0, 1]): SafetensorsTensorInput => ({
    name,
    dtype: "F32",
    shape: [2, 2],
    data: Float32Array.from(values),
  });

  async function run(weightsClause: string, files: Record<string, SafetensorsTensorInput[]>, cli?: string[]) {
    const { dir, spec } = setup(LM.replace("WEIGHTS", weightsClause));
    const ckpt = path.join(dir, "ckpt");
    fs.mkdirSync(ckpt);
    for (const [file, ts] of Object.entries(files)) writeSafetensors(path.join(ckpt, file), ts);
    const result = await compileWith(spec, dir, cli?.map((c) => c.replace("DIR", ckpt)) ?? []);
    if (result.diagnostics.length > 0 || !fs.existsSync(path.join(dir, "m.onnx"))) return { result, y: undefined };
    const session = await ort.InferenceSession.create(path.join(dir, "m.onnx"));
    const out = await session.run({ x: new ort.Tensor("float32", Float32Array.from([1, 2]), [1, 2]) });
    await session.release();
    return { result, y: [...(out["y"]!.data as Float32Array)] };
  }

  it("drop a level and keep another: HF LLaMA's `model.` prefix and its top-level lm_head", async () => {
    const files = { "model.safetensors": [t("model.embed.weight", [0, 1, 1, 0]), t("lm_head.weight", [2, 0, 0, 3])] };
    const declared = await run('weights llm from "ckpt" { "model.": "", "lm_head.": "lm_head." }', files);
    expect(declared.result.diagnostics).toEqual([]);
    expect(declared.y).toEqual([4, 3]); // embed swaps (1, 2) → (2, 1); the head scales by (2, 3)
    // A layout declaration takes its path from --weights.
    const layout = await run('weights llm { "model.": "", "lm_head.": "lm_head." }', files, ["DIR"]);
    expect(layout.y).toEqual([4, 3]);
    // Without the map the same folder is reported: keys under `model.` are not the model's names.
    const plain = await run("", files, ["llm=DIR"]);
    expect(codes(plain.result)).toEqual(expect.arrayContaining(["VLM4002", "VLM4003"]));
    expect(plain.result.diagnostics.find((d) => d.code === "VLM4002")!.hint).toMatch(/"model\.": ""/);
  });

  it("fill a tied head absent from the file from its embeddings, and skip keys mapped to none", async () => {
    const tied = await run(
      'weights llm { "model.": "", "rotary.": none, tie "lm_head.weight" = "embed.weight" }',
      { "model.safetensors": [t("model.embed.weight", [0, 1, 1, 0]), t("rotary.cache", [9, 9, 9, 9])] },
      ["DIR"],
    );
    expect(tied.result.diagnostics).toEqual([]);
    expect(tied.y).toEqual([1, 2]); // swapped twice
    // A file that stores the head (untied) uses it.
    const untied = await run(
      'weights llm { "model.": "", "lm_head.": "lm_head.", tie "lm_head.weight" = "embed.weight" }',
      { "model.safetensors": [t("model.embed.weight", [0, 1, 1, 0]), t("lm_head.weight", [2, 0, 0, 3])] },
      ["DIR"],
    );
    expect(untied.y).toEqual([4, 3]);
    const unknown = await run(
      'weights llm { "model.": "", tie "head.weight" = "embed.weight" }',
      {
        "model.safetensors": [t("model.embed.weight"), t("model.lm_head.weight")],
      },
      ["DIR"],
    );
    expect(codes(unknown.result)).toEqual(["VLM4208"]);
    expect(unknown.result.diagnostics[0]!.span).toBeDefined();
  });

  it("load both layouts of one checkpoint with one map; two keys for one parameter are refused", async () => {
    const map = 'weights llm { "model.": "", "model.inner.": "", "lm_head.": "lm_head." }';
    const deep = await run(map, { "model.safetensors": [t("model.inner.embed.weight"), t("lm_head.weight")] }, ["DIR"]);
    expect(deep.result.diagnostics).toEqual([]);
    const both = await run(
      map,
      { "model.safetensors": [t("model.inner.embed.weight"), t("model.embed.weight"), t("lm_head.weight")] },
      ["DIR"],
    );
    expect(codes(both.result)).toEqual(["VLM4207"]);
  });

  it("read a sharded folder through its index", async () => {
    const dir = tempFolder();
    writeSafetensors(path.join(dir, "model-00001-of-00002.safetensors"), [t("model.embed.weight", [0, 1, 1, 0])]);
    writeSafetensors(path.join(dir, "model-00002-of-00002.safetensors"), [t("lm_head.weight", [2, 0, 0, 3])]);
    fs.writeFileSync(
      path.join(dir, "model.safetensors.index.json"),
      JSON.stringify({
        weight_map: {
          "model.embed.weight": "model-00001-of-00002.safetensors",
          "lm_head.weight": "model-00002-of-00002.safetensors",
        },
      }),
    );
    const { result, y } = await run('weights llm { "model.": "", "lm_head.": "lm_head." }', {}, [`llm=${dir}`]);
    expect(result.diagnostics).toEqual([]);
    expect(y).toEqual([4, 3]);
  });

  it("compare config.json with the spec and name both values at the component", async () => {
    const spec = `import { llama } from "std"
model m {
  encoder llm = llama(vocab: 8, width: 4, depth: 1, heads: 2, mlp: 8)
  forward(x: f32[B, T, 4]) {
    return y: llm(x)
  }
}
`;
    const { dir, spec: file } = setup(spec);
    const ckpt = path.join(dir, "ckpt");
    fs.mkdirSync(ckpt);
    writeSafetensors(path.join(ckpt, "model.safetensors"), [t("x")]);
    fs.writeFileSync(
      path.join(ckpt, "config.json"),
      JSON.stringify({
        model_type: "llama",
        hidden_size: 4,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        vocab_size: 8,
      }),
    );
    const result = await compileWith(file, dir, `llm=${ckpt}`);
    const mismatch = result.diagnostics.filter((d) => d.code === "VLM4206");
    expect(mismatch).toHaveLength(1);
    expect(mismatch[0]!.message).toMatch(/num_hidden_layers = 2.*depth: 1/);
    expect(spec.slice(mismatch[0]!.span!.start, mismatch[0]!.span!.end)).toMatch(/^encoder llm = llama/);
    expect(fs.existsSync(path.join(dir, "m.onnx"))).toBe(false);
  });
});

describe("config.json and the components a source loads", () => {
  it("compares only the components the source covers", async () => {
    const spec = `import { llama } from "std"
model m {
  encoder a = linear(4, 4)
  encoder llm = llama(vocab: 8, width: 4, depth: 1, heads: 2, mlp: 8)
  forward(x: f32[B, T, 4]) {
    return y: llm(a(x))
  }
}
`;
    const { dir, spec: file } = setup(spec);
    const ckpt = path.join(dir, "ckpt");
    fs.mkdirSync(ckpt);
    const w = (name: string, shape: number[]): SafetensorsTensorInput => ({
      name,
      dtype: "F32",
      shape,
      data: new Float32Array(shape.reduce((x, y) => x * y, 1)),
    });
    writeSafetensors(path.join(ckpt, "model.safetensors"), [w("weight", [4, 4]), w("bias", [4])]);
    // A config whose language model differs from the spec's: read for component `a` only, it is not compared.
    fs.writeFileSync(
      path.join(ckpt, "config.json"),
      JSON.stringify({ text_config: { model_type: "llama", hidden_size: 4, num_hidden_layers: 7 } }),
    );
    expect(codes(await compileWith(file, dir, `a=${ckpt}`)).filter((c) => c.startsWith("VLM4"))).toEqual([]);
    // Read for the whole model, it is.
    expect(codes(await compileWith(file, dir, ckpt))).toContain("VLM4206");
  });
});

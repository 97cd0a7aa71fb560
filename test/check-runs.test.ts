// The cases of "what `check` accepts runs; what `--verify` and `run` say is true", each as a user
// met it: masks that broadcast against neither 1 nor the heads, T5 with too few buckets, a one-
// element output off by a few percent that the cosine passed, `vlmc run` with sizes past a bound or
// fixed by one given input, and `--quantize` on a model with nothing frozen.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../src/cli/main.js";
import { check } from "../src/driver/check.js";
import { compile } from "../src/driver/compile.js";
import { verifyCompiled } from "../src/driver/verify.js";
import { writeNpy } from "../src/runtime/npy.js";
import { tempFolders } from "./temp-folders.js";
import { captureIo } from "./helpers/capture-io.js";

const tempFolder = tempFolders("vlmc-check-runs-");

function write(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

/** Code and line (in `file`) of each error `check` reports, and of the notes that lead back to `file`. */
function errors(file: string): { code: string; line: number | undefined; notes: number[] }[] {
  const result = check([file]);
  const line = (offset: number, at: string) => result.sources(at)?.position(offset).line;
  return result.diagnostics
    .filter((d) => d.severity === "error")
    .map((d) => ({
      code: d.code,
      line: d.span?.file === file ? line(d.span.start, file) : undefined,
      notes: (d.related ?? []).filter((r) => r.span.file === file).map((r) => line(r.span.start, file)!),
    }));
}

const attention = (input: string, mask: string) => `model m {
  encoder q = linear(8, 8)
  forward(x: ${input}, mask: ${mask}) {
    h = q(x)
    return y: attention(h, h, h, heads: 2, mask: mask)
  }
}
`;

describe("check rejects what onnxruntime would", () => {
  it("a mask whose head axis is neither 1 nor the number of heads (VLM2200 at the call)", () => {
    const file = write(tempFolder(), "heads.vlm", attention("f32[B, T <= 16, 8]", "f32[B, 1000, 1, T]"));
    expect(errors(file)).toEqual([{ code: "VLM2200", line: 5, notes: [] }]);
  });

  it("a mask whose query axis is neither 1 nor the query length", () => {
    const file = write(tempFolder(), "queries.vlm", attention("f32[B, 1, 8]", "f32[B, 1, 2, 1]"));
    expect(errors(file)).toEqual([{ code: "VLM2200", line: 5, notes: [] }]);
  });

  it("masks that broadcast still check clean", () => {
    for (const mask of ["f32[B, 1, 1, T]", "f32[B, 2, T, T]", "f32[1, T]", "bool[T, T]"])
      expect(errors(write(tempFolder(), "ok.vlm", attention("f32[B, T <= 16, 8]", mask))), mask).toEqual([]);
  });

  it("T5 with 2 buckets: VLM2202 (not an internal error), with a note at the user's line", () => {
    const file = write(
      tempFolder(),
      "t5.vlm",
      `import { t5 } from "std"
model m {
  encoder lm = t5(vocab: 16, width: 8, depth: 1, heads: 2, head_dim: 4, mlp: 16, buckets: 2, max_distance: 8)
  forward(e: f32[B, 6, 8], d: f32[B, 4, 8]) {
    return y: lm(e, d)
  }
}
`,
    );
    expect(errors(file)).toEqual([{ code: "VLM2202", line: undefined, notes: [5] }]);
  });
});

describe("--verify fails what is off", () => {
  // A frozen encoder (quantized by --quantize) and a one-element output; the planted version
  // scales that output, and is compared against the reference built from the unplanted spec.
  const spec = (factor: string) => `model tiny {
  encoder e = linear(16, 16) frozen
  head h = linear(16, 1)
  forward(x: f32[B, 16]) {
    return score: h(gelu(e(x)))${factor}
  }
}
`;

  async function plantedReport(factor: string, quantize?: "int8") {
    const dir = tempFolder();
    const clean = write(dir, "tiny.vlm", spec(""));
    const planted = write(dir, "planted.vlm", spec(factor));
    const options = { seed: 1, ...(quantize ? { quantize, target: "ort-cpu" as const } : {}) };
    const compiled = await compile([planted], { ...options, out: path.join(dir, "out") });
    expect(compiled.ok).toBe(true);
    return verifyCompiled([clean], options, compiled);
  }

  it("a 1 % error in a one-element fp32 output fails, the cosine of one number being 1", async () => {
    const report = await plantedReport(" * 1.01");
    expect(report.comparisons).toHaveLength(1);
    expect(report.comparisons[0]).toMatchObject({ shape: [1, 1], cosine: 1, ok: false });
    expect(report.comparisons[0]!.relativeError).toBeCloseTo(0.01, 4);
    expect(report.ok).toBe(false);
  });

  it("a quantized one-element output 20 % off fails on the norm bound beside the cosine", async () => {
    // The cosine of one number is 1 whatever the error; ‖Δ‖ / ‖reference‖ must stay within 0.141,
    // the error a cosine of 0.99 allows, and int8 keeps this output within 1 %.
    const report = await plantedReport(" * 1.2", "int8");
    expect(report.comparisons[0]).toMatchObject({ metric: "cosine", cosine: 1, ok: false });
    expect(report.comparisons[0]!.normError).toBeGreaterThan(0.15);
    // Unplanted, the same quantized compile passes.
    const honest = await plantedReport("", "int8");
    expect(honest.comparisons[0]).toMatchObject({ metric: "cosine", ok: true });
    expect(honest.comparisons[0]!.normError).toBeLessThan(0.01);
  });
});

describe("--verify runs within the declared bounds", () => {
  it("samples T within T <= 4, where a learned position table has 4 rows", async () => {
    const dir = tempFolder();
    const file = write(
      dir,
      "bounded.vlm",
      `import { bert } from "std"
model m {
  encoder net = bert(vocab: 50, width: 16, depth: 1, heads: 2, ffn: 32, positions: 4, type_vocab: 2)
  forward(ids: i64[B, T <= 4]) {
    return hidden: net(ids)
  }
}
`,
    );
    const compiled = await compile([file], { out: path.join(dir, "out") });
    const report = await verifyCompiled([file], {}, compiled);
    expect(report.diagnostics).toEqual([]);
    expect(report.comparisons.map((c) => [c.shape, c.ok])).toEqual([[[1, 4, 16], true]]);
  });
});

describe("vlmc run checks its inputs", () => {
  async function model(): Promise<{ dir: string; onnx: string }> {
    const dir = tempFolder();
    const spec = write(
      dir,
      "lim.vlm",
      `model m {
  encoder q = linear(8, 8)
  forward(x: f32[B, T <= 200, 8], y: f32[B, 4, 8]) {
    return out: concat(q(x), y, axis: 1)
  }
}
`,
    );
    const onnx = path.join(dir, "lim.onnx");
    expect(await runCli(["compile", spec, "-o", onnx], captureIo().io)).toBe(0);
    return { dir, onnx };
  }

  it("a size past its declared bound: one VLM4008 naming input, axis and symbol, before onnxruntime runs", async () => {
    const { dir, onnx } = await model();
    const x = path.join(dir, "x.npy");
    writeNpy(x, { dtype: "<f4", shape: [1, 300, 8], data: new Float32Array(2400) });
    const c = captureIo();
    expect(await runCli(["run", onnx, "--input", `x=${x}`], c.io)).toBe(1);
    expect(c.err).toMatch(/^error VLM4008: input "x" axis 1 \(T\) is 300, but the model declares T <= 200\n$/);
    expect(c.out).toBe("");
  });

  it("random inputs take the sizes a given input fixes, and the sizes are printed and in --json", async () => {
    const { dir, onnx } = await model();
    const x = path.join(dir, "x.npy");
    writeNpy(x, { dtype: "<f4", shape: [2, 5, 8], data: new Float32Array(80) });
    const c = captureIo();
    expect(await runCli(["run", onnx, "--input", `x=${x}`], c.io)).toBe(0);
    expect(c.out).toMatch(/^sizes {2}B = 2, T = 5\nout {2}float32\[2, 9, 8\]/);
    const json = captureIo();
    expect(await runCli(["run", onnx, "--input", `x=${x}`, "--json"], json.io)).toBe(0);
    expect(JSON.parse(json.out).sizes).toEqual({ B: 2, T: 5 });
  });

  it("a given input of the wrong dtype or with a size that disagrees with another's", async () => {
    const { dir, onnx } = await model();
    const ints = path.join(dir, "ints.npy");
    writeNpy(ints, { dtype: "<i8", shape: [1, 5, 8], data: new BigInt64Array(40) });
    const typed = captureIo();
    expect(await runCli(["run", onnx, "--input", `x=${ints}`], typed.io)).toBe(1);
    expect(typed.err).toMatch(/VLM4008: input "x" is int64, the model declares float32/);
    const x = path.join(dir, "x.npy");
    const y = path.join(dir, "y.npy");
    writeNpy(x, { dtype: "<f4", shape: [2, 5, 8], data: new Float32Array(80) });
    writeNpy(y, { dtype: "<f4", shape: [3, 4, 8], data: new Float32Array(96) });
    const mixed = captureIo();
    expect(await runCli(["run", onnx, "--input", `x=${x}`, "--input", `y=${y}`], mixed.io)).toBe(1);
    expect(mixed.err).toMatch(/VLM4008: input "y" axis 0 \(B\) is 3, but input "x" axis 0 makes B = 2/);
  });
});

describe("vlmc run reports onnxruntime's failures once", () => {
  it("one line on a pipe, without ANSI escapes: onnxruntime's own log stays quiet (the built CLI, as a user runs it)", async () => {
    const dir = tempFolder();
    const spec = write(
      dir,
      "ids.vlm",
      `model m {
  emb = embedding(50, 4)
  forward(ids: i64[B, T]) {
    return pooled: sum(emb(ids + 40), axis: 1)
  }
}
`,
    );
    const onnx = path.join(dir, "ids.onnx");
    expect(await runCli(["compile", spec, "-o", onnx], captureIo().io)).toBe(0);
    // ids + 40 past the table passes every declared fact; onnxruntime's Gather refuses it at run time.
    const ids = path.join(dir, "ids.npy");
    writeNpy(ids, { dtype: "<i8", shape: [1, 2], data: BigInt64Array.from([1n, 20n]) });
    const bin = path.join(import.meta.dirname, "..", "bin", "vlmc.js");
    const run = spawnSync(process.execPath, [bin, "run", onnx, "--input", `ids=${ids}`], { encoding: "utf8" });
    expect(run.status).toBe(1);
    expect(run.stderr).not.toContain("\u001b");
    expect(run.stderr.trimEnd().split("\n")).toEqual([
      expect.stringMatching(/^error VLM4007: onnxruntime failed running/),
    ]);
  });
});

describe("--quantize does what it says", () => {
  it("quantizes ViT-B/16, whose one component is not frozen (examples/reference/vit_b_16.vlm)", async () => {
    const ir: string[] = [];
    const result = await compile(["examples/reference/vit_b_16.vlm"], {
      quantize: "int4",
      target: "ort-cpu",
      emit: "ir",
    });
    expect(result.diagnostics.filter((d) => d.severity !== "note")).toEqual([]);
    ir.push(...result.ir);
    // 12 layers × (packed qkv, out_proj, mlp.0, mlp.3), and the classifier: a layer of the
    // encoder component, not a component with role head.
    expect(ir.join("\n").match(/quant\.Linear/g)?.length).toBe(49);
  });

  it("warns (VLM3100) when a quantization request changes nothing", async () => {
    const file = write(
      tempFolder(),
      "kept.vlm",
      `model m {
  encoder e = linear(8, 8) frozen
  head h = linear(8, 2)
  forward(x: f32[B, 8]) {
    return y: h(e(x))
  }
  policy e { quantize: none }
}
`,
    );
    const result = await compile([file], { quantize: "int8", emit: "ir" });
    expect(result.diagnostics.map((d) => [d.code, d.severity])).toEqual([["VLM3100", "warning"]]);
  });
});

describe("the graph checks what only its inputs tell", () => {
  it("refuses a size past its declared bound inside onnxruntime itself, naming the input, axis and symbol", async () => {
    const dir = tempFolder();
    const spec = write(
      dir,
      "bounded.vlm",
      `import { llama } from "std"
model tiny {
  encoder llm = llama(vocab: 50, width: 16, depth: 1, heads: 2, mlp: 32, context: 16)
  forward(ids: i64[B, T <= 8]) {
    return logits: llm(llm.embed_tokens(ids))
  }
}
`,
    );
    const out = path.join(dir, "tiny.onnx");
    const result = await compile([spec], { out });
    expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const ort = await import("onnxruntime-node");
    const session = await ort.InferenceSession.create(out, { logSeverityLevel: 4 });
    const ids = (t: number) =>
      new ort.Tensor(
        "int64",
        BigInt64Array.from({ length: t }, (_, i) => BigInt(i)),
        [1, t],
      );
    try {
      expect((await session.run({ ids: ids(8) }))["logits"]!.dims).toEqual([1, 8, 50]);
      await expect(session.run({ ids: ids(9) })).rejects.toThrow("input ids axis 1: T must be at most 8");
    } finally {
      await session.release();
    }
  });
});

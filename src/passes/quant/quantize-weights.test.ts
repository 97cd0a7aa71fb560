// quantize-weights: before/after IR, the policy on an elaborated spec (frozen quantized,
// trainable, heads and model-level weights not; policies naming them; the command-line
// override), kernels per target, int4 on portable, near misses, idempotence and the verifier.

import { describe, expect, it } from "vitest";
import { Graph, type Param } from "../../ir/graph.js";
import { printGraph } from "../../ir/printer.js";
import { tensorType } from "../../ir/types.js";
import { elaborateSpec, node, runPass, testModule, testParam } from "../../../test/helpers/graph-fixtures.js";
import { createPassManager } from "../index.js";
import type { RunOptions } from "../manager.js";
import { PRECOMPUTED, QUANT_LINEAR } from "../../ir/ops.js";
import { quantizeWeights } from "./quantize-weights.js";

const frozen = (name: string, shape: number[]): Param => ({ ...testParam(name, shape), frozen: true, role: "encoder" });

const MLP = `block mlp(d) {
  fc1 = linear(d, 2 * d)
  fc2 = linear(2 * d, d)
  forward(x) {
    return fc2(gelu(fc1(x)))
  }
}
`;

/** Frozen encoders, a trainable fusion, a frozen head and a model-level matrix. */
function policySpec(policies = ""): string {
  return `${MLP}
model m {
  encoder vision = mlp(32) frozen
  encoder text = mlp(32) frozen
  fusion proj = mlp(32)
  head cls = linear(32, 4) frozen
  param scale: [32, 32] = normal(0.02)
  stage tune { train proj }
  forward(x: f32[B, 32]) {
    return logits: cls(proj(vision(x) + text(x)) @ scale)
  }
${policies}}
`;
}

/** Runs the default pipeline on the spec's model; returns `scope → mode` of every quant.Linear, and the report. */
function quantized(spec: string, options: Partial<Pick<RunOptions, "quantize" | "target" | "stage">> = {}) {
  const { models, diagnostics } = elaborateSpec(spec);
  expect(diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  const module = models[0]!.module!;
  const report = createPassManager().run(module, { verify: true, target: "ort-cpu", ...options });
  const modes: Record<string, string> = {};
  for (const n of module.graphs[0]!.nodes)
    if (n.op === QUANT_LINEAR) modes[n.scope] = `${String(n.attrs["mode"])} ${String(n.attrs["kernel"])}`;
  return { modes, report, module };
}

describe("quantize-weights", () => {
  it("rewrites Linear and MatMul-by-parameter to quant.Linear, keeping the float weight as input", () => {
    const g = new Graph("forward");
    const x = g.addInput("x", tensorType("f32", [2, 8]));
    const [w, b, m] = [frozen("enc.fc.weight", [16, 8]), frozen("enc.fc.bias", [16]), frozen("enc.proj", [16, 4])];
    const h = node(g, "Linear", [x, g.paramValue(w), g.paramValue(b)], [2, 16]);
    const y = node(g, "MatMul", [node(g, "Relu", [h]), g.paramValue(m)], [2, 4]);
    node(g, "MatMul", [y, node(g, "Transpose", [y], [4, 2], { perm: [1, 0] })], [2, 2]); // two activations: no candidate
    g.setOutput("y", y);
    const module = testModule([g], [w, b, m]);

    const first = runPass(quantizeWeights, module, { quantize: "int4", target: "ort-cpu" });
    expect(first.changed).toBe(true);
    expect(first.problems).toEqual([]);
    expect(printGraph(g).split("\n").slice(4, 8)).toEqual([
      '  %4: f32[2, 16] = quant.Linear{accuracy_level=4, block_size=32, kernel="matmul-nbits", mode="int4", per_channel=false, weight_layout="out_in"}(%x, @enc.fc.weight, @enc.fc.bias)  // /test',
      "  %5: f32[2, 16] = Relu(%4)  // /test",
      '  %6: f32[2, 4] = quant.Linear{accuracy_level=4, block_size=32, kernel="matmul-nbits", mode="int4", per_channel=false, weight_layout="in_out"}(%5, @enc.proj, _)  // /test',
      "  %7: f32[4, 2] = Transpose{perm=[1, 0]}(%6)  // /test",
    ]);
    expect(g.nodes.filter((n) => n.op === QUANT_LINEAR).map((n) => n.rules)).toEqual([
      ["quantize-linear"],
      ["quantize-matmul"],
    ]);
    expect(Object.fromEntries(first.fires)).toEqual({ "quantize-linear": 1, "quantize-matmul": 1 });
    // 16·8 and 16·4 weights: one block per column, 16 bytes of codes and a scale each.
    expect(Object.fromEntries(first.stats)).toEqual({
      "weights-int4": 2,
      "weight-bytes-fp32": 4 * (128 + 64),
      "weight-bytes-quantized": 16 * (16 + 4) + 4 * (16 + 4),
    });
    expect(first.nearMisses).toEqual([]);

    const second = runPass(quantizeWeights, module, { quantize: "int4", target: "ort-cpu" });
    expect(second.changed).toBe(false);
    expect(second.ir).toBe(first.ir);
  });

  it("does nothing without a policy or --quantize", () => {
    const { modes, report } = quantized(policySpec());
    expect(modes).toEqual({});
    expect(report.runs.find((r) => r.pass === "quantize-weights")!.nearMisses).toEqual([]);
  });

  it("--quantize quantizes frozen components; trainable ones, heads and model-level weights stay fp32, and say why", () => {
    const { modes, report } = quantized(policySpec(), { quantize: "int8" });
    expect(modes).toEqual({
      "/vision/fc1": "int8 dynamic-quantize-matmul",
      "/vision/fc2": "int8 dynamic-quantize-matmul",
      "/text/fc1": "int8 dynamic-quantize-matmul",
      "/text/fc2": "int8 dynamic-quantize-matmul",
    });
    const misses = report.runs.find((r) => r.pass === "quantize-weights")!.nearMisses;
    expect(misses.map((m) => [m.scope, m.rule])).toEqual([
      ["/proj/fc1", "quantize-linear"],
      ["/proj/fc2", "quantize-linear"],
      ["", "quantize-matmul"],
      ["/cls", "quantize-linear"],
    ]);
    expect(misses[0]!.reason).toMatch(/trainable/);
    expect(misses[3]!.reason).toMatch(/head/);
  });

  it("follows the most specific policy rule, and heads only when named", () => {
    const spec = policySpec(`  policy frozen { quantize: int8 }
  policy text { quantize: none }
  policy fusion { quantize: int4 }
`);
    expect(quantized(spec).modes).toEqual({
      "/vision/fc1": "int8 dynamic-quantize-matmul",
      "/vision/fc2": "int8 dynamic-quantize-matmul",
      "/proj/fc1": "int4 matmul-nbits",
      "/proj/fc2": "int4 matmul-nbits",
    });
    const named = quantized(policySpec("  policy frozen { quantize: int8 }\n  policy cls { quantize: int8 }\n")).modes;
    expect(named["/cls"]).toBe("int8 dynamic-quantize-matmul");
  });

  it("lets --quantize choose the mode within the policy's scope, and --quantize none switch it off", () => {
    const spec = policySpec("  policy frozen { quantize: int8 }\n  policy text { quantize: none }\n");
    expect(quantized(spec, { quantize: "int4" }).modes).toEqual({
      "/vision/fc1": "int4 matmul-nbits",
      "/vision/fc2": "int4 matmul-nbits",
    });
    expect(quantized(spec, { quantize: "none" }).modes).toEqual({});
  });

  it("picks the kernel from the target: QDQ on portable and CUDA, MatMulNBits at accuracy 0 on CUDA", () => {
    expect(quantized(policySpec(), { quantize: "int8", target: "portable" }).modes["/vision/fc1"]).toBe("int8 qdq");
    expect(quantized(policySpec(), { quantize: "int8", target: "ort-cuda" }).modes["/vision/fc1"]).toBe("int8 qdq");
    const cuda = quantized(policySpec(), { quantize: "int4", target: "ort-cuda" }).module.graphs[0]!.nodes.find(
      (n) => n.op === QUANT_LINEAR,
    )!;
    expect(cuda.attrs).toMatchObject({ kernel: "matmul-nbits", accuracy_level: 0, block_size: 32 });
  });

  it("reports int4 on the portable target as VLM2013 and leaves the graph alone", () => {
    const { modes, report } = quantized(
      policySpec("  policy vision { quantize: int4 }\n  policy text { quantize: int8 }\n"),
      { target: "portable" },
    );
    expect(report.diagnostics.map((d) => d.code)).toEqual(["VLM2013"]);
    expect(report.diagnostics[0]!.message).toMatch(/vision/);
    // int8 where asked still goes ahead; the error stops the compile before anything is written.
    expect(modes).toEqual({ "/text/fc1": "int8 qdq", "/text/fc2": "int8 qdq" });
  });

  it("leaves weights a training stage updates alone", () => {
    const { modes, report } = quantized(policySpec("  policy proj { quantize: int8 }\n"), { stage: "tune" });
    expect(modes).toEqual({});
    const misses = report.runs.find((r) => r.pass === "quantize-weights")!.nearMisses;
    expect(misses.filter((m) => m.scope.startsWith("/proj")).map((m) => m.reason)).toEqual([
      "stage tune trains proj",
      "stage tune trains proj",
    ]);
    expect(misses.find((m) => m.scope === "/vision/fc1")!.reason).toBe(
      "kept in full precision: no policy rule sets its quantization, and no --quantize",
    );
  });

  it("keeps a table shared with an embedding in full precision", () => {
    const g = new Graph("forward");
    const ids = g.addInput("ids", tensorType("i64", [2, 3]));
    const table = frozen("lm.embed", [16, 8]);
    const h = node(g, "Embedding", [g.paramValue(table), ids], [2, 3, 8], {}, "f32");
    const tied = node(g, "Linear", [h, g.paramValue(table), undefined], [2, 3, 16]);
    g.setOutput("logits", tied);
    const result = runPass(quantizeWeights, testModule([g], [table]), { quantize: "int8", target: "ort-cpu" });
    expect(result.changed).toBe(false);
    expect(result.nearMisses.map((m) => m.reason)).toEqual([
      "its weight is also read by Embedding (a shared table stays in full precision)",
    ]);
  });

  it("quantizes a packed projection whose transpose was precomputed (torchvision ViT)", () => {
    const spec = `import { vit } from "std"
model v {
  encoder vision = vit(image: 16, patch: 8, width: 32, depth: 1, num_heads: 2, mlp: 64, classes: 0) frozen
  forward(pixels: f32[B, 3, 16, 16]) {
    return feats: vision(pixels)
  }
}
`;
    const { module, report } = quantized(spec, { quantize: "int8" });
    const g = module.graphs[0]!;
    const packed = g.nodes.find((n) => n.op === QUANT_LINEAR && n.inputs[1]!.producer?.op === PRECOMPUTED)!;
    expect(packed.attrs["weight_layout"]).toBe("in_out");
    expect(packed.inputs[1]!.type.shape).toEqual([32, 96]);
    expect(g.nodes.filter((n) => n.op === QUANT_LINEAR)).toHaveLength(4);
    expect(report.diagnostics).toEqual([]);
  });
});

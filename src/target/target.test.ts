// Target op sets: every example compiled through the default pipeline for each target (verified
// after each pass) and lowered (weights are never read: lowering asks for bytes only when a file is
// written) uses only ops its target implements, the ONNX Runtime targets do get fused ops, and the
// fusion passes run again change nothing; plus the sets themselves.

import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { elaborate } from "../driver/check.js";
import { InternalError } from "../diagnostics/diagnostic.js";
import type { Graph, IrModule } from "../ir/graph.js";
import { createPassManager, fuseActivations, fuseAttention, fuseNorms } from "../passes/index.js";
import { assertTargetOps, lowerGraph, type LowerOptions } from "../codegen/lower.js";
import type { OnnxModel } from "../onnx/onnx-writer.js";
import { FUSED_OP_KERNELS, MS_DOMAIN, opKey, PORTABLE_OPS } from "./target-ops.js";
import { TARGET_NAMES, TARGETS, targetNamed, type TargetName } from "./target.js";
import { targetLowerings } from "../codegen/targets.js";

const ROOT = path.join(import.meta.dirname, "..", "..");
const EXAMPLES = ["examples", "examples/reference"].flatMap((d) =>
  fs
    .readdirSync(path.join(ROOT, d))
    .filter((n) => n.endsWith(".vlm"))
    .map((n) => path.join(d, n)),
);

const unread = (what: string) => (): never => {
  throw new Error(`${what} read while lowering`);
};

/** Every graph of `module` and the precomputed graph beside it, lowered for `target`. */
function lowerAll(module: IrModule, name: TargetName): OnnxModel[] {
  const target = TARGETS[name];
  const options: LowerOptions = {
    paramBytes: unread("parameter bytes"),
    precomputed: unread("a precomputed value"),
    location: () => "",
    metadata: {},
    target,
    targetLowerings: targetLowerings(target),
  };
  const graphs = module.graphs.flatMap((g): Graph[] => (g.precomputed ? [g, g.precomputed] : [g]));
  return graphs.map((g) => lowerGraph(module, g, options));
}

describe("every example stays inside its target's ops", () => {
  for (const file of EXAMPLES) {
    it(file, () => {
      const fused: Record<string, number> = {};
      for (const target of TARGET_NAMES) {
        const result = elaborate([path.join(ROOT, file)]);
        expect(result.ok).toBe(true);
        let contrib = 0;
        for (const m of result.models) {
          const manager = createPassManager();
          manager.run(m.module!, { target, modelSpan: m.decl.nameSpan, verify: true });
          const again = manager.run(m.module!, {
            target,
            passes: [fuseAttention, fuseNorms, fuseActivations].map((p) => p.name),
            verify: true,
          });
          expect(again.runs.filter((r) => r.changed).map((r) => r.pass)).toEqual([]);
          for (const model of lowerAll(m.module!, target)) {
            assertTargetOps(model, TARGETS[target]);
            contrib += model.nodes.filter((n) => n.op in FUSED_OP_KERNELS).length;
          }
        }
        fused[target] = contrib;
      }
      expect(fused["portable"]).toBe(0);
      // ResNets have nothing to fuse; every other example is a transformer.
      if (!file.includes("resnet")) expect(Math.min(fused["ort-cpu"]!, fused["ort-cuda"]!)).toBeGreaterThan(0);
    });
  }
});

describe("target op sets", () => {
  it("portable is standard ONNX; the ONNX Runtime targets add the ops their provider has kernels for", () => {
    for (const target of Object.values(TARGETS))
      for (const op of PORTABLE_OPS) expect(target.implements(op), `${target.name} ${op}`).toBe(true);
    expect(TARGETS.portable.implements(opKey(MS_DOMAIN, "QuickGelu"))).toBe(false);
    expect(TARGETS.portable.implements("SimplifiedLayerNormalization")).toBe(false);
    expect(TARGETS["ort-cpu"].implements(opKey(MS_DOMAIN, "DynamicQuantizeMatMul"))).toBe(true);
    expect(TARGETS["ort-cuda"].implements(opKey(MS_DOMAIN, "DynamicQuantizeMatMul"))).toBe(false);
    for (const target of ["ort-cpu", "ort-cuda"] as const) {
      for (const op of [
        "Attention",
        "MultiHeadAttention",
        "GroupQueryAttention",
        "SkipLayerNormalization",
        "QuickGelu",
      ])
        expect(TARGETS[target].implements(opKey(MS_DOMAIN, op))).toBe(true);
      expect(TARGETS[target].implements("SimplifiedLayerNormalization")).toBe(true);
    }
  });

  it("names the dtypes a provider lacks", () => {
    expect(TARGETS["ort-cpu"].missingKernel("QuickGelu", "f16")).toBe(
      "dtype f16 not supported by QuickGelu on ort-cpu",
    );
    expect(TARGETS["ort-cuda"].missingKernel("QuickGelu", "f16")).toBeUndefined();
    expect(TARGETS["ort-cuda"].missingKernel("GroupQueryAttention", "f32")).toBe(
      "dtype f32 not supported by GroupQueryAttention on ort-cuda",
    );
    expect(TARGETS["ort-cpu"].missingKernel("Attention", "f16")).toBe(
      "dtype f16 not supported by Attention on ort-cpu",
    );
    expect(TARGETS["ort-cuda"].missingKernel("Attention", "f16")).toBeUndefined();
  });

  it("names the fused ops a target runs slower than their unfused form", () => {
    expect(TARGETS["ort-cpu"].slowerThanUnfused("SkipLayerNormalization")).toMatch(
      /twice as long as Add \+ LayerNormalization/,
    );
    expect(TARGETS["ort-cuda"].slowerThanUnfused("SkipLayerNormalization")).toBeUndefined();
    expect(TARGETS["ort-cpu"].slowerThanUnfused("SkipSimplifiedLayerNormalization")).toBeUndefined();
    for (const target of ["ort-cpu", "ort-cuda"] as const)
      for (const op of ["Attention", "MultiHeadAttention"])
        expect(TARGETS[target].slowerThanUnfused(op)).toBeUndefined();
  });

  it("picks the quantized matrix product's kernel; portable has no 4-bit one", () => {
    expect(TARGETS.portable.quantKernel("int8")).toEqual({ kernel: "qdq", accuracyLevel: 0 });
    expect(TARGETS.portable.quantKernel("int4")).toBeUndefined();
    expect(TARGETS["ort-cpu"].quantKernel("int8")).toEqual({ kernel: "dynamic-quantize-matmul", accuracyLevel: 0 });
    expect(TARGETS["ort-cpu"].quantKernel("int4")).toEqual({ kernel: "matmul-nbits", accuracyLevel: 4 });
    expect(TARGETS["ort-cuda"].quantKernel("int4")).toEqual({ kernel: "matmul-nbits", accuracyLevel: 0 });
    expect(() => TARGETS.portable.missingKernel("NoSuchOp", "f32")).toThrow(InternalError);
  });

  it("defaults to portable and computes reduced precision only where it has the kernels", () => {
    expect(targetNamed(undefined)).toBe(TARGETS.portable);
    expect(
      Object.values(TARGETS)
        .filter((t) => !t.reducedPrecision)
        .map((t) => t.name),
    ).toEqual(["ort-cpu"]);
    expect(
      Object.values(TARGETS)
        .filter((t) => t.runsOrtOps)
        .map((t) => t.name),
    ).toEqual(["ort-cpu", "ort-cuda"]);
  });

  it("rejects a model with an op its target lacks", () => {
    const model = (domain: string, op: string): OnnxModel => ({
      graphName: "g",
      inputs: [],
      outputs: [],
      nodes: [{ op, domain, name: "n", inputs: [], outputs: ["y"] }],
      initializers: [],
      opsetImports: [],
      irVersion: 8,
      producerName: "test",
      producerVersion: "0",
      metadata: {},
    });
    expect(() => assertTargetOps(model(MS_DOMAIN, "QuickGelu"), TARGETS["portable"])).toThrow(InternalError);
    expect(() => assertTargetOps(model(MS_DOMAIN, "DynamicQuantizeMatMul"), TARGETS["ort-cuda"])).toThrow(
      /com.microsoft:DynamicQuantizeMatMul/,
    );
    expect(() => assertTargetOps(model(MS_DOMAIN, "QuickGelu"), TARGETS["ort-cpu"])).not.toThrow();
  });
});

// convert-precision: before/after IR (stored casts, constants, casts at fp32 boundaries and graph
// outputs, norms kept fp32), per-component policies, bf16's ONNX limits, the CPU refusal,
// idempotence, and fp16 models that ONNX Runtime's CPU provider loads and runs close to fp32.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, describe, expect, it } from "vitest";
import { compile } from "../../driver/compile.js";
import { decodeOnnxModel } from "../../onnx/onnx-writer.js";
import { compareTensors } from "../../driver/verify.js";
import { Graph, type Param } from "../../ir/graph.js";
import { printGraph } from "../../ir/printer.js";
import { tensorType } from "../../ir/types.js";
import { constant, elaborateSpec, node, runPass, testModule, testParam } from "../../../test/helpers/graph-fixtures.js";
import { createPassManager } from "../index.js";
import type { RunOptions } from "../manager.js";
import { STORED_CAST } from "../../ir/ops.js";
import { convertPrecision } from "./convert-precision.js";

const folders: string[] = [];
afterAll(() => {
  for (const dir of folders.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

const param = (name: string, shape: number[]): Param => ({ ...testParam(name, shape), frozen: true, role: "encoder" });

const SPEC = `block mlp(d) {
  fc1 = linear(d, 2 * d)
  norm = layer_norm(2 * d)
  fc2 = linear(2 * d, d)
  forward(x) {
    return fc2(gelu(norm(fc1(x))))
  }
}

model m {
  encoder vision = mlp(16) frozen
  fusion proj = mlp(16)
  stage tune { train proj }
  forward(x: f32[B, 16]) {
    return y: proj(vision(x)) * 2.0
  }
POLICIES}
`;

function specFile(policies = ""): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vlmc-precision-"));
  folders.push(dir);
  const file = path.join(dir, "spec.vlm");
  fs.writeFileSync(file, SPEC.replace("POLICIES", policies));
  return file;
}

function converted(policies: string, options: Partial<Pick<RunOptions, "precision" | "target" | "stage">>) {
  const { models } = elaborateSpec(SPEC.replace("POLICIES", policies));
  const module = models[0]!.module!;
  const report = createPassManager().run(module, { verify: true, target: "portable", ...options });
  return { module, report, g: module.graphs[0]! };
}

describe("convert-precision", () => {
  it("stores parameters converted, retypes the work, keeps LayerNorm fp32 and casts at the edges", () => {
    const g = new Graph("forward");
    const x = g.addInput("x", tensorType("f32", [2, 4]));
    const [w, b, nw, nb] = [
      param("enc.fc.weight", [4, 4]),
      param("enc.fc.bias", [4]),
      param("enc.norm.weight", [4]),
      param("enc.norm.bias", [4]),
    ];
    const h = node(g, "Linear", [x, g.paramValue(w), g.paramValue(b)]);
    const n = node(g, "LayerNorm", [h, g.paramValue(nw), g.paramValue(nb)], undefined, { eps: 1e-5 });
    g.setOutput("y", node(g, "Mul", [node(g, "Gelu", [n]), constant(g, 2)]));
    const module = testModule([g], [w, b, nw, nb]);

    const first = runPass(convertPrecision, module, { precision: "fp16", target: "ort-cuda" });
    expect(first.changed).toBe(true);
    expect(first.problems).toEqual([]);
    expect(printGraph(g).split("\n").slice(5)).toEqual([
      '  %5: f16[2, 4] = Cast{to="f16"}(%x)  // /test',
      '  %6: f16[4, 4] = precision.Cast{to="f16"}(@enc.fc.weight)  // /test',
      '  %7: f16[4] = precision.Cast{to="f16"}(@enc.fc.bias)  // /test',
      "  %8: f16[2, 4] = Linear(%5, %6, %7)  // /test",
      '  %9: f32[2, 4] = Cast{to="f32"}(%8)  // /test',
      "  %10: f32[2, 4] = LayerNorm{eps=0.00001}(%9, @enc.norm.weight, @enc.norm.bias)  // /test",
      '  %11: f16[2, 4] = Cast{to="f16"}(%10)  // /test',
      "  %12: f16[2, 4] = Gelu(%11)  // /test",
      '  %13: f16[] = Constant{dtype="f16", value=2}()  // /test',
      "  %14: f16[2, 4] = Mul(%12, %13)  // /test",
      '  %15: f32[2, 4] = Cast{to="f32"}(%14)  // /test',
      "  return y: %15",
      "}",
    ]);
    expect(Object.fromEntries(first.fires)).toEqual({
      "convert-node": 3,
      "store-converted": 2,
      "cast-boundary": 4,
      "convert-constant": 1,
    });
    expect(first.nearMisses.map((m) => [m.node.op, m.reason])).toEqual([
      ["LayerNorm", "LayerNorm stays fp32 for accuracy"],
    ]);
    expect(g.nodes.find((m) => m.op === "Linear")!.rules).toEqual(["convert-node"]);

    const second = runPass(convertPrecision, module, { precision: "fp16", target: "ort-cuda" });
    expect(second.changed).toBe(false);
    expect(second.ir).toBe(first.ir);
  });

  it("stores carried inputs and outputs (a decoder's cache) in the reduced type, without casts", () => {
    const g = new Graph("decoder");
    const x = g.addInput("x", tensorType("f32", [2, 4]));
    const past = g.addInput("past", tensorType("f32", [2, 4]));
    const kept = g.addInput("kept", tensorType("f32", [2, 4]));
    const present = node(g, "Concat", [past, x], [4, 4], { axis: 0 });
    g.setOutput("present", present);
    g.setOutput("y", node(g, "Softmax", [node(g, "Add", [kept, x])], undefined, { axis: -1 }));
    g.setOutput("kept_out", node(g, "Softmax", [kept], undefined, { axis: -1 }));
    for (const name of ["past", "present", "kept"]) g.carried.add(name);
    const result = runPass(convertPrecision, testModule([g]), { precision: "fp16", target: "ort-cuda" });
    expect(result.problems).toEqual([]);
    expect(result.fires.get("carry-reduced")).toBe(1);
    // past is read only by converted work: fp16 in, fp16 out, no cast on either side.
    expect(past.type.dtype).toBe("f16");
    const out = g.outputs.find((o) => o.name === "present")!.value;
    expect([out.type.dtype, out.producer!.op, out.producer!.inputs[0]]).toEqual(["f16", "Concat", past]);
    // kept is also read by fp32 work (Softmax), so it stays f32 and the converted Add casts it.
    expect(kept.type.dtype).toBe("f32");
    expect(g.outputs.find((o) => o.name === "y")!.value.type.dtype).toBe("f32");
  });

  it("converts only the components a policy names, with casts where they meet fp32 work", () => {
    const { g, report } = converted("  policy vision { precision: fp16 }\n", {});
    expect(report.diagnostics).toEqual([]);
    const f16 = g.nodes
      .filter((n) => n.outputs[0]!.type.dtype === "f16" && n.op !== "Cast" && n.op !== STORED_CAST)
      .map((n) => `${n.op} ${n.scope}`);
    expect(f16).toEqual(["Linear /vision/fc1", "Gelu /vision", "Linear /vision/fc2"]);
    // proj reads vision's result back in f32, and the output stays f32.
    expect(g.nodes.find((n) => n.scope === "/proj/fc1")!.inputs[0]!.producer!.op).toBe("Cast");
    expect(g.outputs[0]!.value.type.dtype).toBe("f32");
  });

  it("--precision overrides the policies, and fp32 switches them off", () => {
    expect(
      converted("  policy vision { precision: fp16 }\n", { precision: "fp32" }).report.runs.find(
        (r) => r.pass === "convert-precision",
      )!.changed,
    ).toBe(false);
    const { g } = converted("  policy vision { precision: fp16 }\n", { precision: "bf16" });
    expect(g.nodes.find((n) => n.scope === "/proj/fc2")!.outputs[0]!.type.dtype).toBe("bf16");
  });

  it("casts the parameters a training stage updates at run time instead of storing them converted", () => {
    const { g } = converted("", { precision: "fp16", stage: "tune" });
    const weightCast = (scope: string) =>
      g.nodes.find((n) => n.scope === scope && n.op === "Linear")!.inputs[1]!.producer!.op;
    expect(weightCast("/vision/fc1")).toBe(STORED_CAST);
    expect(weightCast("/proj/fc1")).toBe("Cast");
  });

  it("refuses reduced precision on ort-cpu (VLM2013) and changes nothing", () => {
    for (const [policies, options] of [
      ["", { precision: "fp16" }],
      ["  policy frozen { precision: bf16 }\n", {}],
    ] as const) {
      const { g, report } = converted(policies, { ...options, target: "ort-cpu" });
      expect(report.diagnostics.map((d) => d.code)).toEqual(["VLM2013"]);
      expect(g.nodes.every((n) => n.outputs[0]!.type.dtype === "f32")).toBe(true);
    }
  });

  it("keeps ops without an opset-17 bfloat16 form in fp32 under bf16", () => {
    const g = new Graph("forward");
    const x = g.addInput("x", tensorType("f32", [1, 3, 8, 8]));
    const w = param("enc.conv.weight", [4, 3, 2, 2]);
    const conv = node(g, "Conv", [x, g.paramValue(w), undefined], [1, 4, 4, 4], {
      kernel: 2,
      stride: 2,
      padding: 0,
      groups: 1,
    });
    g.setOutput("y", node(g, "Relu", [conv]));
    const result = runPass(convertPrecision, testModule([g], [w]), { precision: "bf16", target: "ort-cuda" });
    expect(g.nodes.map((n) => `${n.op}:${n.outputs[0]!.type.dtype}`)).toEqual([
      "Conv:f32",
      "Cast:bf16",
      "Relu:bf16",
      "Cast:f32",
    ]);
    expect(result.nearMisses.map((m) => m.reason)).toEqual(["Conv has no bfloat16 form in ONNX opset 17"]);
  });

  it("writes fp16 weights (no fp32 copies) that ONNX Runtime's CPU provider runs close to fp32", async () => {
    const file = specFile();
    const dir = path.dirname(file);
    const half = await compile([file], {
      target: "ort-cuda",
      precision: "fp16",
      out: path.join(dir, "fp16"),
      verifyIr: true,
    });
    const full = await compile([file], { out: path.join(dir, "fp32") });
    expect(half.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const model = decodeOnnxModel(fs.readFileSync(half.files[0]!.path));
    const types = Object.fromEntries(model.graph!.initializer!.map((t) => [t.name, t.dataType]));
    expect(types["vision.fc1.weight"]).toBe(10); // FLOAT16
    expect(types["proj.fc2.bias"]).toBe(10);
    expect(types["vision.norm.weight"]).toBe(1); // LayerNorm's parameters stay FLOAT
    expect(model.graph!.output![0]!.type!.tensorType!.elemType).toBe(1);
    const weightBytes = (f: string) =>
      decodeOnnxModel(fs.readFileSync(f)).graph!.initializer!.reduce((a, t) => a + (t.rawData?.length ?? 0), 0);
    expect(weightBytes(half.files[0]!.path)).toBeLessThan(0.55 * weightBytes(full.files[0]!.path));

    const x = new ort.Tensor(
      "float32",
      Float32Array.from({ length: 32 }, (_, i) => Math.sin(i)),
      [2, 16],
    );
    const run = async (f: string) => {
      const s = await ort.InferenceSession.create(f);
      try {
        return Array.from((await s.run({ x }))["y"]!.data as Float32Array);
      } finally {
        await s.release();
      }
    };
    const c = compareTensors(await run(full.files[0]!.path), await run(half.files[0]!.path));
    expect(c.cosine).toBeGreaterThan(0.9999);
    expect(c.relativeError).toBeLessThan(1e-2);
  });

  it("writes bf16 weights for GPU targets (structure only: the CPU provider has no bf16 MatMul)", async () => {
    const file = specFile();
    const out = await compile([file], {
      target: "ort-cuda",
      precision: "bf16",
      out: path.join(path.dirname(file), "bf16"),
      verifyIr: true,
    });
    expect(out.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const model = decodeOnnxModel(fs.readFileSync(out.files[0]!.path));
    const types = Object.fromEntries(model.graph!.initializer!.map((t) => [t.name, t.dataType]));
    expect(types["vision.fc1.weight"]).toBe(16); // BFLOAT16
    expect(model.graph!.input![0]!.type!.tensorType!.elemType).toBe(1);
    expect(model.graph!.output![0]!.type!.tensorType!.elemType).toBe(1);
  });
});

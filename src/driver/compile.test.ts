// Tests of compile(): where files go, byte-for-byte determinism, external data, and what the
// model records about its origin (metadata, node names and doc strings, initializers).

import fs from "node:fs";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { tempFolders } from "../../test/temp-folders.js";
import { compile, type CompileProgress } from "./compile.js";
import { decodeOnnxModel } from "../onnx/onnx-writer.js";

const tempFolder = tempFolders("vlmc-compile-");

const SPEC = `block mlp(d) {
  fc1 = linear(d, 2 * d)
  fc2 = linear(2 * d, d)
  forward(x) {
    return fc2(gelu(fc1(x)))
  }
}

model tiny {
  encoder vision = mlp(4) frozen
  head cls = linear(4, 3)
  param unused: [2] = ones
  stage probe { train cls }
  forward(x: f32[B, 4]) {
    return logits: cls(vision(x))
  }
  graph features(x: f32[B, 4]) {
    return vision(x)
  }
}
`;

function writeSpec(dir: string, text = SPEC): string {
  const file = path.join(dir, "tiny.vlm");
  fs.writeFileSync(file, text);
  return file;
}

async function runOnce(file: string, input: Float32Array): Promise<number[]> {
  const session = await ort.InferenceSession.create(file);
  try {
    const out = await session.run({ x: new ort.Tensor("float32", input, [2, 4]) });
    return Array.from(out[session.outputNames[0]!]!.data as Float32Array);
  } finally {
    await session.release();
  }
}

const INPUT = Float32Array.from({ length: 8 }, (_, i) => Math.sin(i + 1));

describe("compile", () => {
  it("writes one file per graph into out/<model>/ by default, or a given folder", async () => {
    const dir = tempFolder();
    const spec = writeSpec(dir);
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const result = await compile([spec]);
      // The spec's deliberately unused parameter draws the one warning.
      expect(result.diagnostics.map((d) => d.code)).toEqual(["VLM3004"]);
      expect(result.files.map((f) => [f.graph, f.path])).toEqual([
        ["forward", path.join("out", "tiny", "forward.onnx")],
        ["features", path.join("out", "tiny", "features.onnx")],
      ]);
      expect(fs.existsSync(path.join(dir, "out", "tiny", "features.onnx"))).toBe(true);
    } finally {
      process.chdir(cwd);
    }
    const folder = await compile([spec], { out: path.join(dir, "models") });
    expect(folder.files.map((f) => path.relative(dir, f.path))).toEqual([
      path.join("models", "forward.onnx"),
      path.join("models", "features.onnx"),
    ]);
  });

  it("writes to a .onnx path only when there is a single graph", async () => {
    const dir = tempFolder();
    const spec = writeSpec(dir);
    const refused = await compile([spec], { out: path.join(dir, "m.onnx") });
    expect(refused.ok).toBe(false);
    expect(refused.diagnostics.filter((d) => d.severity === "error").map((d) => d.code)).toEqual(["VLM4006"]);
    expect(fs.existsSync(path.join(dir, "m.onnx"))).toBe(false);
    const one = await compile([spec], { out: path.join(dir, "m.onnx"), graph: "features" });
    expect(one.files.map((f) => f.path)).toEqual([path.join(dir, "m.onnx")]);
  });

  it("is deterministic: the same inputs give the same bytes", async () => {
    const dir = tempFolder();
    const spec = writeSpec(dir);
    const a = await compile([spec], { out: path.join(dir, "a"), seed: 3 });
    const b = await compile([spec], { out: path.join(dir, "b"), seed: 3 });
    const c = await compile([spec], { out: path.join(dir, "c"), seed: 4 });
    for (const g of ["forward.onnx", "features.onnx"]) {
      expect(fs.readFileSync(path.join(dir, "a", g)).equals(fs.readFileSync(path.join(dir, "b", g)))).toBe(true);
      expect(fs.readFileSync(path.join(dir, "a", g)).equals(fs.readFileSync(path.join(dir, "c", g)))).toBe(false);
    }
    expect(a.files.length + b.files.length).toBe(4);
    expect(c.ok).toBe(true);
  });

  it("gives a parameter the same values in every graph", async () => {
    const dir = tempFolder();
    await compile([writeSpec(dir)], { out: dir });
    const init = (file: string) =>
      new Map(
        decodeOnnxModel(fs.readFileSync(path.join(dir, file))).graph!.initializer!.map((t) => [
          t.name!,
          Buffer.from(t.rawData!),
        ]),
      );
    const forward = init("forward.onnx");
    const features = init("features.onnx");
    expect(forward.get("vision.fc1.weight")!.equals(features.get("vision.fc1.weight")!)).toBe(true);
    // Only what a graph uses becomes an initializer.
    expect([...features.keys()].filter((k) => !k.startsWith("/"))).toEqual([
      "vision.fc1.weight",
      "vision.fc1.bias",
      "vision.fc2.weight",
      "vision.fc2.bias",
    ]);
    expect(forward.has("unused")).toBe(false);
  });

  it("records the source, parameters and stages in the metadata and locations in doc strings", async () => {
    const dir = tempFolder();
    const result = await compile([writeSpec(dir)], { out: dir });
    expect(result.ok).toBe(true);
    const model = decodeOnnxModel(fs.readFileSync(path.join(dir, "forward.onnx")));
    expect(model.opsetImport!.map((o) => [o.domain, Number(o.version)])).toEqual([["", 17]]);
    expect(Number(model.irVersion)).toBe(8);
    const meta = Object.fromEntries(model.metadataProps!.map((p) => [p.key!, p.value!]));
    expect(meta["vlmc.source_sha256"]).toMatch(/^[0-9a-f]{64}$/);
    expect(meta["vlmc.graph"]).toBe("forward");
    expect(JSON.parse(meta["vlmc.stages"]!)).toEqual([{ name: "probe", trains: ["cls"] }]);
    const params = JSON.parse(meta["vlmc.params"]!);
    expect(params["vision.fc1.weight"]).toEqual({ component: "vision", role: "encoder", frozen: true, buffer: false });
    expect(params["cls.bias"]).toEqual({ component: "cls", role: "head", frozen: false, buffer: false });
    expect(JSON.parse(meta["vlmc.transposed"]!)).toEqual(["vision.fc1.weight", "vision.fc2.weight", "cls.weight"]);
    const gelu = model.graph!.node!.find((n) => n.opType === "Erf")!;
    expect(gelu.name).toBe("/vision/Gelu_1/Erf");
    expect(gelu.docString).toBe("tiny.vlm:5:16"); // `gelu(` in `return fc2(gelu(fc1(x)))`
    // The output keeps its DSL name and is written directly by the last node.
    expect(model.graph!.output!.map((o) => o.name)).toEqual(["logits"]);
    expect(model.graph!.node!.at(-1)!.output).toEqual(["logits"]);
  });

  it("writes external data that onnxruntime loads, with the same results as inline", async () => {
    const dir = tempFolder();
    const spec = writeSpec(dir);
    const progress: CompileProgress[] = [];
    const external = await compile([spec], {
      out: path.join(dir, "ext"),
      externalData: "always",
      onProgress: (p) => progress.push(p),
    });
    const inline = await compile([spec], { out: path.join(dir, "inline"), externalData: "never" });
    expect(external.files[0]!.dataPath).toBe(path.join(dir, "ext", "forward.onnx.data"));
    expect(fs.existsSync(external.files[0]!.dataPath!)).toBe(true);
    expect(inline.files[0]!.dataPath).toBeUndefined();
    expect(await runOnce(external.files[0]!.path, INPUT)).toEqual(await runOnce(inline.files[0]!.path, INPUT));
    const last = progress.filter((p) => p.path === external.files[0]!.path).at(-1)!;
    expect(last.writtenBytes).toBe(last.totalBytes);
  });

  it("keeps shape constants inline with external data, so onnxruntime can infer shapes", async () => {
    const dir = tempFolder();
    const spec = writeSpec(
      dir,
      `model m {
  encoder fc = linear(4, 8)
  forward(x: f32[B, 4]) {
    return y: reshape(fc(x), [dim(x, 0), 2, 4])
  }
}
`,
    );
    const result = await compile([spec], { out: dir, externalData: "always" });
    expect(result.ok).toBe(true);
    const session = await ort.InferenceSession.create(result.files[0]!.path);
    const out = await session.run({ x: new ort.Tensor("float32", INPUT, [2, 4]) });
    expect(out["y"]!.dims).toEqual([2, 2, 4]);
  });

  it("reports graphs the target cannot express and writes nothing", async () => {
    const dir = tempFolder();
    const spec = writeSpec(
      dir,
      `model m {
  fc = linear(4, 4)
  forward(x: f32[B, 4]) {
    x = fc(x)
    return x
  }
  graph ok(y: f32[B, 4]) {
    return fc(y)
  }
}
`,
    );
    const result = await compile([spec], { out: dir });
    expect(result.diagnostics.map((d) => [d.code, path.basename(d.span!.file)])).toEqual([["VLM2002", "tiny.vlm"]]);
    expect(result.files).toEqual([]);
    expect(fs.readdirSync(dir)).toEqual(["tiny.vlm"]);
  });
});

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { tempFolders } from "../../test/temp-folders.js";
import {
  decodeOnnxModel,
  encodeOnnxModel,
  writeOnnxModel,
  type OnnxModel,
  type OnnxTensor,
  type WriteOptions,
} from "./onnx-writer.js";
import { ScratchRing } from "../numerics/scratch.js";

const tempFolder = tempFolders("vlmc-onnx-writer-");
function f32(name: string, dims: number[], values: number[], calls?: Map<string, number>): OnnxTensor {
  return {
    name,
    dataType: "float32",
    dims,
    bytes: () => {
      calls?.set(name, (calls.get(name) ?? 0) + 1);
      return new Uint8Array(new Float32Array(values).buffer);
    },
  };
}

const W = [1, -1, 2, 0.5, -1, 1]; // 3x2
const BIAS = [0.5, -2];

/** Y = Relu(X·W + b) with X: float32[B, 3]. */
function tinyModel(calls?: Map<string, number>, metadata: Record<string, string> = { b: "2", a: "1" }): OnnxModel {
  return {
    graphName: "tiny",
    inputs: [{ name: "X", dataType: "float32", dims: ["B", 3] }],
    outputs: [{ name: "Y", dataType: "float32", dims: ["B", 2] }],
    nodes: [
      { op: "MatMul", name: "matmul", inputs: ["X", "W"], outputs: ["XW"] },
      { op: "Add", name: "add", inputs: ["XW", "b"], outputs: ["S"] },
      { op: "Relu", name: "relu", inputs: ["S"], outputs: ["Y"], docString: "clamps at zero" },
    ],
    initializers: [f32("W", [3, 2], W, calls), f32("b", [2], BIAS, calls)],
    opsetImports: [
      { domain: "", version: 17 },
      { domain: "com.microsoft", version: 1 },
    ],
    irVersion: 8,
    producerName: "vlmc",
    producerVersion: "0.1.0",
    docString: "tiny test model",
    metadata,
  };
}

const X = [1, 2, 3, -1, 0.5, 2];
// Worked by hand: row 0 -> [2 + 0.5, 3 - 2]; row 1 -> [relu(-2 + 0.5), 3.25 - 2].
const EXPECTED_Y = [2.5, 1, 0, 1.25];

async function runTiny(file: string): Promise<{ data: number[]; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(file);
  try {
    const out = await session.run({ X: new ort.Tensor("float32", new Float32Array(X), [2, 3]) });
    return { data: Array.from(out.Y!.data as Float32Array), dims: out.Y!.dims };
  } finally {
    await session.release();
  }
}

/** Tensors whose bytes live in one ScratchRing, each filled with its own index when produced. */
function ringModel(count: number, elements: (i: number) => number): OnnxModel {
  const ring = new ScratchRing();
  const initializers: OnnxTensor[] = Array.from({ length: count }, (_, i) => ({
    name: `t${i}`,
    dataType: "float32",
    dims: [elements(i)],
    bytes: () => {
      const bytes = ring.take(elements(i) * 4);
      new Float32Array(bytes.buffer, 0, elements(i)).fill(i);
      return bytes;
    },
  }));
  return { ...tinyModel(), nodes: [], inputs: [], outputs: [], initializers };
}

/** Each initializer's float32 values, whether inline or in `dir`'s external data file. */
function storedValues(file: string): Map<string, number[]> {
  const graph = decodeOnnxModel(fs.readFileSync(file)).graph!;
  return new Map(
    (graph.initializer ?? []).map((t) => {
      const offset = Number(t.externalData?.find((e) => e.key === "offset")?.value ?? 0);
      const length = Number(t.externalData?.find((e) => e.key === "length")?.value ?? 0);
      const raw = t.externalData?.length
        ? fs
            .readFileSync(path.join(path.dirname(file), t.externalData.find((e) => e.key === "location")!.value!))
            .subarray(offset, offset + length)
        : t.rawData!;
      return [t.name!, [...new Float32Array(Uint8Array.from(raw).buffer)]];
    }),
  );
}

describe("writeOnnxModel", () => {
  it("keeps each tensor's bytes until written when producers reuse memory (one write in flight)", async () => {
    const dir = tempFolder();
    // Sizes straddle the 1 KiB inline threshold of external mode, so both paths alternate.
    const elements = (i: number) => (i % 3 === 0 ? 100 : 4096 + i);
    for (const externalData of ["never", "always"] as const) {
      const file = path.join(dir, `${externalData}.onnx`);
      await writeOnnxModel(file, ringModel(9, elements), { externalData });
      const stored = storedValues(file);
      for (let i = 0; i < 9; i++)
        expect(stored.get(`t${i}`), `${externalData} t${i}`).toEqual(new Array(elements(i)).fill(i));
    }
  });

  it("writes an inline model that onnxruntime runs with a symbolic batch", async () => {
    const dir = tempFolder();
    const file = path.join(dir, "tiny.onnx");
    const result = await writeOnnxModel(file, tinyModel(), { externalData: "never" });

    expect(result).toEqual({ modelBytes: fs.statSync(file).size, externalBytes: 0 });
    expect(fs.readdirSync(dir)).toEqual(["tiny.onnx"]);
    expect(await runTiny(file)).toEqual({ data: EXPECTED_Y, dims: [2, 2] });

    const decoded = decodeOnnxModel(fs.readFileSync(file));
    expect(decoded.graph!.input![0]!.type!.tensorType!.shape!.dim![0]!.dimParam).toBe("B");
    expect(Number(decoded.graph!.input![0]!.type!.tensorType!.shape!.dim![1]!.dimValue)).toBe(3);
    expect(decoded.graph!.initializer!.map((t) => t.rawData!.length)).toEqual([24, 4 * 2]);
    expect(decoded.metadataProps!.map((p) => p.key)).toEqual(["a", "b"]);
  });

  it("streams initializers to an aligned external data file that onnxruntime loads", async () => {
    const dir = tempFolder();
    const file = path.join(dir, "tiny.onnx");
    const calls = new Map<string, number>();
    const progress: [number, number][] = [];
    const result = await writeOnnxModel(file, tinyModel(calls), {
      externalData: "always",
      inlineBelowBytes: 0,
      onProgress: (written, total) => progress.push([written, total]),
    });

    const dataFile = path.join(dir, "tiny.onnx.data");
    expect(result).toEqual({ modelBytes: fs.statSync(file).size, externalBytes: 4096 + 8, externalPath: dataFile });
    expect(fs.readdirSync(dir).sort()).toEqual(["tiny.onnx", "tiny.onnx.data"]);
    expect(Object.fromEntries(calls)).toEqual({ W: 1, b: 1 });
    expect(progress).toEqual([
      [24, 32],
      [32, 32],
    ]);

    const data = fs.readFileSync(dataFile);
    const decoded = decodeOnnxModel(fs.readFileSync(file));
    const layout = decoded.graph!.initializer!.map((t) => {
      const entries = Object.fromEntries(t.externalData!.map((e) => [e.key, e.value]));
      expect(t.dataLocation).toBe(1);
      expect(t.rawData!.length).toBe(0);
      const offset = Number(entries.offset);
      const length = Number(entries.length);
      const values = Array.from(
        new Float32Array(data.buffer.slice(data.byteOffset + offset, data.byteOffset + offset + length)),
      );
      return { name: t.name, location: entries.location, aligned: offset % 4096 === 0, offset, length, values };
    });
    expect(layout).toEqual([
      { name: "W", location: "tiny.onnx.data", aligned: true, offset: 0, length: 24, values: W },
      { name: "b", location: "tiny.onnx.data", aligned: true, offset: 4096, length: 8, values: BIAS },
    ]);

    expect(await runTiny(file)).toEqual({ data: EXPECTED_Y, dims: [2, 2] });
  });

  it("chooses external data in auto mode only above the threshold", async () => {
    const dir = tempFolder();
    const small = await writeOnnxModel(path.join(dir, "a.onnx"), tinyModel(), { externalData: "auto" });
    expect(small.externalBytes).toBe(0);
    const large = await writeOnnxModel(path.join(dir, "b.onnx"), tinyModel(), {
      externalData: "auto",
      externalThresholdBytes: 31,
    });
    expect(large.externalPath).toBe(path.join(dir, "b.onnx.data"));
    expect(fs.readdirSync(dir).sort()).toEqual(["a.onnx", "b.onnx", "b.onnx.data"]);
  });

  it("writes byte-identical files for the same description, wherever they are written", async () => {
    for (const externalData of ["never", "always"] as const) {
      const [dirA, dirB] = [tempFolder(), tempFolder()];
      await writeOnnxModel(path.join(dirA, "m.onnx"), tinyModel(undefined, { a: "1", b: "2" }), { externalData });
      await writeOnnxModel(path.join(dirB, "m.onnx"), tinyModel(undefined, { b: "2", a: "1" }), { externalData });
      await writeOnnxModel(path.join(dirB, "m.onnx"), tinyModel(), { externalData });

      const names = fs.readdirSync(dirA).sort();
      expect(fs.readdirSync(dirB).sort()).toEqual(names);
      for (const name of names) {
        const a = fs.readFileSync(path.join(dirA, name));
        expect(a.equals(fs.readFileSync(path.join(dirB, name)))).toBe(true);
        expect(a.includes(os.tmpdir())).toBe(false);
      }
      if (externalData === "never") {
        expect(Buffer.from(encodeOnnxModel(tinyModel())).equals(fs.readFileSync(path.join(dirA, "m.onnx")))).toBe(true);
      }
    }
  });

  it("removes a stale data file when the model is rewritten inline", async () => {
    const dir = tempFolder();
    const file = path.join(dir, "tiny.onnx");
    await writeOnnxModel(file, tinyModel(), { externalData: "always" });
    expect(fs.existsSync(`${file}.data`)).toBe(true);
    await writeOnnxModel(file, tinyModel(), { externalData: "never" });
    expect(fs.readdirSync(dir)).toEqual(["tiny.onnx"]);
    expect(await runTiny(file)).toEqual({ data: EXPECTED_Y, dims: [2, 2] });
  });

  it.each<WriteOptions["externalData"]>(["never", "always"])(
    "leaves the folder untouched when bytes() throws mid-write (%s)",
    async (externalData) => {
      const failing = (): OnnxModel => {
        const model = tinyModel();
        model.initializers[1] = {
          ...model.initializers[1]!,
          bytes: () => {
            throw new Error("producer failed");
          },
        };
        return model;
      };

      const fresh = tempFolder();
      await expect(writeOnnxModel(path.join(fresh, "m.onnx"), failing(), { externalData })).rejects.toThrow(
        "producer failed",
      );
      expect(fs.readdirSync(fresh)).toEqual([]);

      const existing = tempFolder();
      fs.writeFileSync(path.join(existing, "m.onnx"), "old model");
      fs.writeFileSync(path.join(existing, "m.onnx.data"), "old data");
      await expect(writeOnnxModel(path.join(existing, "m.onnx"), failing(), { externalData })).rejects.toThrow(
        "producer failed",
      );
      expect(fs.readdirSync(existing).sort()).toEqual(["m.onnx", "m.onnx.data"]);
      expect(fs.readFileSync(path.join(existing, "m.onnx"), "utf8")).toBe("old model");
      expect(fs.readFileSync(path.join(existing, "m.onnx.data"), "utf8")).toBe("old data");
    },
  );

  it("refuses to inline more than protobuf can hold, without producing any bytes", async () => {
    const dir = tempFolder();
    const model = tinyModel();
    model.initializers.push({
      name: "huge",
      dataType: "float16",
      dims: [2 ** 30],
      bytes: () => {
        throw new Error("bytes() must not be called");
      },
    });
    await expect(writeOnnxModel(path.join(dir, "m.onnx"), model, { externalData: "never" })).rejects.toThrow(
      /external data is required/,
    );
    expect(() => encodeOnnxModel(model)).toThrow(/external data is required/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it("rejects bytes() whose length disagrees with dims and dataType", async () => {
    const dir = tempFolder();
    const model = tinyModel();
    model.initializers[0] = f32("W", [3, 2], [1, 2, 3]);
    await expect(writeOnnxModel(path.join(dir, "m.onnx"), model, { externalData: "always" })).rejects.toThrow(
      /"W": bytes\(\) returned 12 bytes, expected 24/,
    );
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it("runs a com.microsoft op and an omitted optional input in onnxruntime", async () => {
    const dir = tempFolder();
    const file = path.join(dir, "ms.onnx");
    const alpha = 1.5;
    await writeOnnxModel(
      file,
      {
        ...tinyModel(),
        inputs: [{ name: "X", dataType: "float32", dims: ["N"] }],
        outputs: [{ name: "Y", dataType: "float32", dims: ["N"] }],
        nodes: [
          {
            op: "QuickGelu",
            domain: "com.microsoft",
            name: "gelu",
            inputs: ["X"],
            outputs: ["G"],
            attributes: { alpha: { kind: "float", value: alpha } },
          },
          { op: "Clip", name: "clip", inputs: ["G", "", "max"], outputs: ["Y"] },
        ],
        initializers: [f32("max", [], [2])],
      },
      { externalData: "never" },
    );
    const xs = [-3, -0.5, 0, 1, 4];
    const session = await ort.InferenceSession.create(file);
    const out = await session.run({ X: new ort.Tensor("float32", new Float32Array(xs), [xs.length]) });
    await session.release();
    const expected = xs.map((x) => Math.min(x / (1 + Math.exp(-alpha * x)), 2));
    const actual = Array.from(out.Y!.data as Float32Array);
    actual.forEach((y, i) => expect(y).toBeCloseTo(expected[i]!, 5));
    expect(actual[4]).toBe(2);
  });
});

describe("encodeOnnxModel / decodeOnnxModel", () => {
  it("round-trips an attribute of each kind", () => {
    const model = tinyModel();
    model.nodes = [
      {
        op: "Custom",
        domain: "vlmc.test",
        name: "attrs",
        inputs: ["X"],
        outputs: ["Y"],
        attributes: {
          i: { kind: "int", value: 2 ** 40 + 1 },
          f: { kind: "float", value: -1.25 },
          s: { kind: "string", value: "héllo" },
          ints: { kind: "ints", value: [-1, 0, 7] },
          floats: { kind: "floats", value: [0.5, 3] },
          t: {
            kind: "tensor",
            value: {
              name: "c",
              dataType: "int64",
              dims: [2],
              bytes: () => new Uint8Array(new BigInt64Array([5n, -6n]).buffer),
            },
          },
        },
      },
    ];
    const node = decodeOnnxModel(encodeOnnxModel(model)).graph!.node![0]!;
    expect(node.domain).toBe("vlmc.test");
    const attrs = Object.fromEntries(node.attribute!.map((a) => [a.name, a]));
    expect(node.attribute!.map((a) => a.name)).toEqual(["f", "floats", "i", "ints", "s", "t"]);
    expect(attrs.i!.type).toBe(2);
    expect(Number(attrs.i!.i)).toBe(2 ** 40 + 1);
    expect(attrs.f!.type).toBe(1);
    expect(attrs.f!.f).toBe(-1.25);
    expect(attrs.s!.type).toBe(3);
    expect(new TextDecoder().decode(attrs.s!.s)).toBe("héllo");
    expect(attrs.ints!.type).toBe(7);
    expect(attrs.ints!.ints.map(Number)).toEqual([-1, 0, 7]);
    expect(attrs.floats!.type).toBe(6);
    expect(attrs.floats!.floats).toEqual([0.5, 3]);
    expect(attrs.t!.type).toBe(4);
    const t = attrs.t!.t!;
    expect([t.name, t.dataType, t.dims.map(Number)]).toEqual(["c", 7, [2]]);
    expect(Array.from(new BigInt64Array(new Uint8Array(t.rawData).buffer))).toEqual([5n, -6n]);
  });

  it("rejects an int attribute that is not a safe integer", () => {
    const model = tinyModel();
    model.nodes[0]!.attributes = { n: { kind: "int", value: 1.5 } };
    expect(() => encodeOnnxModel(model)).toThrow(/attribute "n": 1.5 is not a safe integer/);
  });
});

// `vlmc compile` and `vlmc run` in-process: files written, statistics printed, inputs from .npy,
// outputs saved, and the diagnostics for bad inputs and runtime failures.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { readNpy, writeNpy } from "../runtime/npy.js";
import { runCli } from "./main.js";
import { captureIo } from "../../test/helpers/capture-io.js";

const folders: string[] = [];
afterEach(() => {
  for (const dir of folders.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A folder holding spec.vlm: an id embedding summed over tokens, and a scaled copy of x. */
function setup(): { dir: string; spec: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vlmc-run-test-"));
  folders.push(dir);
  const spec = path.join(dir, "spec.vlm");
  fs.writeFileSync(
    spec,
    `model m {
  emb = embedding(50, 4)
  forward(ids: i64[B, T], x: f32[B, 4]) {
    return pooled: sum(emb(ids), axis: 1) + x, twice: x * 2.0
  }
}
`,
  );
  return { dir, spec };
}

describe("vlmc compile", () => {
  it("writes the model, prints its path, and draws progress only on a terminal", async () => {
    const { dir, spec } = setup();
    const out = path.join(dir, "m.onnx");
    const tty = captureIo({ isTty: true });
    expect(await runCli(["compile", spec, "-o", out, "--seed", "5", "--external-data", "never"], tty.io)).toBe(0);
    expect(tty.out).toBe(`${out}\n`);
    expect(tty.err).toContain("MB/s");
    const plain = captureIo();
    expect(await runCli(["compile", spec, "-o", out], plain.io)).toBe(0);
    expect(plain.err).toBe("");
  });

  it("exits 1 with diagnostics, and 2 on bad options", async () => {
    const { dir, spec } = setup();
    const c = captureIo();
    expect(await runCli(["compile", spec, "--weights", path.join(dir, "none.safetensors")], c.io)).toBe(1);
    expect(c.err).toContain("VLM4001");
    expect(await runCli(["compile", spec, "--seed", "x"], captureIo().io)).toBe(2);
    expect(await runCli(["compile", spec, "--external-data", "maybe"], captureIo().io)).toBe(2);
  });
});

describe("vlmc run", () => {
  it("runs a compiled model on random inputs and prints statistics as text or JSON", async () => {
    const { dir, spec } = setup();
    const model = path.join(dir, "m.onnx");
    await runCli(["compile", spec, "-o", model], captureIo().io);
    const text = captureIo();
    expect(await runCli(["run", model], text.io)).toBe(0);
    expect(text.out).toMatch(
      /^sizes {2}B = 1, T = 8\npooled {2}float32\[1, 4\] {2}mean \S+ {2}std \S+ {2}min \S+ {2}max \S+\ntwice {2}float32\[1, 4\]/,
    );
    const json = captureIo();
    expect(await runCli(["run", model, "--json", "--seed", "3"], json.io)).toBe(0);
    const parsed = JSON.parse(json.out);
    expect(parsed.outputs.map((o: { name: string; shape: number[] }) => [o.name, o.shape])).toEqual([
      ["pooled", [1, 4]],
      ["twice", [1, 4]],
    ]);
    // Random inputs are reproducible by seed.
    const again = captureIo();
    await runCli(["run", model, "--json", "--seed", "3"], again.io);
    expect(again.out).toBe(json.out);
  });

  it("reads inputs from .npy files and saves the outputs", async () => {
    const { dir, spec } = setup();
    const x = path.join(dir, "x.npy");
    writeNpy(x, { dtype: "<f4", shape: [2, 4], data: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]) });
    const saved = path.join(dir, "outputs");
    const c = captureIo();
    // A .vlm is compiled first.
    expect(
      await runCli(
        ["run", spec, "--input", `x=${x}`, "--input", "ids=random", "--save-outputs", saved, "--json"],
        c.io,
      ),
    ).toBe(0);
    expect(JSON.parse(c.out).outputs[1]).toMatchObject({ name: "twice", shape: [2, 4], mean: 9, min: 2, max: 16 });
    expect(readNpy(path.join(saved, "twice.npy"))).toEqual({
      dtype: "<f4",
      shape: [2, 4],
      data: Float32Array.from([2, 4, 6, 8, 10, 12, 14, 16]),
    });
  });

  it("reports unreadable inputs as VLM4008 and runtime failures as VLM4007", async () => {
    const { dir, spec } = setup();
    const model = path.join(dir, "m.onnx");
    await runCli(["compile", spec, "-o", model], captureIo().io);
    const junk = path.join(dir, "junk.npy");
    fs.writeFileSync(junk, "not numpy");
    const bad = captureIo();
    expect(await runCli(["run", model, "--input", `x=${junk}`], bad.io)).toBe(1);
    expect(bad.err).toContain("VLM4008");
    const unknown = captureIo();
    expect(await runCli(["run", model, "--input", `y=${junk}`], unknown.io)).toBe(1);
    expect(unknown.err).toContain('no input named "y"');

    // An id past the table's 50 rows is refused before the session runs, naming the input.
    const far = path.join(dir, "far.npy");
    writeNpy(far, { dtype: "<i8", shape: [1, 2], data: BigInt64Array.from([1n, 99n]) });
    const outside = captureIo();
    expect(await runCli(["run", model, "--input", `ids=${far}`], outside.io)).toBe(1);
    expect(outside.err).toMatch(
      /^error VLM4008: input "ids" holds 99 at flat index 1, but it indexes a table of 50 rows/,
    );

    // A file onnxruntime cannot load.
    const broken = path.join(dir, "broken.onnx");
    fs.writeFileSync(broken, "not onnx");
    const failed = captureIo();
    expect(await runCli(["run", broken], failed.io)).toBe(1);
    expect(failed.err).toContain("VLM4007");
  });
});

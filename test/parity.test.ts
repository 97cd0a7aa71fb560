// Parity with PyTorch. Each folder of test/fixtures/parity (written by
// scripts/parity/make_fixtures.py, see docs/parity.md) holds a small spec, random weights under
// vlmc's parameter names, inputs and the outputs of an independent PyTorch reference (torchvision,
// or modules mirroring HF transformers / LAVIS / open_flamingo) computed in float64. Here each
// spec is compiled with those weights, run in onnxruntime on the same inputs, and every output must
// agree within the case's tolerance (max absolute error ≤ 1e-4 in float32). No Python needed.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, describe, expect, it } from "vitest";
import { compile } from "../src/driver/compile.js";
import { readNpy, type NpyArray } from "../src/runtime/npy.js";
import { fixtureWeights, recipeValues } from "./helpers/parity-fixtures.js";

const ROOT = path.join(import.meta.dirname, "fixtures", "parity");
/** The fixtures are committed; keep them small. */
const MAX_FIXTURE_BYTES = 5 * 1024 * 1024;

interface GraphFixture {
  readonly inputs: Readonly<Record<string, string>>;
  readonly outputs: Readonly<Record<string, string>>;
}

interface CaseManifest {
  readonly description: string;
  readonly reference: string;
  /**
   * `weights.safetensors`, `weights.recipe.json` (hash-generated weights, see below), a checkpoint
   * folder, or null when the spec's own `weights … from` declarations name its checkpoints.
   */
  readonly weights: string | null;
  readonly tolerance: number;
  readonly graphs: Readonly<Record<string, GraphFixture>>;
}

const ORT_TYPES: Partial<Record<NpyArray["dtype"], ort.Tensor.Type>> = {
  "<f4": "float32",
  "<i8": "int64",
  "<i4": "int32",
  "|b1": "bool",
  "|u1": "uint8",
};

function npyTensor(file: string): ort.Tensor {
  const a = readNpy(file);
  const type = ORT_TYPES[a.dtype];
  if (!type) throw new Error(`${file}: no onnxruntime type for ${a.dtype}`);
  return new ort.Tensor(type, a.data, a.shape);
}

interface Mismatch {
  readonly output: string;
  readonly detail: string;
}

/** Max |actual − expected| over an output, or a description of a shape / type mismatch. */
function maxAbsError(actual: ort.Tensor, expected: NpyArray): number | string {
  if (expected.dtype !== "<f4") return `expected .npy has dtype ${expected.dtype}, not <f4`;
  if (actual.type !== "float32") return `output is ${actual.type}, not float32`;
  if (JSON.stringify([...actual.dims]) !== JSON.stringify(expected.shape))
    return `shape [${actual.dims.join(", ")}], expected [${expected.shape.join(", ")}]`;
  const a = actual.data as Float32Array;
  const e = expected.data;
  let worst = 0;
  for (let i = 0; i < e.length; i++) {
    const d = Math.abs(a[i]! - e[i]!);
    if (!(d <= worst)) worst = d; // NaN propagates as the worst error
  }
  return worst;
}

const folders: string[] = [];
const errors: { name: string; graph: string; output: string; error: number; tolerance: number }[] = [];

afterAll(() => {
  for (const dir of folders.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  if (process.env["VLMC_PARITY_REPORT"]) {
    const lines = errors.map(
      (e) =>
        `${e.name.padEnd(20)} ${`${e.graph}.${e.output}`.padEnd(34)} ${e.error.toExponential(2)}  (≤ ${e.tolerance})`,
    );
    console.log(`max abs error per output\n${lines.join("\n")}`);
  }
});

const cases = fs.existsSync(ROOT)
  ? fs
      .readdirSync(ROOT)
      .filter((n) => fs.existsSync(path.join(ROOT, n, "case.json")))
      .sort()
  : [];

describe("parity fixtures", () => {
  it("exist and stay small", () => {
    expect(cases.length).toBeGreaterThan(0);
    let bytes = 0;
    for (const n of cases)
      for (const f of fs.readdirSync(path.join(ROOT, n), { recursive: true, encoding: "utf8" })) {
        const stat = fs.statSync(path.join(ROOT, n, f));
        if (stat.isFile()) bytes += stat.size; // checkpoint folders included
      }
    expect(bytes).toBeLessThanOrEqual(MAX_FIXTURE_BYTES);
  });

  it("the recipe generator reproduces Python's values", () => {
    // Values printed by scripts/parity/common.py: recipe_values(7, (4,), 0.5, 1.0).
    expect(Array.from(recipeValues(7, 4, 0.5, 1.0))).toEqual(RECIPE_CHECK);
  });
});

// recipe_values(7, (4,), 0.5, 1.0) as computed by Python (see docs/parity.md).
const RECIPE_CHECK = [0.6370641589164734, 0.9510822296142578, 1.4981012344360352, 1.0523247718811035];

/** Cases that load library-written checkpoints (hf_*, the seed systems, any with a `checkpoint` folder) also run on ort-cpu, whose fused kernels they exercise. */
function targetsOf(name: string, manifest: CaseManifest): readonly ("portable" | "ort-cpu")[] {
  const checkpoint = name.startsWith("hf_") || name.startsWith("seed_") || manifest.weights === "checkpoint";
  return checkpoint ? ["portable", "ort-cpu"] : ["portable"];
}

describe("parity with PyTorch (fp32, onnxruntime)", () => {
  for (const name of cases) {
    const dir = path.join(ROOT, name);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, "case.json"), "utf8")) as CaseManifest;
    for (const target of targetsOf(name, manifest))
      it(`${name} (${target}): ${manifest.description}`, async () => {
        const out = fs.mkdtempSync(path.join(os.tmpdir(), `vlmc-parity-${name}-`));
        folders.push(out);
        const weights = fixtureWeights(dir, out);
        const result = await compile([path.join(dir, "spec.vlm")], { weights, out: path.join(out, "onnx"), target });
        expect(result.diagnostics.filter((d) => d.severity === "error").map((d) => `${d.code} ${d.message}`)).toEqual(
          [],
        );
        expect(result.files.map((f) => f.graph).sort()).toEqual(Object.keys(manifest.graphs).sort());

        const mismatches: Mismatch[] = [];
        for (const file of result.files) {
          const fixture = manifest.graphs[file.graph]!;
          const feeds: Record<string, ort.Tensor> = {};
          for (const [input, npy] of Object.entries(fixture.inputs)) feeds[input] = npyTensor(path.join(dir, npy));
          const session = await ort.InferenceSession.create(file.path);
          try {
            expect([...session.inputNames].sort(), `${file.graph} inputs`).toEqual(Object.keys(fixture.inputs).sort());
            expect([...session.outputNames].sort(), `${file.graph} outputs`).toEqual(
              Object.keys(fixture.outputs).sort(),
            );
            const results = await session.run(feeds);
            for (const [output, npy] of Object.entries(fixture.outputs)) {
              const error = maxAbsError(results[output]!, readNpy(path.join(dir, npy)));
              if (typeof error === "number")
                errors.push({
                  name: `${name} ${target}`,
                  graph: file.graph,
                  output,
                  error,
                  tolerance: manifest.tolerance,
                });
              if (typeof error === "string") mismatches.push({ output: `${file.graph}.${output}`, detail: error });
              else if (!(error <= manifest.tolerance))
                mismatches.push({
                  output: `${file.graph}.${output}`,
                  detail: `max abs error ${error} > ${manifest.tolerance}`,
                });
            }
          } finally {
            await session.release();
          }
        }
        expect(mismatches).toEqual([]);
      });
  }
});

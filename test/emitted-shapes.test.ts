// Every model vlmc emits for the small specs loads in onnxruntime-node and produces exactly the
// output shapes elaboration (and so `vlmc summary`) promised, with symbols given concrete values.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, describe, expect, it } from "vitest";
import { compile } from "../src/driver/compile.js";
import { elaborate } from "../src/driver/check.js";
import type { Dim } from "../src/ir/dims.js";
import type { DType } from "../src/ir/types.js";

const ROOT = path.join(import.meta.dirname, "fixtures", "parity");
const specs = fs.existsSync(ROOT)
  ? fs
      .readdirSync(ROOT)
      .filter((n) => fs.existsSync(path.join(ROOT, n, "spec.vlm")))
      .sort()
  : [];
const temp: string[] = [];
afterAll(() => {
  for (const d of temp) fs.rmSync(d, { recursive: true, force: true });
});

/** A symbol's value: its bound when it has one (capped), else 2 — small, and not 1, so broadcasting bugs show. */
function symbolValue(name: string, bounds: ReadonlyMap<string, number>): number {
  return Math.min(bounds.get(name) ?? 2, 8);
}

function evaluate(d: Dim, values: ReadonlyMap<string, number>): number {
  if (typeof d === "number") return d;
  let total = 0;
  for (const [monomial, coefficient] of d)
    total +=
      coefficient *
      monomial
        .split("*")
        .filter((s) => s !== "")
        .reduce((p, s) => p * values.get(s)!, 1);
  return total;
}

const ORT_TYPE: Partial<Record<DType, ort.Tensor.Type>> = { f32: "float32", i64: "int64", i32: "int32", bool: "bool" };

/** Deterministic inputs; integer ids are 0 and 1, valid for every embedding (token types have two rows). */
function input(dtype: DType, shape: number[]): ort.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const type = ORT_TYPE[dtype]!;
  if (type === "int64")
    return new ort.Tensor(
      type,
      BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 2)),
      shape,
    );
  if (type === "bool")
    return new ort.Tensor(
      type,
      Uint8Array.from({ length: n }, (_, i) => i % 2),
      shape,
    );
  if (type === "int32")
    return new ort.Tensor(
      type,
      Int32Array.from({ length: n }, (_, i) => i % 2),
      shape,
    );
  return new ort.Tensor(
    type,
    Float32Array.from({ length: n }, (_, i) => Math.sin(i)),
    shape,
  );
}

describe("emitted models produce the promised shapes", () => {
  it("has specs", () => expect(specs.length).toBeGreaterThan(10));
  for (const name of specs) {
    it(name, async () => {
      const spec = path.relative(process.cwd(), path.join(ROOT, name, "spec.vlm"));
      const elaborated = elaborate([spec]);
      expect(elaborated.ok).toBe(true);
      const out = fs.mkdtempSync(path.join(os.tmpdir(), `vlmc-shapes-${name}-`));
      temp.push(out);
      const compiled = await compile([spec], { out, passes: ["-unused-values"] });
      expect(compiled.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
      for (const m of elaborated.models) {
        for (const g of m.module!.graphs) {
          const file = compiled.files.find((f) => f.model === m.decl.name && f.graph === g.name)!;
          const values = new Map<string, number>();
          for (const v of g.inputs)
            for (const d of v.type.shape)
              if (typeof d !== "number")
                for (const k of d.keys()) for (const s of k.split("*")) if (s) values.set(s, symbolValue(s, g.bounds));
          const feeds: Record<string, ort.Tensor> = {};
          for (const v of g.inputs)
            feeds[(v.source as { name: string }).name] = input(
              v.type.dtype,
              v.type.shape.map((d) => evaluate(d, values)),
            );
          const session = await ort.InferenceSession.create(file.path);
          const results = await session.run(feeds);
          for (const o of g.outputs)
            expect([...results[o.name]!.dims], `${m.decl.name}/${g.name}/${o.name}`).toEqual(
              o.value.type.shape.map((d) => evaluate(d, values)),
            );
          await session.release();
        }
      }
    });
  }
});

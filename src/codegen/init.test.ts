// Tests of seeded initialisation: each parameter's values depend only on its name, its
// initializer and the seed, and follow the declared distribution.

import { describe, expect, it } from "vitest";
import type { Initializer, Param } from "../ir/graph.js";
import { tensorType } from "../ir/types.js";
import { encodeFloats, initialValues } from "./init.js";
import { fnv1a, Rng } from "../numerics/rng.js";

function param(name: string, shape: number[], init: Initializer): Param {
  return {
    name,
    type: tensorType("f32", shape),
    init,
    component: "",
    role: undefined,
    frozen: false,
    buffer: false,
    span: { file: "t.vlm", start: 0, end: 0 },
  };
}

function moments(values: Float32Array): { mean: number; std: number } {
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  return { mean, std: Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length) };
}

describe("initialValues", () => {
  it("depends on the name and the seed only", () => {
    const a = param("vision.fc1.weight", [64, 32], { kind: "normal", std: 0.02, mean: 0 });
    const first = initialValues(a, 0);
    // Other parameters drawn in between change nothing.
    initialValues(param("other", [1000], { kind: "normal", std: 1, mean: 0 }), 0);
    expect(initialValues(a, 0)).toEqual(first);
    expect(initialValues({ ...a, name: "vision.fc2.weight" }, 0)).not.toEqual(first);
    expect(initialValues(a, 1)).not.toEqual(first);
  });

  it("follows normal, uniform, full, ones and zeros", () => {
    const normal = moments(initialValues(param("n", [100_000], { kind: "normal", std: 2, mean: 3 }), 0));
    expect(normal.mean).toBeCloseTo(3, 1);
    expect(normal.std).toBeCloseTo(2, 1);
    const uniform = initialValues(param("u", [100_000], { kind: "uniform", bound: 0.5 }), 0);
    expect(Math.max(...uniform)).toBeLessThanOrEqual(0.5);
    expect(Math.min(...uniform)).toBeGreaterThanOrEqual(-0.5);
    expect(moments(uniform).std).toBeCloseTo(0.5 / Math.sqrt(3), 2);
    expect([...initialValues(param("f", [3], { kind: "full", value: 0.25 }), 0)]).toEqual([0.25, 0.25, 0.25]);
    expect([...initialValues(param("o", [2], { kind: "ones" }), 0)]).toEqual([1, 1]);
    expect([...initialValues(param("z", [2, 2], { kind: "zeros" }), 0)]).toEqual([0, 0, 0, 0]);
  });

  it("encodes as f32, f16 and bf16", () => {
    const values = Float32Array.from([1, -2.5]);
    expect([...new Float32Array(encodeFloats(values, "f32").slice().buffer)]).toEqual([1, -2.5]);
    expect([...new Uint16Array(encodeFloats(values, "f16").slice().buffer)]).toEqual([0x3c00, 0xc100]);
    expect([...new Uint16Array(encodeFloats(values, "bf16").slice().buffer)]).toEqual([0x3f80, 0xc020]);
  });
});

describe("Rng", () => {
  it("draws normals with the right tails, fillNormal giving normal()'s sequence", () => {
    const n = 1 << 20;
    const values = new Float32Array(n);
    new Rng(3).fillNormal(values, 0, 1);
    const { mean, std } = moments(values);
    expect(Math.abs(mean)).toBeLessThan(0.005);
    expect(Math.abs(std - 1)).toBeLessThan(0.005);
    // Beyond 3σ and 4σ (the ziggurat's wedges and its tail past 3.44): 0.27% and 0.0063%.
    const beyond = (t: number) => values.filter((v) => Math.abs(v) > t).length / n;
    expect(beyond(3)).toBeGreaterThan(0.0024);
    expect(beyond(3)).toBeLessThan(0.003);
    expect(beyond(4)).toBeGreaterThan(0.00004);
    expect(beyond(4)).toBeLessThan(0.00009);
    const one = new Rng(3);
    expect(Float32Array.from({ length: 1000 }, () => one.normal())).toEqual(values.subarray(0, 1000));
  });

  it("is xoshiro128** seeded through splitmix32, stable across releases", () => {
    // Pinned so a change to the generator (which would change every compiled model) is noticed.
    const r = new Rng(fnv1a("x"));
    expect(fnv1a("x")).toBe(0xfd0c5087);
    expect([r.nextU32(), r.nextU32(), r.nextU32()]).toMatchInlineSnapshot(`
      [
        1037029280,
        784231974,
        2942602671,
      ]
    `);
  });
});

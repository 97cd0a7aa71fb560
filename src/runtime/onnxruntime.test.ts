// float32s: how the generation runtime reads logits and image features whatever float width a
// package's graphs return them in.

import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { float32ToFloat16 } from "../numerics/float-convert.js";
import { float32s } from "./onnxruntime.js";

describe("float32s", () => {
  it("widens float16 tensors, passes float32 ones through, and refuses other types", () => {
    const values = Float32Array.from([0, 1.5, -2.25, 65504, 1e-3]);
    const half = new ort.Tensor("float16", float32ToFloat16(values), [5]);
    const widened = float32s(half);
    expect(widened.slice(0, 4)).toEqual(values.slice(0, 4));
    expect(Math.abs(widened[4]! - 1e-3)).toBeLessThan(1e-6);
    const full = new ort.Tensor("float32", values, [5]);
    expect(float32s(full)).toBe(values);
    expect(() => float32s(new ort.Tensor("int64", BigInt64Array.from([1n]), [1]))).toThrow(/float tensor/);
  });
});

// Precomputed values evaluated on the bytes: a concatenation of transposed parameters (the packed
// q/k/v weight fused attention makes) and of plain ones (its bias) equals what onnxruntime
// computes for the same values, is computed without it from parameters read into reused buffers,
// when the writer reaches it, without touching the buffer of the tensor still being written.

import { describe, expect, it } from "vitest";
import { Graph, type Param, type Value } from "../ir/graph.js";
import { tensorType } from "../ir/types.js";
import { SPAN, testModule, testParam } from "../../test/helpers/graph-fixtures.js";
import type { LowerOptions } from "./lower.js";
import { evaluatePrecomputed } from "./precompute.js";
import { ScratchRing } from "../numerics/scratch.js";
import { TARGETS } from "../target/target.js";

describe("precomputed values on the bytes", () => {
  it("concatenates transposed parameters along axis 1 and plain ones along axis 0, as onnxruntime does", async () => {
    const g = new Graph("forward");
    const sub = (g.precomputed = new Graph("forward.precomputed"));
    const params: Param[] = [
      testParam("q.weight", [3, 4]),
      testParam("k.weight", [3, 4]),
      testParam("v.weight", [5, 4]),
      testParam("q.bias", [3]),
      testParam("v.bias", [5]),
    ];
    const [wq, wk, wv, bq, bv] = params.map((p) => sub.paramValue(p)) as [Value, Value, Value, Value, Value];
    const add = (op: string, inputs: Value[], shape: number[], attrs: Record<string, number | number[]>) =>
      sub.addNode(op, inputs, [tensorType("f32", shape)], attrs, "/test", SPAN).outputs[0]!;
    const transposed = [wq, wk, wv].map((w) => add("Transpose", [w], [4, w.type.shape[0] as number], { perm: [1, 0] }));
    const weight = add("Concat", transposed, [4, 11], { axis: 1 });
    sub.setOutput("folded.0", weight);
    sub.setOutput("folded.1", add("Concat", [bq, bv, bq], [11], { axis: -1 }));
    // The same weight through a Reshape is no layout chain or concatenation of them: onnxruntime computes it.
    sub.setOutput("folded.2", add("Reshape", [weight], [4, 11], { shape: [4, 11] }));

    // Parameter p holds 100·p + i at flat index i, read into reused buffers as compile does.
    const values = (p: Param) =>
      Float32Array.from(
        { length: (p.type.shape as number[]).reduce((a, b) => a * b, 1) },
        (_, i) => 100 * params.indexOf(p) + i,
      );
    const [reads, transposes] = [new ScratchRing(), new ScratchRing()];
    const options: LowerOptions = {
      paramBytes: (p, allocate = reads.take) => {
        const bytes = new Uint8Array(values(p).buffer);
        const out = allocate(bytes.byteLength);
        out.set(bytes);
        return out;
      },
      allocate: transposes.take,
      target: TARGETS.portable,
      location: () => "",
      metadata: {},
    };
    const evaluated = await evaluatePrecomputed(testModule([g], params), g, options);
    // The writer holds the previous tensor (from either ring) while it asks for the next one.
    const inFlight = [options.paramBytes(params[4]!), transposes.take(64).fill(7)];
    const before = inFlight.map((b) => b.slice());
    const floats = (name: string) => Array.from(new Float32Array(evaluated.get(name)!().slice().buffer));

    // Row r of the packed weight: column r of Wqᵀ… i.e. input feature r of each output row, q then k then v.
    const expected = Array.from({ length: 4 }, (_, r) =>
      [0, 1, 2].flatMap((p) => Array.from({ length: p === 2 ? 5 : 3 }, (_, o) => 100 * p + o * 4 + r)),
    ).flat();
    expect(floats("folded.0")).toEqual(expected);
    expect(inFlight).toEqual(before);
    expect(floats("folded.1")).toEqual([300, 301, 302, 400, 401, 402, 403, 404, 300, 301, 302]);
    expect(floats("folded.2")).toEqual(expected);
  });
});

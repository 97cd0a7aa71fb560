// The op vocabulary: the verifier accepts the core and dialect ops of ops.ts and rejects any other name.

import { describe, expect, it } from "vitest";
import { node } from "../../test/helpers/graph-fixtures.js";
import { Graph } from "./graph.js";
import { CORE_OPS, isIrOp, ORT_PREFIX, PRECOMPUTED, QUANT_LINEAR, STORED_CAST } from "./ops.js";
import { tensorType } from "./types.js";
import { verifyGraph } from "./verify.js";

describe("IR ops", () => {
  it("knows the core ops and every dialect, and nothing else", () => {
    for (const op of [...CORE_OPS, PRECOMPUTED, QUANT_LINEAR, STORED_CAST, `${ORT_PREFIX}Attention`])
      expect(isIrOp(op), op).toBe(true);
    for (const op of ["Gemm", "quant.Conv", "precision.Round", "linear", ""]) expect(isIrOp(op), op).toBe(false);
  });

  it("the verifier names a node whose op is not declared", () => {
    const g = new Graph("g");
    const x = g.addInput("x", tensorType("f32", [2]));
    g.setOutput("y", node(g, "Gemm", [x]));
    expect(verifyGraph(g)).toEqual([expect.stringMatching(/^Gemm#\d+ is not an op of the IR/)]);
  });
});

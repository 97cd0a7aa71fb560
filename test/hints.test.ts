// Hints: imports suggest a near spelling first, else the longest shared prefix; a list of blocks
// points at repeat(n, i).

import { describe, expect, it } from "vitest";
import { check } from "../src/driver/check.js";
import { suggestExport } from "../src/lang/check/resolve.js";

describe("suggestExport", () => {
  const std = ["clip_vision", "clip_vision_embeddings", "clip_text", "eva_vit", "mlp2x_gelu", "llama"];
  it("prefers a near spelling", () => expect(suggestExport("lama", std)).toBe("llama"));
  it("falls back to the longest shared prefix, shortest name", () =>
    expect(suggestExport("clip_vit", std)).toBe("clip_vision"));
  it("says nothing when nothing is close", () => expect(suggestExport("resnet", std)).toBeUndefined());
});

describe("unknown std import", () => {
  it("hints at the std block the user meant", () => {
    const result = check(["test/diagnostics/std-imports.vlm"]);
    const d = result.diagnostics.find((x) => x.code === "VLM2008");
    expect(d?.hint).toBe('did you mean "clip_vision"?');
  });
});

describe("a list of blocks as a component", () => {
  it("points at repeat(n, i)", () => {
    const result = check(["test/diagnostics/arg-spelling.vlm"]);
    const d = result.diagnostics.find((x) => x.code === "VLM2005");
    expect(d?.hint).toContain("repeat(n, i)");
  });
});

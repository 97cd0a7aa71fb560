// What `vlmc graph` draws: components with role colours, frozen shading and parameter counts;
// edges with shapes and proved token counts; repeats drawn once with their count; ops with the
// rules that rewrote them and near misses; coded errors for a bad model, graph or block.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { fillOf } from "../pictures/dot.js";
import { drawGraph } from "./graph.js";

const ROOT = path.resolve(import.meta.dirname, "..", "..");
const LLAVA = path.join(ROOT, "examples", "llava.vlm");
const TINY = path.join(ROOT, "test", "golden", "tiny-blocks.vlm");

/** `"id" [attrs]` lines of a DOT text, by id. */
function nodes(dot: string): Map<string, string> {
  return new Map([...dot.matchAll(/^\s*"([^"]+)" \[(.*)\];$/gm)].map((m) => [m[1]!, m[2]!]));
}

function edges(dot: string): { from: string; to: string; attrs: string }[] {
  return [...dot.matchAll(/^\s*"([^"]+)" -> "([^"]+)" \[(.*)\];$/gm)].map((m) => ({
    from: m[1]!,
    to: m[2]!,
    attrs: m[3]!,
  }));
}

describe("vlmc graph: components", () => {
  it("draws LLaVA's components by role, frozen ones shaded, with parameter counts and a proved token count", async () => {
    const r = await drawGraph([LLAVA], { model: "llava_1_5_7b", format: "dot" });
    expect(r.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const n = nodes(r.text!);
    expect(n.get("c:vision")).toContain(`fillcolor="${fillOf("encoder", true)}"`);
    expect(n.get("c:vision")).toContain("303.5M params · frozen");
    expect(n.get("c:proj")).toContain(`fillcolor="${fillOf("fusion", false)}"`);
    expect(n.get("c:llm")).toContain("6.74B params · frozen");
    const e = edges(r.text!);
    const fromProj = e.filter((x) => x.from === "c:proj");
    expect(fromProj).toHaveLength(1);
    expect(fromProj[0]!.attrs).toContain("f32[B, 576, 4096]\\n576 tokens (proved)");
    expect(e.some((x) => x.from === "in:pixels" && x.to === "c:vision")).toBe(true);
    expect(e.some((x) => x.from === "c:llm" && x.to === "out:logits")).toBe(true);
  });

  it("lays the picture out as SVG with Graphviz", async () => {
    const r = await drawGraph([LLAVA], { model: "llava_1_5_7b", format: "svg" });
    expect(r.text).toMatch(/<svg[\s\S]*<g id="c:vision" class="node vlmbox">/);
    // The README shows this picture; refresh it with the command in docs/pictures.md.
    expect(r.text).toBe(fs.readFileSync(path.join(ROOT, "docs", "images", "llava.svg"), "utf8"));
  });
});

describe("vlmc graph: blocks", () => {
  it("opens components into blocks and draws each repeat once with its count", async () => {
    const dot = (await drawGraph([LLAVA], { model: "llava_1_5_7b", level: "blocks", format: "dot" })).text!;
    // The vision tower declares 24 layers; `layer: -2` runs 23 of them.
    expect(dot).toContain('label="encoder.layers × 24 (23 run)"');
    expect(dot).toContain('label="layers × 32"');
    const n = nodes(dot);
    expect(n.get("b:llm/layers/*/self_attn")).toContain("67.1M params per layer");
    // Nothing from layer 1 on gets a box of its own.
    expect([...n.keys()].some((k) => /layers\/[1-9]/.test(k))).toBe(false);
  });
});

describe("vlmc graph: ops", () => {
  it("marks ops a rule rewrote and near misses with the rule's name", async () => {
    const dot = (await drawGraph([TINY], { model: "tiny_vit", level: "ops", target: "ort-cpu", format: "dot" })).text!;
    const n = [...nodes(dot).values()];
    expect(n.some((a) => a.includes("ort.Attention") && a.includes("← attention-qkv-slices"))).toBe(true);
    const misses = n.filter((a) => a.includes("near miss: skip-layer-norm"));
    expect(misses.length).toBeGreaterThan(0);
    expect(misses.every((a) => a.includes("dashed"))).toBe(true);
  });

  it("draws only the ops under --block, with what flows in and out", async () => {
    const dot = (await drawGraph([LLAVA], { model: "llava_1_5_7b", level: "ops", block: "proj", format: "dot" })).text!;
    const ops = [...nodes(dot).keys()].filter((k) => k.startsWith("n:"));
    expect(ops.length).toBeGreaterThanOrEqual(3); // two Linears and the GELU
    expect(dot).toContain("from (model)\\nSlice"); // the class token dropped
    expect(dot).toContain('"y:');
  });
});

describe("vlmc graph: errors", () => {
  it("asks for --model when a file has several, and names graphs and blocks that do not exist", async () => {
    const codes = async (o: Parameters<typeof drawGraph>[1]) => {
      const r = await drawGraph([LLAVA], o);
      expect(r.text).toBeUndefined();
      return r.diagnostics.map((d) => d.code);
    };
    expect(await codes({})).toEqual(["VLM4400"]);
    expect(await codes({ model: "llava_1_5_7b", graph: "nope" })).toEqual(["VLM4401"]);
    expect(await codes({ model: "llava_1_5_7b", level: "ops", block: "vision/nope" })).toEqual(["VLM4402"]);
  });
});

// Exactness: each spec in examples/reference reproduces the published parameter count
// (../shared/reference/models.md) to the last digit, part by part where the reference lists parts;
// the example models count what transformers' classes count (test/fixtures/hf-counts.json).

import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { elaborate } from "../src/driver/check.js";
import { summarize } from "../src/driver/summary.js";
import { paramCount } from "../src/ir/analysis.js";

const PUBLISHED: Record<string, { total: number; parts?: Record<string, number> }> = {
  resnet18: { total: 11_689_512 },
  resnet50: { total: 25_557_032 },
  vit_b_16: {
    total: 86_567_656,
    parts: {
      conv_proj: 590_592,
      class_token: 768,
      "encoder.pos_embedding": 151_296,
      "encoder.layers.0": 7_087_872,
      "encoder.ln": 1_536,
      heads: 769_000,
    },
  },
  vit_b_32: { total: 88_224_232 },
  bert_base_uncased: { total: 109_482_240, parts: { embeddings: 23_837_184, encoder: 85_054_464, pooler: 590_592 } },
  bert_base_cased: { total: 108_310_272 },
  clip_vit_b_32: {
    total: 151_277_313,
    parts: {
      vision_model: 87_456_000,
      text_model: 63_165_952,
      visual_projection: 393_216,
      text_projection: 262_144,
      logit_scale: 1,
    },
  },
};

describe("published parameter counts", () => {
  for (const [name, want] of Object.entries(PUBLISHED)) {
    it(name, () => {
      const result = elaborate([`examples/reference/${name}.vlm`]);
      expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
      expect(result.models).toHaveLength(1);
      const module = result.models[0]!.module!;
      expect(summarize(module, result.models[0]!.tokens).params.total).toBe(want.total);
      for (const [part, count] of Object.entries(want.parts ?? {})) {
        // A part is a dotted prefix of parameter names, below the model's single component when there is one.
        const matching = module.params.filter(
          (p) =>
            !p.buffer &&
            [p.name, p.name.split(".").slice(1).join(".")].some((n) => n === part || n.startsWith(part + ".")),
        );
        expect(
          matching.reduce((a, p) => a + paramCount(p), 0),
          part,
        ).toBe(count);
      }
    });
  }
});

// transformers' own counts for the example models that mirror a transformers class, computed from
// the Hub configurations on the meta device by scripts/parity/hf_counts.py.
const HF_COUNTS = JSON.parse(
  fs.readFileSync(path.join(import.meta.dirname, "fixtures", "hf-counts.json"), "utf8"),
) as Record<string, { class: string; parameters: number }>;

describe("example models have transformers' parameter counts", () => {
  for (const [key, want] of Object.entries(HF_COUNTS)) {
    if (key.startsWith("_")) continue;
    const [file, model] = key.split("#") as [string, string];
    it(`${key}: ${want.class}`, () => {
      const result = elaborate([file]);
      expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
      const found = result.models.find((m) => m.module?.name === model);
      expect(found, model).toBeDefined();
      expect(summarize(found!.module!, found!.tokens).params.total).toBe(want.parameters);
    });
  }
});

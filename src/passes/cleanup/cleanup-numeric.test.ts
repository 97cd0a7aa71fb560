// Numerical tests of each cleanup pass alone: small std models of the parity fixtures (with their
// checkpoints) compiled with only that pass, and with the default pipeline, are run by the
// verifier in onnxruntime against the same models compiled with no passes, on the same seeded
// inputs (batch 2, 8 tokens): every output within 1e-5 of its scale. Each case is one the pass
// changes, and the pass alone is verified and idempotent on it.
// VLMC_PASS_REPORT=1 prints the measured errors.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { elaborate } from "../../driver/check.js";
import { fixtureWeights } from "../../../test/helpers/parity-fixtures.js";
import { compile } from "../../driver/compile.js";
import { verifyCompiled } from "../../driver/verify.js";
import { createPassManager } from "../index.js";

const PARITY = path.join(import.meta.dirname, "..", "..", "..", "test", "fixtures", "parity");
const TOLERANCE = 1e-5;
const SEED = 7;

/** Per pass, fixtures it changes; together they cover its rules that std blocks reach. */
const CASES: Readonly<Record<string, readonly string[]>> = {
  // identity-cast and fold-scalar-unary (BERT), add-zero (T5), the expand-through rules and
  // slice-everything (Q-Former's learned queries, Perceiver latents).
  "constant-folding": ["hf_bert", "hf_t5", "hf_blip2", "perceiver"],
  "common-subexpression-elimination": ["hf_bert", "hf_t5", "hf_clip"],
  "dead-code-elimination": ["hf_opt", "hf_flamingo"],
  // Position tables (Range, Embedding), T5's relative position bias, CLIP's logit scale (Exp),
  // Flamingo's gates (Tanh); with the checkpoints, gates and scales are not zeros.
  "precompute-constants": ["hf_clip", "hf_t5", "hf_flamingo"],
};
const FIXTURES = [...new Set(Object.values(CASES).flat())].sort();

const folders: string[] = [];
const figures: string[] = [];
afterAll(() => {
  for (const dir of folders.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  if (process.env["VLMC_PASS_REPORT"])
    console.log(`cleanup passes vs no passes (max |Δ| / max |y|, worst output)\n${figures.join("\n")}`);
});

/** Compiles `fixture` with `passes` (the default pipeline when undefined) and checks it against no passes. */
async function check(fixture: string, passes: readonly string[] | undefined, label: string): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vlmc-cleanup-"));
  folders.push(dir);
  const spec = path.join(PARITY, fixture, "spec.vlm");
  const options = {
    seed: SEED,
    weights: fixtureWeights(path.join(PARITY, fixture)),
    ...(passes ? { passes } : {}),
  };
  const result = await compile([spec], { ...options, out: dir, verifyIr: true });
  expect(result.diagnostics.filter((d) => d.severity === "error").map((d) => `${d.code} ${d.message}`)).toEqual([]);
  expect(
    result.passReports.flatMap((r) => r.runs).some((r) => r.changed),
    `${label} changes ${fixture}`,
  ).toBe(true);
  const report = await verifyCompiled([spec], options, result, { tolerance: TOLERANCE, batch: 2 });
  expect(report.diagnostics).toEqual([]);
  // Every graph compiled, each compared on at least one output.
  expect(new Set(report.comparisons.map((c) => c.graph)).size).toBe(result.files.length);
  expect(result.files.length).toBeGreaterThan(0);
  for (const c of report.comparisons) {
    expect(c.metric, `${c.graph}.${c.output}`).toBe("max-abs");
    expect(
      c.relativeError,
      `${fixture} ${c.graph}.${c.output} after ${label} (max |y| ${c.scale})`,
    ).toBeLessThanOrEqual(TOLERANCE);
  }
  const worst = report.comparisons.reduce((a, c) => (c.relativeError > a.relativeError ? c : a));
  figures.push(
    `${label.padEnd(34)} ${fixture.padEnd(14)} ${worst.relativeError.toExponential(1)} (${worst.graph}.${worst.output}, max |y| ${worst.scale.toPrecision(3)})`,
  );
}

describe("each cleanup pass alone keeps the outputs of small std models", () => {
  for (const [pass, fixtures] of Object.entries(CASES)) {
    for (const fixture of fixtures) {
      it(`${pass} on ${fixture}`, async () => {
        // Verified after the pass, and a second run changes nothing.
        for (const { module } of elaborate([path.join(PARITY, fixture, "spec.vlm")]).models) {
          const pm = createPassManager();
          expect(pm.run(module!, { passes: [pass], verify: true }).runs[0]!.changed).toBe(true);
          expect(pm.run(module!, { passes: [pass], verify: true }).runs[0]!.changed).toBe(false);
        }
        await check(fixture, [pass], pass);
      });
    }
  }
});

describe("the default pipeline keeps them too", () => {
  for (const fixture of FIXTURES) it(fixture, () => check(fixture, undefined, "default pipeline"));
});

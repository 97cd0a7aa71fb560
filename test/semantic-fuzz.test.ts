// The promise that what `vlmc check` accepts compiles and runs, fuzzed: seeded edits of sizes and
// flags in the small parity specs and a spec of every primitive (test/helpers/semantic-fuzz.ts). Every case is either rejected
// with coded diagnostics or compiled for portable and ort-cpu and run in onnxruntime; none breaks.
//   VLMC_SEMANTIC_FUZZ_CASES=2000 VLMC_SEMANTIC_FUZZ_SEED=7 npx vitest run test/semantic-fuzz.test.ts
// or scripts/semantic-fuzz.sh for the long run with counts.

import path from "node:path";
import { describe, expect, it } from "vitest";
import { fuzz, fuzzSeeds } from "./helpers/semantic-fuzz.js";

const SEED = Number(process.env["VLMC_SEMANTIC_FUZZ_SEED"] ?? 15);
const CASES = Number(process.env["VLMC_SEMANTIC_FUZZ_CASES"] ?? 60);
const FIXTURES = path.join(import.meta.dirname, "fixtures");
// The primitives seed counts as many as the parity specs together: it holds most of the sizes and flags.
const seeds = fuzzSeeds(path.join(FIXTURES, "parity"), path.join(FIXTURES, "semantic-fuzz", "primitives.vlm"), 20);

describe("semantic fuzz: what check accepts runs", () => {
  it(`${CASES} mutated specs are rejected with codes or run on portable and ort-cpu`, {
    timeout: Math.max(120_000, CASES * 2000),
  }, async () => {
    const counts = await fuzz(seeds, SEED, 0, CASES);
    const report = `cases ${counts.cases}, rejected ${counts.rejected}, compiled+ran ${counts.ran}, broken ${counts.broken.length}`;
    if (process.env["VLMC_SEMANTIC_FUZZ_CASES"])
      console.log(`semantic fuzz (seed ${SEED}): ${report}\nrejections by code: ${JSON.stringify(counts.codes)}`);
    const broken = counts.broken.map(
      (b) => `case ${b.case.index} (${b.case.seed}; ${b.case.edits.join("; ")}): ${b.why}`,
    );
    expect(broken, report).toEqual([]);
    expect(counts.ran).toBeGreaterThan(0);
    expect(counts.rejected).toBeGreaterThan(0);
  });
});

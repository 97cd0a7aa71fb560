#!/bin/sh
# The long run of the semantic fuzz (test/semantic-fuzz.test.ts): CASES mutated specs (default
# 2000) under SEED (default 15), each rejected with coded diagnostics or compiled for portable and
# ort-cpu and run in onnxruntime. Prints the counts (cases, rejected, compiled+ran, broken) and the
# rejections by code; fails on any broken promise. `npm test` runs 60 cases of the same generator.
#   scripts/semantic-fuzz.sh [CASES] [SEED]
cd "$(dirname "$0")/.." || exit 2
VLMC_SEMANTIC_FUZZ_CASES="${1:-2000}" VLMC_SEMANTIC_FUZZ_SEED="${2:-15}" exec npx vitest run test/semantic-fuzz.test.ts

#!/usr/bin/env node
// Runs every benchmark in turn, each writing its own results file under bench/results/:
//
//   inference.mjs  → inference.md   vlmc against torch.onnx.export in onnxruntime-node
//   compile.mjs    → compile.md     compile time against torch.onnx.export, full-size models, scaling
//   passes.mjs     → passes.md      node count, parameter bytes and latency after each pipeline stage
//   parse.mjs      → parse.md       front end, 1 KB to 5 MB specs
//   pictures.mjs   → pictures.md    `vlmc graph` pages in headless Chromium, language server answers
//
//   npm run bench                       build, then everything (about 1.5–2 hours on 2 cores)
//   node bench/all.mjs --skip parse,compile
//
// Benchmarks run one after another (never in parallel: they measure the same two cores). A failed
// benchmark is reported and the others still run; the exit code is 1 if any failed.

import { spawnSync } from "node:child_process";
import path from "node:path";
import { BENCH, listOption } from "./lib.mjs";

const SKIP = new Set(listOption("--skip", []));
const ONLY = listOption("--only", []);
const STEPS = [
  { name: "inference", args: ["--expose-gc", path.join(BENCH, "inference.mjs")] },
  { name: "passes", args: [path.join(BENCH, "passes.mjs")] },
  { name: "compile", args: [path.join(BENCH, "compile.mjs")] },
  { name: "parse", args: ["--expose-gc", path.join(BENCH, "parse.mjs")] },
  { name: "pictures", args: [path.join(BENCH, "pictures.mjs")] },
];

const failed = [];
for (const step of STEPS) {
  if (SKIP.has(step.name) || (ONLY.length > 0 && !ONLY.includes(step.name))) continue;
  const t0 = Date.now();
  console.error(`\n==== bench/${step.name}.mjs ====`);
  const r = spawnSync(process.execPath, step.args, { stdio: "inherit" });
  const minutes = ((Date.now() - t0) / 60000).toFixed(1);
  if (r.status !== 0) {
    failed.push(step.name);
    console.error(`==== ${step.name}: FAILED (exit ${r.status ?? r.signal}) after ${minutes} min ====`);
  } else console.error(`==== ${step.name}: done in ${minutes} min ====`);
}
if (failed.length > 0) {
  console.error(`\nfailed: ${failed.join(", ")}`);
  process.exitCode = 1;
}

#!/usr/bin/env node
// Generation-package benchmark: a full-size package (default LLaVA-1.5-7B from examples/llava.vlm,
// seeded random weights) written by `vlmc compile --package`: wall time, bytes written, peak
// resident memory (target ≤ 2 GB), and the package's files. Writes 15–33 GB under
// bench/out/package/ and deletes it afterwards; takes minutes.
//
//   npm run build && node bench/package.mjs                 writes bench/results/package-llava_1_5_7b-portable.md
//   node bench/package.mjs --model blip2_opt_2_7b           BLIP-2 OPT-2.7B (or flamingo)
//   node bench/package.mjs --target ort-cpu --keep          another target; keep the package
//   node bench/package.mjs --weights DIR                    weights from a (sharded) checkpoint folder,
//                                                           e.g. one bench/sharded_checkpoint.py wrote
//
// The checkpoint folder the package takes its tokenizer files and token ids from is made here from
// the tiny test fixtures (test/fixtures/package/) with the real models' image tokens.

import fs from "node:fs";
import path from "node:path";
import {
  OUT,
  ROOT,
  bytesText,
  environment,
  environmentBlock,
  option,
  runMeasured,
  table,
  writeResults,
} from "./lib.mjs";

const MODELS = {
  llava_1_5_7b: { spec: "examples/llava.vlm", fixture: "llava", imageToken: 32000 },
  blip2_opt_2_7b: { spec: "examples/blip2.vlm", fixture: "blip2", imageToken: 50265 },
  flamingo: { spec: "examples/flamingo.vlm", fixture: "flamingo", imageToken: undefined },
};
const MODEL = option("--model", "llava_1_5_7b");
const { spec, fixture: fixtureName, imageToken } = MODELS[MODEL];
const TARGET = option("--target", "portable");
const KEEP = option("--keep", false);
const WEIGHTS = option("--weights", undefined);
const dir = path.join(OUT, "package");
const checkpoint = path.join(dir, "checkpoint");
const out = path.join(dir, `${MODEL}-${TARGET}`);

fs.rmSync(dir, { recursive: true, force: true });
fs.mkdirSync(checkpoint, { recursive: true });
const fixture = path.join(ROOT, "test/fixtures/package", fixtureName);
for (const f of fs.readdirSync(fixture)) fs.copyFileSync(path.join(fixture, f), path.join(checkpoint, f));
const config = JSON.parse(fs.readFileSync(path.join(checkpoint, "config.json"), "utf8"));
if (imageToken !== undefined)
  fs.writeFileSync(path.join(checkpoint, "config.json"), JSON.stringify({ ...config, image_token_index: imageToken }));

const args = ["bin/vlmc.js", "compile", spec, "--model", MODEL];
args.push("--package", out, "--checkpoint", checkpoint, "--target", TARGET);
if (WEIGHTS) args.push("--weights", WEIGHTS);
console.log(`node ${args.join(" ")}`);
const run = await runMeasured(process.execPath, args);
if (run.code !== 0) {
  console.error(run.stdout, run.stderr);
  process.exit(1);
}
const files = fs.readdirSync(out).map((f) => ({ f, bytes: fs.statSync(path.join(out, f)).size }));
const total = files.reduce((a, x) => a + x.bytes, 0);
const env = environment();
const text = [
  "# Package benchmark",
  "",
  `\`vlmc compile ${spec} --model ${MODEL} --package OUT --checkpoint DIR --target ${TARGET}${WEIGHTS ? ` --weights ${WEIGHTS}` : ""}\`, ${WEIGHTS ? `weights read from the checkpoint folder ${WEIGHTS}` : "seeded random weights"} (bench/package.mjs). Peak RSS is the process's (/usr/bin/time -v), Node's start-up included.`,
  "",
  table(
    ["model", "target", "wall s", "written", "MB/s", "peak RSS", "target RSS ≤ 2 GB"],
    [
      [
        MODEL,
        TARGET,
        run.timedWall.toFixed(1),
        bytesText(total),
        (total / 1e6 / run.timedWall).toFixed(1),
        bytesText(run.peakRss),
        run.peakRss <= 2e9 ? "✅ met" : "❌ missed",
      ],
    ],
    ["---", "---", "---:", "---:", "---:", "---:", "---"],
  ),
  "",
  "Files:",
  "",
  table(
    ["file", "bytes"],
    files.map((x) => [x.f, bytesText(x.bytes)]),
    ["---", "---:"],
  ),
  "",
  environmentBlock(env),
].join("\n");
writeResults(`package-${MODEL}-${TARGET}${WEIGHTS ? "-checkpoint" : ""}.md`, text);
if (!KEEP) fs.rmSync(dir, { recursive: true, force: true });

#!/usr/bin/env node
// Compilation benchmark, in three parts (each can run alone with --part):
//
//   peer      compile time of vlmc against torch.onnx.export for the inference models (same
//             weights; vlmc reads them from safetensors, torch has them in memory already)
//   fullsize  full-size LLaVA-1.5-7B and BLIP-2 OPT-2.7B `forward` with random weights and external
//             data: wall time, bytes written per second against a plain `cp` of the same data, peak
//             resident memory (target ≤ 2 GB)
//   scaling   compile time and peak memory of a ViT-B encoder at depth 6/12/24/48 (target: linear)
//
//   npm run build && node bench/compile.mjs                 everything, writes bench/results/compile.md
//   node bench/compile.mjs --part scaling --runs 2          one part (writes only with --write)
//
// Every vlmc figure is a fresh `node bin/vlmc.js compile …` process under /usr/bin/time -v: wall
// time and peak resident set size (the process's VmHWM) include Node's start-up. Outputs go to
// bench/out/compile/ and are deleted after measuring (the full-size ones are 15–28 GB).

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {
  BENCH,
  OUT,
  PYTHON,
  ROOT,
  bytesText,
  environment,
  environmentBlock,
  linearFit,
  listOption,
  load1,
  loglogSlope,
  mmm,
  option,
  runMeasured,
  sig,
  stats,
  table,
  writeResults,
} from "./lib.mjs";

const PARTS = listOption("--part", ["peer", "fullsize", "scaling"]);
const RUNS = option("--runs", 3);
const FULL_RUNS = option("--full-runs", 1);
const PEER_MODELS = listOption("--models", ["vit_b_16", "resnet50", "clip_vit_b_32_image", "llava_1_5_image", "blip2_qformer"]);
const FULLSIZE = listOption("--fullsize", ["llava_1_5_7b", "blip2_opt_2_7b"]);
const DEPTHS = listOption("--depths", ["6", "12", "24", "48"]).map(Number);
const FULLSIZE_LIMIT_S = option("--fullsize-limit", 1800); // give up (and extrapolate) past this
const full = PARTS.length === 3 && !process.argv.includes("--models") && !process.argv.includes("--depths") && !process.argv.includes("--fullsize");
const WRITE = option("--write", false) || (full && !option("--no-write", false));
const VLMC = path.join(ROOT, "bin", "vlmc.js");
const WORK = path.join(OUT, "compile");

const env = environment();
const log = (...a) => console.error(`[compile ${new Date().toISOString().slice(11, 19)} load ${load1().toFixed(2)}]`, ...a);
if (!fs.existsSync(path.join(ROOT, "dist", "src", "index.js"))) {
  console.error("dist/ is missing: run `npm run build` first.");
  process.exit(2);
}

function rmrf(p) {
  fs.rmSync(p, { recursive: true, force: true });
}

function dirBytes(p) {
  if (!fs.existsSync(p)) return 0;
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(p).reduce((a, n) => a + dirBytes(path.join(p, n)), 0);
}

function freeBytes(p) {
  const s = fs.statfsSync(p);
  return s.bavail * s.bsize;
}

async function vlmcCompile(args, out) {
  rmrf(out);
  const r = await runMeasured(process.execPath, [VLMC, "compile", ...args, "-o", out]);
  if (r.code !== 0) throw new Error(`vlmc compile ${args.join(" ")} failed (exit ${r.code}):\n${r.stderr.slice(-2000)}`);
  return r;
}

function syncTime() {
  const t0 = performance.now();
  execFileSync("sync");
  return (performance.now() - t0) / 1000;
}

// ---- peer: vlmc against torch.onnx.export --------------------------------------------------------

async function peerPart() {
  const rows = [];
  for (const name of PEER_MODELS) {
    const metaPath = path.join(OUT, "inference", name, "meta.json");
    if (!fs.existsSync(metaPath)) {
      log(`${name}: building the peer's weights (bench/peers.py build)`);
      const b = await runMeasured(PYTHON, [path.join(BENCH, "peers.py"), "build", name, path.relative(ROOT, path.dirname(metaPath))]);
      if (b.code !== 0) {
        rows.push({ name, error: b.stderr.slice(-500) });
        continue;
      }
    }
    const meta = JSON.parse(fs.readFileSync(metaPath, "utf8"));
    const out = path.join(WORK, "peer", `${name}.onnx`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const args = [meta.spec, "--model", meta.model, "--graph", meta.graph, ...meta.weights.flatMap((w) => ["--weights", w])];
    log(`${name}: vlmc compile ×${RUNS}`);
    const v = [];
    for (let i = 0; i < RUNS; i++) {
      const r = await vlmcCompile(args, out);
      v.push({ wall: r.wall, rss: r.peakRss, load: r.load, bytes: dirBytes(out) });
    }
    rmrf(out);
    log(`${name}: torch.onnx.export ×${RUNS} (+1 warm-up)`);
    const t = await runMeasured(PYTHON, [path.join(BENCH, "peers.py"), "export-time", name, "--runs", String(RUNS), "--first", "--tmp", path.dirname(out)]);
    if (t.code !== 0) {
      rows.push({ name, error: `torch export failed: ${t.stderr.slice(-500)}` });
      continue;
    }
    const tj = JSON.parse(t.stdout.trim().split("\n").pop());
    const row = {
      name,
      params: meta.params,
      vlmc: stats(v.map((x) => x.wall)),
      vlmcRss: stats(v.map((x) => x.rss)),
      vlmcLoad: stats(v.map((x) => x.load)),
      vlmcBytes: v[0].bytes,
      torch: stats(tj.seconds),
      torchFirst: tj.first,
      torchBytes: tj.bytes,
      torchRss: t.peakRss,
      torchLoad: tj.load[0],
    };
    row.ratio = row.torch.median / row.vlmc.median;
    row.ratioFirst = tj.first / row.vlmc.median;
    log(`${name}: vlmc ${sig(row.vlmc.median)} s, torch ${sig(row.torch.median)} s (first ${sig(tj.first)} s): ${sig(row.ratio)}×`);
    rows.push(row);
  }
  const lines = ["## vlmc compile against torch.onnx.export", ""];
  lines.push(
    `vlmc: \`vlmc compile SPEC --model M --graph G --weights COMPONENT=FILE… -o OUT.onnx\` (portable target, default passes), a fresh process each time (${RUNS} runs): parse, check, elaborate, passes, read the safetensors weights, write the ONNX; Node start-up included. torch: \`torch.onnx.export(opset_version=17, dynamic batch axis, constant folding)\` of the model already built in memory with its weights, ${RUNS} timed exports after one untimed warm-up in the same process (the warm-up, a cold first export, is shown separately); model construction, weight initialisation and Python start-up are not counted. This favours torch.`,
  );
  lines.push("");
  lines.push(
    table(
      ["model", "params", "vlmc s", "vlmc peak RSS", "vlmc ONNX", "torch.onnx.export s (warm)", "torch first export s", "torch ONNX", "torch ÷ vlmc (warm)", "torch first ÷ vlmc", "target ≥ 20×", "load avg"],
      rows.map((r) =>
        r.error
          ? [r.name, "–", "–", "–", "–", "–", "–", "–", "–", "–", `not measured: ${r.error.split("\n")[0]}`, "–"]
          : [
              r.name,
              `${(r.params / 1e6).toFixed(1)} M`,
              mmm(r.vlmc),
              bytesText(r.vlmcRss.median),
              bytesText(r.vlmcBytes),
              mmm(r.torch),
              sig(r.torchFirst),
              bytesText(r.torchBytes),
              `${sig(r.ratio)}×`,
              `${sig(r.ratioFirst)}×`,
              r.ratio >= 20 ? "✅ met" : `❌ missed (${sig(r.ratio)}×, ${sig((20 / r.ratio - 1) * 100, 2)}% more speed needed)`,
              `${sig(r.vlmcLoad.median)} / ${sig(r.torchLoad)}`,
            ],
      ),
    ),
  );
  lines.push("");
  lines.push("Load avg: the 1-minute load average at the end of vlmc's runs (median) / at the start of torch's exports.");
  return { rows, text: lines.join("\n") };
}

// ---- full size -----------------------------------------------------------------------------------

const FULL = {
  llava_1_5_7b: { spec: "examples/llava.vlm", model: "llava_1_5_7b", graph: "forward", params: 7_062_902_784 },
  blip2_opt_2_7b: { spec: "examples/blip2.vlm", model: "blip2_opt_2_7b", graph: "forward" },
};

async function copyBaseline(file) {
  const size = fs.statSync(file).size;
  const copy = `${file}.copy`;
  if (freeBytes(path.dirname(file)) < size + 5e9) return { skipped: `not enough free disk for a ${bytesText(size)} copy` };
  const r = await runMeasured("cp", [file, copy]);
  const sync = syncTime();
  rmrf(copy);
  return { wall: r.wall, sync, bytes: size, rss: r.peakRss };
}

async function fullsizePart() {
  const rows = [];
  for (const name of FULLSIZE) {
    const f = FULL[name];
    const out = path.join(WORK, "fullsize", name);
    const runs = [];
    for (let i = 0; i < FULL_RUNS; i++) {
      rmrf(out);
      execFileSync("sync");
      log(`${name}: vlmc compile ${f.spec} --model ${f.model} --graph ${f.graph} --external-data always (run ${i + 1}/${FULL_RUNS}; free disk ${bytesText(freeBytes(WORK))})`);
      const r = await runMeasured(process.execPath, [VLMC, "compile", f.spec, "--model", f.model, "--graph", f.graph, "--external-data", "always", "-o", out], {});
      if (r.code !== 0) {
        rows.push({ name, error: r.stderr.slice(-1500) });
        break;
      }
      const sync = syncTime();
      const files = fs.readdirSync(out).map((n) => ({ n, size: fs.statSync(path.join(out, n)).size }));
      const bytes = files.reduce((a, x) => a + x.size, 0);
      const data = files.filter((x) => !x.n.endsWith(".onnx")).sort((a, b) => b.size - a.size)[0];
      log(`${name}: ${sig(r.wall)} s (+ sync ${sig(sync)} s), ${bytesText(bytes)}, peak RSS ${bytesText(r.peakRss)}`);
      const copy = data ? await copyBaseline(path.join(out, data.n)) : { skipped: "no external data file" };
      if (!copy.skipped) log(`${name}: cp of ${bytesText(copy.bytes)}: ${sig(copy.wall)} s (+ sync ${sig(copy.sync)} s)`);
      runs.push({ wall: r.wall, sync, bytes, files: files.length, rss: r.peakRss, load: r.load, copy });
      rmrf(out);
    }
    if (runs.length) rows.push({ name, f, runs });
  }
  const lines = ["## Full size: LLaVA-1.5-7B and BLIP-2 OPT-2.7B", ""];
  lines.push(
    `\`vlmc compile SPEC --model M --graph forward --external-data always -o DIR\`, random (seeded) weights, ${FULL_RUNS} run${FULL_RUNS === 1 ? "" : "s"} each (each writes 15–28 GB; the output is deleted after measuring). Throughput: bytes written (the .onnx and its external data) over the wall time of the process, with and without the \`sync\` that follows it, against \`cp\` of the external data file to a new file on the same disk (then \`sync\`). Page cache: the machine has ${env.memGiB.toFixed(0)} GiB of memory, so part of each write is still in the cache when the process exits; the with-sync figures count it out to disk.`,
  );
  lines.push("");
  const fmtRuns = (xs) => (xs.length === 1 ? sig(xs[0]) : mmm(stats(xs)));
  lines.push(
    table(
      ["model", "runs", "wall s", "wall + sync s", "written", "vlmc MB/s (no sync / sync)", "cp MB/s (no sync / sync)", "vlmc ÷ cp (sync)", "peak RSS", "target RSS ≤ 2 GB", "load avg"],
      rows.map((r) => {
        if (r.error) return [r.name, "0", "–", "–", "–", "–", "–", "–", "–", `not measured: ${r.error.split("\n").filter(Boolean).pop()}`, "–"];
        const w = r.runs.map((x) => x.wall);
        const ws = r.runs.map((x) => x.wall + x.sync);
        const bytes = r.runs[0].bytes;
        const mbps = r.runs.map((x) => x.bytes / x.wall / 1e6);
        const mbpsSync = r.runs.map((x) => x.bytes / (x.wall + x.sync) / 1e6);
        const c = r.runs.filter((x) => !x.copy.skipped).map((x) => x.copy);
        const cp = c.map((x) => x.bytes / x.wall / 1e6);
        const cpSync = c.map((x) => x.bytes / (x.wall + x.sync) / 1e6);
        const rss = stats(r.runs.map((x) => x.rss));
        return [
          r.name,
          String(r.runs.length),
          fmtRuns(w),
          fmtRuns(ws),
          bytesText(bytes),
          `${fmtRuns(mbps)} / ${fmtRuns(mbpsSync)}`,
          c.length ? `${fmtRuns(cp)} / ${fmtRuns(cpSync)}` : `– (${r.runs[0].copy.skipped})`,
          c.length ? sig(stats(mbpsSync).median / stats(cpSync).median) : "–",
          bytesText(rss.max),
          rss.max <= 2e9 ? "✅ met" : `❌ missed by ${bytesText(rss.max - 2e9)} (${sig((rss.max / 2e9 - 1) * 100, 2)}% over)`,
          fmtRuns(r.runs.map((x) => x.load)),
        ];
      }),
    ),
  );
  return { rows, text: lines.join("\n") };
}

// ---- scaling -------------------------------------------------------------------------------------

function vitSpec(depth) {
  return `// Generated by bench/compile.mjs: a ViT-B/16 encoder at depth ${depth}.
import { vit } from "std"

model vit_depth_${depth} {
  encoder net = vit(image: 224, patch: 16, width: 768, depth: ${depth}, num_heads: 12, mlp: 3072, classes: 1000)

  forward(pixels: f32[B, 3, 224, 224]) {
    return logits: net(pixels)
  }
}
`;
}

async function scalingPart() {
  const dir = path.join(WORK, "scaling");
  fs.mkdirSync(dir, { recursive: true });
  const per = Object.fromEntries(DEPTHS.map((d) => [d, []]));
  // Round-robin over the depths so that load changes spread over all of them.
  for (let i = 0; i < RUNS; i++) {
    for (const d of DEPTHS) {
      const spec = path.join(dir, `vit_depth_${d}.vlm`);
      fs.writeFileSync(spec, vitSpec(d));
      const out = path.join(dir, `vit_depth_${d}`);
      const r = await vlmcCompile([spec, "--external-data", "always"], out);
      per[d].push({ wall: r.wall, rss: r.peakRss, load: r.load, bytes: dirBytes(out) });
      rmrf(out);
      log(`scaling: depth ${d} run ${i + 1}: ${sig(r.wall)} s, ${bytesText(r.peakRss)}`);
    }
  }
  // A trivially small compile: the fixed cost (Node start-up, loading the compiler, std).
  const base = [];
  const spec0 = path.join(dir, "vit_depth_1.vlm");
  fs.writeFileSync(spec0, vitSpec(1));
  for (let i = 0; i < RUNS; i++) {
    const r = await vlmcCompile([spec0, "--external-data", "always"], path.join(dir, "vit_depth_1"));
    base.push({ wall: r.wall, rss: r.peakRss });
  }
  rmrf(path.join(dir, "vit_depth_1"));
  const rows = DEPTHS.map((d) => ({ depth: d, wall: stats(per[d].map((x) => x.wall)), rss: stats(per[d].map((x) => x.rss)), bytes: per[d][0].bytes, load: stats(per[d].map((x) => x.load)) }));
  const xs = rows.map((r) => r.depth);
  const tFit = linearFit(xs, rows.map((r) => r.wall.median));
  const mFit = linearFit(xs, rows.map((r) => r.rss.median));
  const tSlope = loglogSlope(xs, rows.map((r) => r.wall.median - stats(base.map((b) => b.wall)).median));
  const lines = ["## Scaling with depth", ""];
  lines.push(
    `A ViT-B/16 (width 768, 12 heads, MLP 3072) at depth ${DEPTHS.join("/")}, seeded random weights, \`--external-data always\`; ${RUNS} runs per depth, round-robin over the depths. Depth 1 (the fixed cost: Node start-up, loading the compiler and std, one layer) took ${mmm(stats(base.map((b) => b.wall)))} s and ${bytesText(stats(base.map((b) => b.rss)).median)}.`,
  );
  lines.push("");
  lines.push(
    table(
      ["depth", "parameters written", "wall s", "s per layer (after depth 1)", "peak RSS", "load avg"],
      rows.map((r) => [String(r.depth), bytesText(r.bytes), mmm(r.wall), sig((r.wall.median - stats(base.map((b) => b.wall)).median) / (r.depth - 1)), mmm(r.rss, 1e-6, 3) + " MB", mmm(r.load)]),
    ),
  );
  lines.push("");
  lines.push(
    `Fits (medians): time = ${sig(tFit.a)} s + ${sig(tFit.b)} s × depth (R² ${tFit.r2.toFixed(4)}); log–log slope of (time − depth-1 time) against depth ${sig(tSlope)} (1 = linear). Peak memory = ${bytesText(mFit.a)} + ${bytesText(mFit.b)} × depth (R² ${mFit.r2.toFixed(4)}).`,
  );
  const linear = tFit.r2 >= 0.98 && tSlope < 1.15;
  lines.push("");
  lines.push(`- ${linear ? "✅ met" : "❌ missed"}: compile time linear in depth (R² ≥ 0.98 and slope < 1.15): R² ${tFit.r2.toFixed(4)}, slope ${sig(tSlope)}.`);
  return { rows, text: lines.join("\n") };
}

// ---- main ----------------------------------------------------------------------------------------

fs.mkdirSync(WORK, { recursive: true });
const sections = [];
for (const part of PARTS) {
  try {
    if (part === "peer") sections.push((await peerPart()).text);
    else if (part === "fullsize") sections.push((await fullsizePart()).text);
    else if (part === "scaling") sections.push((await scalingPart()).text);
    else throw new Error(`unknown part ${part} (peer, fullsize, scaling)`);
  } catch (e) {
    log(`${part}: failed: ${e instanceof Error ? e.stack : String(e)}`);
    sections.push(`## ${part}\n\nNot measured: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`);
  }
}
const text = [
  "# Compilation",
  "",
  "Generated by `node bench/compile.mjs` (see bench/README.md); do not edit by hand.",
  "",
  environmentBlock(env, [`Peak resident memory: /usr/bin/time -v's maximum resident set size of the process.`]),
  "",
  ...sections.flatMap((s) => [s, ""]),
].join("\n");
fs.writeFileSync(path.join(WORK, "last.md"), text);
if (WRITE) writeResults("compile.md", text);
else console.log(text);

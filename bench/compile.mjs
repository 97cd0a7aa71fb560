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
const LARGE_TORCH_RUNS = option("--large-torch-runs", 2);
const PEER_MODELS = listOption("--models", [
  "vit_b_16",
  "resnet50",
  "clip_vit_b_32_image",
  "llava_1_5_image",
  "blip2_qformer",
]);
const FULLSIZE = listOption("--fullsize", ["llava_1_5_7b", "blip2_opt_2_7b"]);
const DEPTHS = listOption("--depths", ["6", "12", "24", "48"]).map(Number);
const FULLSIZE_LIMIT_S = option("--fullsize-limit", 900); // extrapolate instead when a full compile is predicted to take longer
const PROBE_DEPTHS = listOption("--probe-depths", ["2", "6"]).map(Number);
const FORCE_FULL = option("--force-full", false);
const FORCE_EXTRAPOLATE = option("--extrapolate", false);
const full =
  PARTS.length === 3 &&
  !process.argv.includes("--models") &&
  !process.argv.includes("--depths") &&
  !process.argv.includes("--fullsize");
const WRITE = option("--write", false) || (full && !option("--no-write", false));
const VLMC = path.join(ROOT, "bin", "vlmc.js");
const WORK = path.join(OUT, "compile");

const env = environment();
const log = (...a) =>
  console.error(`[compile ${new Date().toISOString().slice(11, 19)} load ${load1().toFixed(2)}]`, ...a);
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
  if (r.code !== 0)
    throw new Error(`vlmc compile ${args.join(" ")} failed (exit ${r.code}):\n${r.stderr.slice(-2000)}`);
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
      const b = await runMeasured(PYTHON, [
        path.join(BENCH, "peers.py"),
        "build",
        name,
        path.relative(ROOT, path.dirname(metaPath)),
      ]);
      if (b.code !== 0) {
        rows.push({ name, error: b.stderr.slice(-500) });
        continue;
      }
    }
    const meta = JSON.parse(fs.readFileSync(metaPath, "utf8"));
    const out = path.join(WORK, "peer", `${name}.onnx`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const args = [
      meta.spec,
      "--model",
      meta.model,
      "--graph",
      meta.graph,
      ...meta.weights.flatMap((w) => ["--weights", w]),
    ];
    log(`${name}: vlmc compile ×${RUNS}`);
    const v = [];
    for (let i = 0; i < RUNS; i++) {
      const r = await vlmcCompile(args, out);
      v.push({ wall: r.wall, rss: r.peakRss, load: r.load, bytes: dirBytes(out) });
    }
    rmrf(out);
    // The LLaVA image path's export takes minutes: fewer repetitions above 200 M parameters.
    const torchRuns = meta.params > 200e6 ? Math.min(RUNS, LARGE_TORCH_RUNS) : RUNS;
    log(`${name}: torch.onnx.export ×${torchRuns} (+1 warm-up)`);
    const t = await runMeasured(PYTHON, [
      path.join(BENCH, "peers.py"),
      "export-time",
      name,
      "--runs",
      String(torchRuns),
      "--first",
      "--tmp",
      path.dirname(out),
    ]);
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
    log(
      `${name}: vlmc ${sig(row.vlmc.median)} s, torch ${sig(row.torch.median)} s (first ${sig(tj.first)} s): ${sig(row.ratio)}×`,
    );
    rows.push(row);
  }
  const lines = ["## vlmc compile against torch.onnx.export", ""];
  lines.push(
    `vlmc: \`vlmc compile SPEC --model M --graph G --weights COMPONENT=FILE… -o OUT.onnx\` (portable target, default passes), a fresh process each time (${RUNS} runs): parse, check, elaborate, passes, read the safetensors weights, write the ONNX; Node start-up included. torch: \`torch.onnx.export(opset_version=17, dynamic batch axis, constant folding)\` of the model already built in memory with its weights, ${RUNS} timed exports (${LARGE_TORCH_RUNS} above 200 M parameters) after one untimed warm-up in the same process (the warm-up, a cold first export, is shown separately); model construction, weight initialisation and Python start-up are not counted. This favours torch.`,
  );
  lines.push("");
  lines.push(
    table(
      [
        "model",
        "params",
        "vlmc s",
        "vlmc peak RSS",
        "vlmc ONNX",
        "torch.onnx.export s (warm)",
        "torch first export s",
        "torch ONNX",
        "torch ÷ vlmc (warm)",
        "torch first ÷ vlmc",
        "target ≥ 20×",
        "load avg",
      ],
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
              r.ratio >= 20
                ? "✅ met"
                : `❌ missed (${sig(r.ratio)}×, ${sig((20 / r.ratio - 1) * 100, 2)}% more speed needed)`,
              `${sig(r.vlmcLoad.median)} / ${sig(r.torchLoad)}`,
            ],
      ),
    ),
  );
  lines.push("");
  lines.push(
    "Load avg: the 1-minute load average at the end of vlmc's runs (median) / at the start of torch's exports.",
  );
  return { rows, text: lines.join("\n") };
}

// ---- full size -----------------------------------------------------------------------------------

const FULL = {
  llava_1_5_7b: { spec: "examples/llava.vlm", model: "llava_1_5_7b", graph: "forward", llmDepth: 32 },
  blip2_opt_2_7b: { spec: "examples/blip2.vlm", model: "blip2_opt_2_7b", graph: "forward", llmDepth: 32 },
};

/** The example's text with the LLM (the `encoder llm = …(` component) at `depth` layers. */
function reducedSpec(f, depth) {
  const text = fs.readFileSync(path.join(ROOT, f.spec), "utf8");
  const at = text.indexOf(`model ${f.model} {`);
  const llm = text.indexOf("encoder llm =", at);
  const d = text.indexOf(`depth: ${f.llmDepth},`, llm);
  if (at < 0 || llm < 0 || d < 0) throw new Error(`cannot find the LLM depth of ${f.model} in ${f.spec}`);
  return `${text.slice(0, d)}depth: ${depth},${text.slice(d + `depth: ${f.llmDepth},`.length)}`;
}

async function copyBaseline(file) {
  const size = fs.statSync(file).size;
  const copy = `${file}.copy`;
  if (freeBytes(path.dirname(file)) < size + 5e9)
    return { skipped: `not enough free disk for a ${bytesText(size)} copy` };
  const r = await runMeasured("cp", [file, copy]);
  const sync = syncTime();
  rmrf(copy);
  return { wall: r.wall, sync, bytes: size, rss: r.peakRss };
}

/** One compile with external data, then sync, then the cp baseline of its data file; output deleted. */
async function fullCompile(spec, f, out, label) {
  rmrf(out);
  execFileSync("sync");
  log(
    `${label}: vlmc compile --model ${f.model} --graph ${f.graph} --external-data always (free disk ${bytesText(freeBytes(WORK))})`,
  );
  const r = await runMeasured(process.execPath, [
    VLMC,
    "compile",
    spec,
    "--model",
    f.model,
    "--graph",
    f.graph,
    "--external-data",
    "always",
    "-o",
    out,
  ]);
  if (r.code !== 0) throw new Error(`${label}: compile failed: ${r.stderr.slice(-1500)}`);
  const sync = syncTime();
  const files = fs.readdirSync(out).map((n) => ({ n, size: fs.statSync(path.join(out, n)).size }));
  const bytes = files.reduce((a, x) => a + x.size, 0);
  const data = files.filter((x) => !x.n.endsWith(".onnx")).sort((a, b) => b.size - a.size)[0];
  log(`${label}: ${sig(r.wall)} s (+ sync ${sig(sync)} s), ${bytesText(bytes)}, peak RSS ${bytesText(r.peakRss)}`);
  const copy = data ? await copyBaseline(path.join(out, data.n)) : { skipped: "no external data file" };
  if (!copy.skipped) log(`${label}: cp of ${bytesText(copy.bytes)}: ${sig(copy.wall)} s (+ sync ${sig(copy.sync)} s)`);
  rmrf(out);
  return { wall: r.wall, sync, bytes, rss: r.peakRss, load: r.load, copy };
}

/**
 * Each model: first at two reduced LLM depths (PROBE_DEPTHS), which give time, bytes and memory per
 * layer; then at full size when that predicts at most FULLSIZE_LIMIT_S seconds, else the full-size
 * figures are extrapolated linearly in depth from the two (and labelled so).
 */
async function fullsizePart() {
  const rows = [];
  const dir = path.join(WORK, "fullsize");
  fs.mkdirSync(dir, { recursive: true });
  for (const name of FULLSIZE) {
    const f = FULL[name];
    try {
      const probes = [];
      for (const d of PROBE_DEPTHS) {
        const spec = path.join(dir, `${name}_llm${d}.vlm`);
        fs.writeFileSync(spec, reducedSpec(f, d));
        probes.push({
          depth: d,
          ...(await fullCompile(spec, f, path.join(dir, `${name}_llm${d}`), `${name} (LLM depth ${d})`)),
        });
      }
      const fitOf = (k) =>
        linearFit(
          probes.map((p) => p.depth),
          probes.map((p) => p[k]),
        );
      const at = (k, d) => fitOf(k).a + fitOf(k).b * d;
      const predicted = {
        wall: at("wall", f.llmDepth),
        bytes: at("bytes", f.llmDepth),
        rss: at("rss", f.llmDepth),
        sync: at("sync", f.llmDepth),
      };
      log(
        `${name}: predicted at full size ${sig(predicted.wall)} s, ${bytesText(predicted.bytes)}, peak RSS ${bytesText(predicted.rss)}`,
      );
      const runs = [];
      if (
        !FORCE_EXTRAPOLATE &&
        (FORCE_FULL || predicted.wall <= FULLSIZE_LIMIT_S) &&
        freeBytes(WORK) > predicted.bytes * 1.05 + 5e9
      ) {
        for (let i = 0; i < FULL_RUNS; i++)
          runs.push(
            await fullCompile(
              path.join(ROOT, f.spec),
              f,
              path.join(dir, name),
              `${name} (full size, run ${i + 1}/${FULL_RUNS})`,
            ),
          );
      }
      rows.push({ name, f, probes, predicted, runs });
    } catch (e) {
      rows.push({ name, error: e instanceof Error ? e.message : String(e) });
    }
  }
  const lines = ["## Full size: LLaVA-1.5-7B and BLIP-2 OPT-2.7B", ""];
  lines.push(
    `\`vlmc compile SPEC --model M --graph forward --external-data always -o DIR\`, random (seeded) weights; the output is deleted after measuring. Each model is first compiled with its LLM cut to ${PROBE_DEPTHS.join(" and ")} layers (all else full size), which gives a linear model of time, bytes and memory in LLM depth; the full-size model is then compiled for real when that predicts at most ${FULLSIZE_LIMIT_S / 60} minutes (${FULL_RUNS} run${FULL_RUNS === 1 ? "" : "s"}), and otherwise its figures are **extrapolated** from the two reduced compiles and labelled so. Throughput: bytes written (the .onnx and its external data) over the process's wall time, with and without the \`sync\` that follows it, against \`cp\` of the same external data file to a new file on the same disk (then \`sync\`). The machine has ${env.memGiB.toFixed(0)} GiB of memory, so part of each write is still in the page cache when a process exits; the with-sync figures count it out to disk.`,
  );
  lines.push("");
  const tp = (x) => `${sig(x.bytes / x.wall / 1e6)} / ${sig(x.bytes / (x.wall + x.sync) / 1e6)}`;
  const cpText = (c) =>
    c.skipped ? `– (${c.skipped})` : `${sig(c.bytes / c.wall / 1e6)} / ${sig(c.bytes / (c.wall + c.sync) / 1e6)}`;
  const ratio = (x) =>
    x.copy.skipped ? "–" : sig(x.bytes / (x.wall + x.sync) / (x.copy.bytes / (x.copy.wall + x.copy.sync)));
  const rssTarget = (rss, how) =>
    rss <= 2e9 ? `✅ met${how}` : `❌ missed${how} by ${bytesText(rss - 2e9)} (${sig((rss / 2e9 - 1) * 100, 2)}% over)`;
  const rowsOut = [];
  for (const r of rows) {
    if (r.error) {
      rowsOut.push([
        r.name,
        "–",
        "–",
        "–",
        "–",
        "–",
        "–",
        "–",
        "–",
        `not measured: ${r.error.split("\n").filter(Boolean)[0]}`,
        "–",
      ]);
      continue;
    }
    for (const p of r.probes)
      rowsOut.push([
        `${r.name}, LLM depth ${p.depth} of ${r.f.llmDepth} (measured)`,
        sig(p.wall),
        sig(p.wall + p.sync),
        bytesText(p.bytes),
        tp(p),
        cpText(p.copy),
        ratio(p),
        bytesText(p.rss),
        sig(p.load),
        rssTarget(p.rss, ""),
        "1",
      ]);
    if (r.runs.length > 0) {
      const w = stats(r.runs.map((x) => x.wall));
      const x = r.runs.find((y) => y.wall === w.min) ?? r.runs[0];
      const rss = Math.max(...r.runs.map((y) => y.rss));
      rowsOut.push([
        `**${r.name}, full size (measured)**`,
        r.runs.length === 1 ? sig(w.median) : mmm(w),
        sig(x.wall + x.sync),
        bytesText(x.bytes),
        tp(x),
        cpText(x.copy),
        ratio(x),
        bytesText(rss),
        sig(x.load),
        rssTarget(rss, ""),
        String(r.runs.length),
      ]);
    } else {
      const p = r.predicted;
      const last = r.probes[r.probes.length - 1];
      rowsOut.push([
        `**${r.name}, full size (EXTRAPOLATED from depths ${PROBE_DEPTHS.join(", ")}; not measured)**`,
        `≈ ${sig(p.wall)}`,
        `≈ ${sig(p.wall + p.sync)}`,
        `≈ ${bytesText(p.bytes)}`,
        `≈ ${tp(p)}`,
        `${cpText(last.copy)} (at depth ${last.depth})`,
        "–",
        `≈ ${bytesText(p.rss)}`,
        "–",
        rssTarget(p.rss, " (extrapolated)"),
        "0",
      ]);
    }
  }
  lines.push(
    table(
      [
        "model",
        "wall s",
        "wall + sync s",
        "written",
        "vlmc MB/s (no sync / sync)",
        "cp MB/s (no sync / sync)",
        "vlmc ÷ cp (with sync)",
        "peak RSS",
        "load avg",
        "target RSS ≤ 2 GB",
        "runs",
      ],
      rowsOut,
    ),
  );
  for (const r of rows.filter((x) => !x.error)) {
    const fw = linearFit(
      r.probes.map((p) => p.depth),
      r.probes.map((p) => p.wall),
    );
    const fm = linearFit(
      r.probes.map((p) => p.depth),
      r.probes.map((p) => p.rss),
    );
    lines.push("");
    lines.push(
      `- ${r.name}: per LLM layer ${sig(fw.b)} s and ${bytesText(fm.b)} of peak memory; predicted at full size ${sig(r.predicted.wall)} s, ${bytesText(r.predicted.bytes)}, peak ${bytesText(r.predicted.rss)}${r.runs.length ? `; measured ${sig(r.runs[0].wall)} s, ${bytesText(r.runs[0].bytes)}, peak ${bytesText(r.runs[0].rss)}` : ` — full size not compiled: ${r.predicted.wall > FULLSIZE_LIMIT_S ? `predicted over the ${FULLSIZE_LIMIT_S / 60}-minute limit` : "not enough free disk"}`}.`,
    );
  }
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
  const rows = DEPTHS.map((d) => ({
    depth: d,
    wall: stats(per[d].map((x) => x.wall)),
    rss: stats(per[d].map((x) => x.rss)),
    bytes: per[d][0].bytes,
    load: stats(per[d].map((x) => x.load)),
  }));
  const xs = rows.map((r) => r.depth);
  const tFit = linearFit(
    xs,
    rows.map((r) => r.wall.median),
  );
  const mFit = linearFit(
    xs,
    rows.map((r) => r.rss.median),
  );
  const tSlope = loglogSlope(
    xs.map((d) => d - 1),
    rows.map((r) => r.wall.median - stats(base.map((b) => b.wall)).median),
  );
  const lines = ["## Scaling with depth", ""];
  lines.push(
    `A ViT-B/16 (width 768, 12 heads, MLP 3072) at depth ${DEPTHS.join("/")}, seeded random weights, \`--external-data always\`; ${RUNS} runs per depth, round-robin over the depths. Depth 1 (the fixed cost: Node start-up, loading the compiler and std, one layer) took ${mmm(stats(base.map((b) => b.wall)))} s and ${bytesText(stats(base.map((b) => b.rss)).median)}.`,
  );
  lines.push("");
  lines.push(
    table(
      ["depth", "parameters written", "wall s", "s per layer (after depth 1)", "peak RSS", "load avg"],
      rows.map((r) => [
        String(r.depth),
        bytesText(r.bytes),
        mmm(r.wall),
        sig((r.wall.median - stats(base.map((b) => b.wall)).median) / (r.depth - 1)),
        mmm(r.rss, 1e-6, 3) + " MB",
        mmm(r.load),
      ]),
    ),
  );
  lines.push("");
  lines.push(
    `Fits (medians): time = ${sig(tFit.a)} s + ${sig(tFit.b)} s × depth (R² ${tFit.r2.toFixed(4)}); log–log slope of (time − depth-1 time) against (depth − 1) ${sig(tSlope)} (1 = linear). Peak memory = ${bytesText(mFit.a)} + ${bytesText(mFit.b)} × depth (R² ${mFit.r2.toFixed(4)}).`,
  );
  const linear = tFit.r2 >= 0.98 && tSlope < 1.15;
  lines.push("");
  lines.push(
    `- ${linear ? "✅ met" : "❌ missed"}: compile time linear in depth (R² ≥ 0.98 and slope < 1.15): R² ${tFit.r2.toFixed(4)}, slope ${sig(tSlope)}.`,
  );
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

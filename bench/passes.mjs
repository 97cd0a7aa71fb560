#!/usr/bin/env node
// What the passes buy: for each seed example (examples/*.vlm), the ONNX node count, parameter bytes
// and onnxruntime latency after each stage of the pipeline:
//
//   none     every pass skipped (`--passes -<each registered pass>`): the graph as elaborated
//   cleanup  the default pipeline, portable target (folding, CSE, DCE, precomputation)
//   fusion   --target ort-cpu (ONNX Runtime's fused ops)
//   int8     --target ort-cpu --quantize int8
//   int4     --target ort-cpu --quantize int4
//
// Two tiers:
//   full     each example at full size, one graph that fits this machine: clip `forward`,
//            llava_1_5_7b `image_features`, blip2_opt_2_7b `visual_prompt`, flamingo
//            `media_latents`, clinical_outcome `forward` (the 7-9 B LLM graphs would need 28-33 GB of
//            fp32 weights in memory: not runnable here)
//   tiny     every graph of each example at the tiny sizes of the parity fixtures
//            (test/fixtures/parity/seed_*/spec.vlm, their inputs and, where committed, weights)
//
// A stage whose ONNX is identical (node count, op types, parameter bytes) to the stage before it is
// reported as "= previous": the compiler in dist/ does not implement that stage yet.
//
//   npm run build && node bench/passes.mjs                 writes bench/results/passes.md
//   node bench/passes.mjs --tier tiny --runs 10            one tier (writes only with --write)

import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import ort from "onnxruntime-node";
import {
  OUT,
  ROOT,
  agreement,
  bytesText,
  environment,
  environmentBlock,
  listOption,
  load1,
  memAvailable,
  mmm,
  onnxInfo,
  opDiff,
  option,
  readNpy,
  runMeasured,
  sig,
  stats,
  table,
  vlmcApi,
  writeResults,
} from "./lib.mjs";

const TIERS = listOption("--tier", ["tiny", "full"]);
const RUNS = option("--runs", 20);
const FULL_RUNS = option("--full-runs", 5);
const WARMUP = option("--warmup", 2);
const THREADS = option("--threads", 2);
const SPIN = option("--spin", false);
const EXAMPLES = listOption("--examples", ["clip", "llava", "blip2", "flamingo", "healthcare"]);
const full = TIERS.length === 2 && !process.argv.includes("--examples");
const WRITE = option("--write", false) || (full && !option("--no-write", false));
const VLMC = path.join(ROOT, "bin", "vlmc.js");
const WORK = path.join(OUT, "passes");

const api = await vlmcApi();
const env = environment();
const log = (...a) =>
  console.error(`[passes ${new Date().toISOString().slice(11, 19)} load ${load1().toFixed(2)}]`, ...a);

// Every registered pass, so that "none" skips them all, including ones added after this was written.
const passesModule = await import(pathToFileURL(path.join(ROOT, "dist", "src", "passes", "index.js")).href);
const ALL_PASSES = passesModule
  .createPassManager()
  .list()
  .map((p) => p.name);
const STAGES = [
  { key: "none", label: "no passes", args: ["--passes", ALL_PASSES.map((p) => `-${p}`).join(",")] },
  // --quantize none: the fp32 stages stay fp32 where the example's policy quantizes (clip, healthcare: `policy frozen { quantize: int8 }`).
  { key: "cleanup", label: "cleanup", args: ["--quantize", "none"] },
  { key: "fusion", label: "fusion (ort-cpu)", args: ["--target", "ort-cpu", "--quantize", "none"] },
  { key: "int8", label: "int8", args: ["--target", "ort-cpu", "--quantize", "int8"] },
  { key: "int4", label: "int4", args: ["--target", "ort-cpu", "--quantize", "int4"] },
];

const FULL_CASES = {
  clip: { spec: "examples/clip.vlm", model: "clip", graph: "forward" },
  llava: { spec: "examples/llava.vlm", model: "llava_1_5_7b", graph: "image_features" },
  blip2: { spec: "examples/blip2.vlm", model: "blip2_opt_2_7b", graph: "visual_prompt" },
  flamingo: { spec: "examples/flamingo.vlm", model: "flamingo", graph: "media_latents" },
  healthcare: { spec: "examples/healthcare.vlm", model: "clinical_outcome", graph: "forward" },
};

// ---- inputs --------------------------------------------------------------------------------------

/** Dims of a summary type such as `i64[B, T]` with the symbols set (B, N, M = 1; T = 64). */
function inputFor(name, type) {
  const m = type.match(/^(\w+)\[(.*)\]$/);
  const dtype = m ? m[1] : type;
  const dims = m?.[2].trim() ? m[2].split(",").map((d) => d.trim().replace(/\s*<=.*$/, "")) : [];
  const values = { B: 1, N: 1, M: 1, T: 64 };
  const shape = dims.map((d) =>
    Number(
      Function(
        ...Object.keys(values),
        `return (${d.replace(/[A-Za-z_]\w*/g, (s) => (s in values ? s : "1"))});`,
      )(...Object.values(values)),
    ),
  );
  const n = shape.reduce((a, b) => a * b, 1);
  if (dtype === "f32") {
    let s = 12345;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      data[i] = name === "mask" ? 0 : ((s >>> 8) / 2 ** 24) * 2 - 1;
    }
    return new ort.Tensor("float32", data, shape);
  }
  if (dtype === "i64")
    return new ort.Tensor(
      "int64",
      BigInt64Array.from({ length: n }, (_, i) => (name.includes("mask") ? 1n : BigInt((i * 37 + 11) % 1000))),
      shape,
    );
  if (dtype === "bool")
    return new ort.Tensor(
      "bool",
      Uint8Array.from({ length: n }, (_, i) => (i % shape[shape.length - 1] === 0 ? 1 : 0)),
      shape,
    );
  throw new Error(`input ${name}: type ${type} not supported`);
}

function tensorOfNpy(p) {
  const a = readNpy(p);
  const type = { "<f4": "float32", "<i8": "int64", "|b1": "bool", "<i4": "int32" }[a.dtype];
  return new ort.Tensor(type, a.data, a.shape);
}

// ---- cases ---------------------------------------------------------------------------------------

function cases() {
  const out = [];
  if (TIERS.includes("tiny")) {
    for (const ex of EXAMPLES) {
      const dir = path.join(ROOT, "test", "fixtures", "parity", `seed_${ex}`);
      const manifest = path.join(dir, "case.json");
      if (!fs.existsSync(manifest)) continue;
      const c = JSON.parse(fs.readFileSync(manifest, "utf8"));
      const spec = path.join(dir, "spec.vlm");
      const model = fs.readFileSync(spec, "utf8").match(/model\s+(\w+)/)[1];
      const weights = c.weights.endsWith(".safetensors") ? ["--weights", path.join(dir, c.weights)] : [];
      for (const [graph, g] of Object.entries(c.graphs)) {
        out.push({
          tier: "tiny",
          example: ex,
          spec,
          model,
          graph,
          weights,
          inputs: () =>
            Object.fromEntries(Object.entries(g.inputs).map(([k, f]) => [k, tensorOfNpy(path.join(dir, f))])),
        });
      }
    }
  }
  if (TIERS.includes("full")) {
    for (const ex of EXAMPLES) {
      const f = FULL_CASES[ex];
      if (!f) continue;
      out.push({
        tier: "full",
        example: ex,
        ...f,
        spec: path.join(ROOT, f.spec),
        weights: [],
        inputs: () => {
          const el = api.elaborate([path.join(ROOT, f.spec)], { model: f.model, graph: f.graph });
          const s = api.summarize(el.models[0].module, el.models[0].tokens).graphs.find((g) => g.name === f.graph);
          return Object.fromEntries(s.inputs.map((i) => [i.name, inputFor(i.name, i.type)]));
        },
      });
    }
  }
  return out;
}

// ---- measuring -----------------------------------------------------------------------------------

function sameGraph(a, b) {
  return a.paramBytes === b.paramBytes && a.nodes === b.nodes && opDiff(a.ops, b.ops) === "";
}

async function measureCase(c) {
  const dir = path.join(WORK, c.tier, `${c.example}_${c.graph}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const stages = [];
  for (const st of STAGES) {
    const out = path.join(dir, `${st.key}.onnx`);
    const r = await runMeasured(process.execPath, [
      VLMC,
      "compile",
      c.spec,
      "--model",
      c.model,
      "--graph",
      c.graph,
      ...c.weights,
      ...st.args,
      "-o",
      out,
    ]);
    if (r.code !== 0) {
      stages.push({
        ...st,
        error: (r.stderr.split("\n").find((l) => /error/i.test(l)) ?? r.stderr.slice(0, 200)).trim(),
        compileS: r.wall,
      });
      continue;
    }
    const info = await onnxInfo(out);
    const prev = [...stages].reverse().find((s) => s.info);
    const same = prev && st.key !== "cleanup" && st.key !== "none" && sameGraph(prev.info, info);
    // int8 and int4 both follow fusion; int4 is compared with fusion, not with int8.
    const base = st.key === "int4" ? stages.find((s) => s.key === "fusion") : prev;
    const unchanged = st.key === "int4" ? base?.info && sameGraph(base.info, info) : same;
    stages.push({ ...st, file: out, info, unchanged, sameAs: unchanged ? base.key : undefined, compileS: r.wall });
  }
  const runnable = stages.filter((s) => s.info && !s.unchanged);
  const feeds = c.inputs();
  const runs = c.tier === "full" ? FULL_RUNS : RUNS;
  const totalBytes = runnable.reduce((a, s) => a + s.info.paramBytes, 0);
  // Idle intra-op threads block rather than spin (see inference.mjs), unless --spin.
  const opts = {
    executionProviders: ["cpu"],
    intraOpNumThreads: THREADS,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    ...(SPIN ? {} : { extra: { session: { intra_op: { allow_spinning: "0" } } } }),
  };
  for (const s of runnable) {
    s.ms = [];
    s.loads = [];
  }
  const once = async (s) => {
    const t0 = performance.now();
    const out = await s.session.run(feeds);
    const ms = performance.now() - t0;
    if (!s.output) {
      const first = s.session.outputNames[0];
      s.output = out[first].data;
    }
    return ms;
  };
  const interleaved = totalBytes * 2.5 < memAvailable();
  if (interleaved) {
    for (const s of runnable) s.session = await ort.InferenceSession.create(s.file, opts);
    for (let w = 0; w < WARMUP; w++) for (const s of runnable) await once(s);
    for (let r = 0; r < runs; r++)
      for (const s of runnable) {
        s.ms.push(await once(s));
        s.loads.push(load1());
      }
    for (const s of runnable) await s.session.release();
  } else {
    for (const s of runnable) {
      s.session = await ort.InferenceSession.create(s.file, opts);
      for (let w = 0; w < WARMUP; w++) await once(s);
      for (let r = 0; r < runs; r++) {
        s.ms.push(await once(s));
        s.loads.push(load1());
      }
      await s.session.release();
    }
  }
  for (const s of runnable) s.session = undefined;
  const none = runnable.find((s) => s.key === "none");
  for (const s of runnable) {
    s.latency = stats(s.ms);
    s.load = stats(s.loads);
    s.ratio =
      interleaved && none
        ? stats(s.ms.map((t, i) => t / none.ms[i]))
        : none
          ? stats([s.latency.median / none.latency.median])
          : undefined;
    s.agree =
      none && s.output && none.output && typeof s.output[0] === "number" ? agreement(none.output, s.output) : undefined;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  log(
    `${c.tier} ${c.example} ${c.graph}: ${stages.map((s) => `${s.key} ${s.info?.nodes ?? "err"} nodes${s.latency ? ` ${sig(s.latency.median)} ms` : s.unchanged ? " (=)" : ""}`).join(", ")}`,
  );
  return { ...c, stages, interleaved, runs };
}

// ---- report --------------------------------------------------------------------------------------

function report(results) {
  const lines = [
    "# What the passes buy",
    "",
    "Generated by `node bench/passes.mjs` (see bench/README.md); do not edit by hand.",
    "",
  ];
  lines.push(
    environmentBlock(env, [
      `Sessions: onnxruntime-node ${env.ort}, CPU, ${THREADS} intra-op threads, graphOptimizationLevel "all", ${SPIN ? "spinning intra-op threads" : "session.intra_op.allow_spinning = 0"}. ${WARMUP} warm-up runs, then ${RUNS} rounds (tiny) / ${FULL_RUNS} rounds (full size); in each round every stage runs once, in turn; "× none" is the per-round ratio to the no-passes graph (median, min–max).`,
      `Stages: none = \`--passes ${ALL_PASSES.map((p) => `-${p}`).join(",")}\`; cleanup = default pipeline, portable, \`--quantize none\`; fusion = \`--target ort-cpu --quantize none\`; int8/int4 = \`--target ort-cpu --quantize int8|int4\`, which quantizes what the example's policy picks (or, without a policy, its frozen non-head components). Nodes: ONNX nodes of the graph; params: bytes of initializers and Constant tensors. cos: cosine of the first output against the no-passes graph's.`,
      "Full-size inputs: batch 1, 64 text tokens, deterministic pseudo-random values; tiny inputs: the parity fixtures'.",
    ]),
  );
  for (const tier of ["full", "tiny"]) {
    const rs = results.filter((r) => r.tier === tier);
    if (rs.length === 0) continue;
    lines.push(
      "",
      tier === "full" ? "## Full size (one runnable graph per example)" : "## Tiny (parity-fixture sizes, every graph)",
      "",
    );
    const rows = [];
    for (const r of rs) {
      if (r.error) {
        rows.push([`${r.example} · ${r.graph}`, "–", "–", "–", "–", "–", "–", `not measured: ${r.error}`]);
        continue;
      }
      for (const s of r.stages) {
        const name = s.key === "none" ? `**${r.example} · ${r.graph}**` : "";
        if (s.error) rows.push([name, s.label, "–", "–", "–", "–", "–", `compile failed: ${s.error}`]);
        else if (s.unchanged)
          rows.push([
            name,
            s.label,
            String(s.info.nodes),
            bytesText(s.info.paramBytes),
            `= ${s.sameAs}`,
            "–",
            "–",
            `not available: identical to ${s.sameAs} in this build`,
          ]);
        else
          rows.push([
            name,
            s.label,
            String(s.info.nodes),
            bytesText(s.info.paramBytes),
            mmm(s.latency, 1, 3),
            s.key === "none" ? "1" : mmm(s.ratio, 1, 3),
            s.agree ? s.agree.cosine.toFixed(6) : "–",
            `compile ${sig(s.compileS)} s; load avg ${sig(s.load.median)}`,
          ]);
      }
    }
    lines.push(table(["example · graph", "stage", "nodes", "params", "latency ms", "× none", "cos", "notes"], rows));
  }
  lines.push("");
  lines.push(
    "Not covered: the full-size LLM graphs (LLaVA-1.5-7B, BLIP-2 OPT-2.7B, OpenFlamingo-9B `forward`): their fp32 weights (15–33 GB) do not fit this machine's 24 GB alongside onnxruntime; their node counts before and after the passes are in `vlmc compile --report`, and their compile cost in compile.md.",
  );
  return lines.join("\n");
}

// ---- main ----------------------------------------------------------------------------------------

const results = [];
for (const c of cases()) {
  try {
    log(`${c.tier} ${c.example} ${c.graph}: compiling ${STAGES.length} stages`);
    results.push(await measureCase(c));
  } catch (e) {
    log(`${c.tier} ${c.example} ${c.graph}: failed: ${e instanceof Error ? e.stack : String(e)}`);
    results.push({ ...c, error: e instanceof Error ? e.message.split("\n")[0] : String(e) });
  }
}
const text = report(results);
fs.mkdirSync(WORK, { recursive: true });
fs.writeFileSync(path.join(WORK, "last.md"), text + "\n");
if (WRITE) writeResults("passes.md", text);
else console.log(text);

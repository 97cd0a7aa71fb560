#!/usr/bin/env node
// Inference benchmark: vlmc's ONNX against torch.onnx.export's for the same architecture with the
// same weights, both run in onnxruntime-node from this one process (side by side, interleaved).
//
//   npm run build && node bench/inference.mjs            all models, writes bench/results/inference.md
//   node bench/inference.mjs --models vit_b_16 --runs 5  a subset (writes only with --write)
//
// For each model bench/peers.py builds (once; --rebuild redoes it) random weights under vlmc's names,
// a random input and the peer: the PyTorch model exported by torch.onnx.export at opset 17. vlmc
// compiles the model's .vlm with those weights as: portable, ort-cpu (fusion), ort-cpu --quantize
// int8, ort-cpu --quantize int4. A variant whose ONNX is identical in op types and parameter bytes
// to the one before it (fusion to portable, int8/int4 to fused) is reported as not available: the
// compiler in dist/ does not implement it yet.
//
// Every session: onnxruntime-node, CPU, 2 intra-op threads, 1 inter-op thread, sequential,
// graphOptimizationLevel "all"; the fused graph also at "disabled" (the peer too, for reference).
// Load time: InferenceSession.create from the file, `--loads` times per variant, round-robin.
// Latency: `--warmup` runs, then `--runs` rounds; in each round every variant runs once, in turn,
// so the load of the machine falls on all of them alike; the ratio to the peer is taken per round.
// Peak: a 2048³ MatMul (fp32) and MatMulInteger (uint8 × int8), timed before and after the models.

import fs from "node:fs";

import path from "node:path";
import ort from "onnxruntime-node";
import {
  OUT,
  PYTHON,
  ROOT,
  BENCH,
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

const ALL = ["vit_b_16", "resnet50", "clip_vit_b_32_image", "llava_1_5_image", "blip2_qformer"];
const MODELS = listOption("--models", ALL);
const RUNS = option("--runs", 30);
const LARGE_RUNS = option("--large-runs", 5); // models over 100 GFLOP
const WARMUP = option("--warmup", 2);
const LOADS = option("--loads", 7);
const THREADS = option("--threads", 2);
const SPIN = option("--spin", false);
const REBUILD = option("--rebuild", false);
const RECOMPILE = option("--recompile", false);
const full = MODELS.length === ALL.length && MODELS.every((m) => ALL.includes(m));
const WRITE = option("--write", false) || (full && !option("--no-write", false));

const api = await vlmcApi();
const env = environment();
const log = (...a) =>
  console.error(`[inference ${new Date().toISOString().slice(11, 19)} load ${load1().toFixed(2)}]`, ...a);

/** `prepack: false` sets session.disable_prepacking: kernels read the weights where they lie. */
function sessionOptions(level, { prepack = true } = {}) {
  const session = {
    // Without --spin, intra-op threads block instead of spinning when idle: on a shared 2-core
    // machine, the spinning threads of the session that just ran (and other processes) otherwise
    // steal the cores from the next one, which made interleaved figures swing by ±30%.
    ...(SPIN ? {} : { intra_op: { allow_spinning: "0" } }),
    ...(prepack ? {} : { disable_prepacking: "1" }),
  };
  return {
    executionProviders: ["cpu"],
    intraOpNumThreads: THREADS,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: level,
    ...(Object.keys(session).length > 0 ? { extra: { session } } : {}),
  };
}

/** `items` starting at index `by` (mod length), wrapping around. */
function rotated(items, by) {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

async function createTimed(file, level, options) {
  const t0 = performance.now();
  const s = await ort.InferenceSession.create(file, sessionOptions(level, options));
  return { session: s, ms: performance.now() - t0 };
}

// ---- peak ----------------------------------------------------------------------------------------

async function peak(label) {
  const dir = path.join(OUT, "peak");
  const n = 2048;
  if (!fs.existsSync(path.join(dir, "matmul_int8.onnx"))) {
    const r = await runMeasured(PYTHON, [path.join(BENCH, "peers.py"), "peak", dir, "--size", String(n)]);
    if (r.code !== 0) throw new Error(`peers.py peak failed:\n${r.stderr}`);
  }
  const flops = 2 * n * n * n;
  const out = {};
  for (const [kind, file, make] of [
    [
      "fp32",
      "matmul_fp32.onnx",
      () =>
        new ort.Tensor(
          "float32",
          Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 500 - 1),
          [n, n],
        ),
    ],
    [
      "int8",
      "matmul_int8.onnx",
      () =>
        new ort.Tensor(
          "uint8",
          Uint8Array.from({ length: n * n }, (_, i) => (i * 7919) % 256),
          [n, n],
        ),
    ],
  ]) {
    const s = await ort.InferenceSession.create(path.join(dir, file), sessionOptions("all"));
    const feeds = { A: make() };
    for (let i = 0; i < 2; i++) await s.run(feeds);
    const gflops = [];
    const loads = [];
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      await s.run(feeds);
      gflops.push(flops / ((performance.now() - t0) / 1000) / 1e9);
      loads.push(load1());
    }
    await s.release();
    out[kind] = { ...stats(gflops), load: stats(loads) };
  }
  log(`peak (${label}): fp32 ${sig(out.fp32.median)} GFLOP/s, int8 ${sig(out.int8.median)} GOP/s`);
  return out;
}

// ---- building and compiling ----------------------------------------------------------------------

async function buildPeer(name) {
  const dir = path.join(OUT, "inference", name);
  const metaPath = path.join(dir, "meta.json");
  if (!REBUILD && fs.existsSync(metaPath)) return JSON.parse(fs.readFileSync(metaPath, "utf8"));
  log(`${name}: building peer (weights, input, torch.onnx.export)`);
  const r = await runMeasured(PYTHON, [path.join(BENCH, "peers.py"), "build", name, path.relative(ROOT, dir)]);
  if (r.code !== 0) throw new Error(`peers.py build ${name} failed:\n${r.stderr.slice(-3000)}`);
  return JSON.parse(fs.readFileSync(metaPath, "utf8"));
}

const VARIANTS = [
  // --quantize none: fp32 even where the spec's own policy quantizes (examples/clip.vlm: `policy frozen { quantize: int8 }`).
  { key: "portable", label: "vlmc portable", args: ["--target", "portable", "--quantize", "none"] },
  {
    key: "fused",
    label: "vlmc ort-cpu (fused)",
    args: ["--target", "ort-cpu", "--quantize", "none"],
    base: "portable",
    what: "fusion",
  },
  {
    key: "int8",
    label: "vlmc ort-cpu int8",
    args: ["--target", "ort-cpu", "--quantize", "int8"],
    base: "fused",
    what: "int8 quantization",
    policy: true,
  },
  {
    key: "int4",
    label: "vlmc ort-cpu int4",
    args: ["--target", "ort-cpu", "--quantize", "int4"],
    base: "fused",
    what: "int4 quantization",
    policy: true,
  },
  // The fused graph with its weights in a 4 KiB-aligned external data file, which onnxruntime
  // memory-maps on CPU instead of copying out of the protobuf: measured for load time only at
  // "disabled", with and without prepacking (see the load target).
  {
    key: "fused_ext",
    label: "vlmc ort-cpu (fused), external data",
    args: ["--target", "ort-cpu", "--quantize", "none", "--external-data", "always"],
    deployOnly: true,
  },
];

// `--quantize` alone quantizes frozen components only (heads never); the reference models' backbones
// are trainable components, so the int8/int4 variants compile a copy of the spec with these rules
// added to the model: every encoder and fusion component quantized, in the mode the flag picks.
const QUANT_POLICY = ["policy encoder { quantize: int8 }", "policy fusion { quantize: int8 }"];

/** The spec's text with `lines` added at the end of model `model` (brace counting, comments skipped). */
function withPolicy(text, model, lines) {
  const start = text.search(new RegExp(`\\bmodel\\s+${model}\\s*\\{`));
  if (start < 0) throw new Error(`model ${model} not found`);
  let depth = 0;
  for (let i = text.indexOf("{", start); i < text.length; i++) {
    const ch = text[i];
    if (ch === "/" && text[i + 1] === "/") i = text.indexOf("\n", i) - 1;
    else if (ch === '"') i = text.indexOf('"', i + 1);
    else if (ch === "{") depth++;
    else if (ch === "}" && --depth === 0)
      return `${text.slice(0, i)}\n  // added by bench/inference.mjs\n${lines.map((l) => `  ${l}\n`).join("")}${text.slice(i)}`;
  }
  throw new Error(`model ${model}: no closing brace`);
}

async function compileVariant(meta, v) {
  const dir = path.dirname(meta.peer);
  const file = path.join(dir, `vlmc_${v.key}.onnx`);
  if (
    RECOMPILE ||
    !fs.existsSync(file) ||
    fs.statSync(file).mtimeMs < fs.statSync(path.join(ROOT, "dist", "src", "index.js")).mtimeMs
  ) {
    let spec = meta.spec;
    if (v.policy) {
      spec = path.join(dir, "spec_quantized.vlm");
      fs.writeFileSync(spec, withPolicy(fs.readFileSync(path.join(ROOT, meta.spec), "utf8"), meta.model, QUANT_POLICY));
    }
    const args = [
      path.join(ROOT, "bin", "vlmc.js"),
      "compile",
      spec,
      "--model",
      meta.model,
      "--graph",
      meta.graph,
      ...meta.weights.flatMap((w) => ["--weights", w]),
      ...v.args,
      "-o",
      file,
    ];
    const r = await runMeasured(process.execPath, args);
    if (r.code !== 0)
      return {
        ok: false,
        error: (r.stderr.split("\n").find((l) => /error/i.test(l)) ?? r.stderr.slice(0, 300)).trim(),
      };
  }
  return { ok: true, file, info: await onnxInfo(file) };
}

function sameGraph(a, b) {
  return a.paramBytes === b.paramBytes && a.nodes === b.nodes && opDiff(a.ops, b.ops) === "";
}

// ---- measuring one model -------------------------------------------------------------------------

function outputOf(result, name) {
  const t = result[name] ?? Object.values(result)[0];
  return t.data;
}

async function measureModel(name) {
  const meta = await buildPeer(name);
  const { elaborate, summarize } = api;
  const el = elaborate([path.join(ROOT, meta.spec)], { model: meta.model, graph: meta.graph });
  const flops = el.models[0]?.module
    ? summarize(el.models[0].module, el.models[0].tokens).graphs.find((g) => g.name === meta.graph)?.flops
    : undefined;

  const compiled = {};
  const notes = [];
  for (const v of VARIANTS) {
    log(`${name}: compiling ${v.label}`);
    const c = await compileVariant(meta, v);
    if (!c.ok) {
      compiled[v.key] = { available: false, why: `compile failed: ${c.error}` };
      continue;
    }
    const base = v.base ? compiled[v.base] : undefined;
    if (base?.info && sameGraph(base.info, c.info)) {
      compiled[v.key] = {
        available: false,
        why: `not available: ${v.what} changes nothing in this build (same ${c.info.nodes} nodes, same op types, same parameter bytes as ${v.base})`,
        file: c.file,
        info: c.info,
      };
    } else compiled[v.key] = { available: true, file: c.file, info: c.info, label: v.label };
  }
  const peerInfo = await onnxInfo(meta.peer);

  // The sessions: the peer at all and disabled, vlmc's variants at all, the fused graph (or, without
  // fusion, the portable graph) at disabled.
  const fusedOrPortable = compiled.fused.available ? "fused" : "portable";
  const sessions = [
    { key: "peer", label: "peer (torch.onnx.export)", file: meta.peer, level: "all", info: peerInfo },
    { key: "peer@disabled", label: "peer (torch.onnx.export)", file: meta.peer, level: "disabled", info: peerInfo },
    ...VARIANTS.filter((v) => compiled[v.key].available && !v.deployOnly).map((v) => ({
      key: v.key,
      label: v.label,
      file: compiled[v.key].file,
      level: "all",
      info: compiled[v.key].info,
    })),
    ...(compiled[fusedOrPortable].available
      ? [
          {
            key: `${fusedOrPortable}@disabled`,
            label: fusedOrPortable === "fused" ? "vlmc ort-cpu (fused)" : "vlmc portable (fusion not available)",
            file: compiled[fusedOrPortable].file,
            level: "disabled",
            info: compiled[fusedOrPortable].info,
          },
        ]
      : []),
    ...(compiled.fused_ext.available && compiled.fused.available
      ? [
          {
            key: "fused_ext@disabled",
            label: compiled.fused_ext.label,
            file: compiled.fused_ext.file,
            level: "disabled",
            info: compiled.fused_ext.info,
          },
          {
            key: "fused_ext@disabled/no-prepack",
            label: `${compiled.fused_ext.label}, no prepacking`,
            file: compiled.fused_ext.file,
            level: "disabled",
            prepack: false,
            info: compiled.fused_ext.info,
          },
        ]
      : []),
  ];

  // Load times, round-robin.
  log(`${name}: load times (${LOADS} rounds × ${sessions.length} sessions)`);
  for (const s of sessions) s.loadMs = [];
  {
    const warm = await ort.InferenceSession.create(sessions[0].file, sessionOptions("disabled")); // first create pays for ORT's own start-up
    await warm.release();
  }
  for (let r = 0; r < LOADS; r++) {
    for (const s of rotated(sessions, r)) {
      globalThis.gc?.();
      const { session, ms } = await createTimed(s.file, s.level, s);
      s.loadMs.push(ms);
      await session.release();
    }
  }

  // Latency, interleaved when the models are small enough to hold at once.
  const input = readNpy(meta.input.file);
  const feeds = { [meta.input.name]: new ort.Tensor("float32", input.data, input.shape) };
  const runs = flops !== undefined && flops > 100e9 ? LARGE_RUNS : RUNS;
  const totalBytes = sessions.reduce(
    (a, s) => a + fs.statSync(s.file).size + (fs.existsSync(`${s.file}.data`) ? fs.statSync(`${s.file}.data`).size : 0),
    0,
  );
  // All sessions open at once need about twice their files' size (weights plus prepacked copies).
  const interleaved = totalBytes * 2.5 < memAvailable();
  for (const s of sessions) {
    s.runMs = [];
    s.loads = [];
  }
  const once = async (s) => {
    const t0 = performance.now();
    const out = await s.session.run(feeds);
    const ms = performance.now() - t0;
    s.output ??= outputOf(out, meta.output);
    return ms;
  };
  if (interleaved) {
    log(`${name}: latency, ${sessions.length} sessions interleaved, ${WARMUP} warm-up + ${runs} rounds`);
    for (const s of sessions) s.session = (await createTimed(s.file, s.level, s)).session;
    for (let w = 0; w < WARMUP; w++) for (const s of sessions) await once(s);
    // The order rotates each round, so no session always runs right after the same other one.
    for (let r = 0; r < runs; r++) {
      for (const s of rotated(sessions, r)) {
        s.runMs.push(await once(s));
        s.loads.push(load1());
      }
    }
    for (const s of sessions) await s.session.release();
  } else {
    log(
      `${name}: latency, ${sessions.length} sessions one after another (${bytesText(totalBytes)} of models), ${WARMUP} warm-up + ${runs} runs each`,
    );
    for (const s of sessions) {
      s.session = (await createTimed(s.file, s.level, s)).session;
      for (let w = 0; w < WARMUP; w++) await once(s);
      for (let r = 0; r < runs; r++) {
        s.runMs.push(await once(s));
        s.loads.push(load1());
      }
      await s.session.release();
      s.session = undefined;
      globalThis.gc?.();
    }
  }

  const peer = sessions.find((s) => s.key === "peer");
  const torchOut = fs.existsSync(meta.torch_output) ? readNpy(meta.torch_output).data : undefined;
  const rows = sessions.map((s) => {
    const ratios = interleaved
      ? s.runMs.map((t, i) => t / peer.runMs[i])
      : [stats(s.runMs).median / stats(peer.runMs).median];
    return {
      key: s.key,
      label: s.label,
      level: s.prepack === false ? `${s.level}, no prepacking` : s.level,
      nodes: s.info.nodes,
      paramBytes: s.info.paramBytes,
      latency: stats(s.runMs),
      ratio: stats(ratios),
      loadMs: stats(s.loadMs),
      loadRatio: stats(s.loadMs).median / stats(peer.loadMs).median,
      vsPeer: agreement(peer.output, s.output),
      vsTorch: torchOut ? agreement(torchOut, s.output) : undefined,
      gflops: flops !== undefined ? flops / (stats(s.runMs).median / 1000) / 1e9 : undefined,
      load: stats(s.loads),
    };
  });
  for (const v of VARIANTS) if (!compiled[v.key].available) notes.push(`${v.label}: ${compiled[v.key].why}`);
  const pOps = Object.entries(peerInfo.ops)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
  const vInfo = compiled.portable.info;
  const vOps = vInfo
    ? Object.entries(vInfo.ops)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 6)
        .map(([k, n]) => `${k} ${n}`)
        .join(", ")
    : "";
  notes.push(
    `graphs: peer ${peerInfo.nodes} nodes (${pOps}, …); vlmc portable ${vInfo?.nodes ?? "–"} nodes (${vOps}, …)`,
  );
  return { name, meta, flops, rows, notes, interleaved, runs, compiled };
}

// ---- report --------------------------------------------------------------------------------------

function target(ok, text) {
  return `${ok === undefined ? "⚪ not measurable" : ok ? "✅ met" : "❌ missed"}: ${text}`;
}

function report(results, peaks) {
  const peakAll = {
    fp32: stats([
      ...(peaks.before.fp32 ? [peaks.before.fp32.median] : []),
      ...(peaks.after ? [peaks.after.fp32.median] : []),
    ]),
    int8: stats([
      ...(peaks.before.int8 ? [peaks.before.int8.median] : []),
      ...(peaks.after ? [peaks.after.int8.median] : []),
    ]),
  };
  const fp32Peak = peakAll.fp32.max;
  const int8Peak = peakAll.int8.max;
  const lines = [];
  lines.push("# Inference: vlmc against torch.onnx.export");
  lines.push("");
  lines.push("Generated by `node bench/inference.mjs` (see bench/README.md); do not edit by hand.");
  lines.push("");
  lines.push(
    environmentBlock(env, [
      `Sessions: onnxruntime-node ${env.ort}, CPU execution provider, ${THREADS} intra-op threads, 1 inter-op thread, sequential; graphOptimizationLevel "all" unless marked "disabled"; ${SPIN ? "intra-op threads spin when idle (ORT's default)" : "session.intra_op.allow_spinning = 0 for every session (idle threads block; with ORT's default spinning, the threads of the session that just ran steal this shared 2-core machine from the next one)"}. Batch 1.`,
      `Method: ${WARMUP} warm-up runs per session, then ${RUNS} rounds (${LARGE_RUNS} for models over 100 GFLOP); within a round every session runs once, in turn, starting one session later each round (so that no session always follows the same one), so that load changes fall on all alike, and the ratio to the peer is taken per round (median, min–max over rounds). Where the sessions would not fit in memory at once (2.5× their files' size against MemAvailable), they run one after another and the ratio is of medians. Load time: InferenceSession.create from the file, ${LOADS} times per session, round-robin in the same rotating order.`,
      "Peer: the same architecture in PyTorch with the same random weights (bench/peers.py: torchvision and transformers classes), exported by torch.onnx.export at opset 17 with a dynamic batch axis and constant folding.",
      "Agreement: the output against the peer's output in onnxruntime (max abs error; cosine similarity), and in parentheses against PyTorch's own fp32 output.",
      "GFLOP/s: the model's FLOPs (vlmc summary, 2 per multiply-add) over the median latency; % of peak against the fp32 MatMul peak below (int8/int4 variants: against the MatMulInteger peak).",
    ]),
  );
  lines.push("");
  lines.push("## Peak");
  lines.push("");
  lines.push(
    table(
      ["kernel", "before the models", "after the models", "load (1 min) before / after"],
      [
        [
          "MatMul fp32 2048³ (GFLOP/s)",
          mmm(peaks.before.fp32),
          peaks.after ? mmm(peaks.after.fp32) : "–",
          `${sig(peaks.before.fp32.load.median)} / ${peaks.after ? sig(peaks.after.fp32.load.median) : "–"}`,
        ],
        [
          "MatMulInteger uint8×int8 2048³ (GOP/s)",
          mmm(peaks.before.int8),
          peaks.after ? mmm(peaks.after.int8) : "–",
          `${sig(peaks.before.int8.load.median)} / ${peaks.after ? sig(peaks.after.int8.load.median) : "–"}`,
        ],
      ],
    ),
  );
  lines.push("");
  lines.push(
    `Peak used for the % columns: the better median, ${sig(fp32Peak)} GFLOP/s fp32 and ${sig(int8Peak)} GOP/s int8.`,
  );

  const summaryRows = [];
  for (const r of results) {
    if (r.error) {
      lines.push("", `## ${r.name}`, "", `Not measured: ${r.error}`);
      continue;
    }
    lines.push("");
    lines.push(`## ${r.name}`);
    lines.push("");
    lines.push(
      `${r.meta.description}. ${(r.meta.params / 1e6).toFixed(1)} M parameters; ${r.flops !== undefined ? `${sig(r.flops / 1e9)} GFLOP` : "FLOPs unknown"} at batch 1; input ${r.meta.input.name} [${r.meta.input.shape.join(", ")}]. vlmc: \`vlmc compile ${r.meta.spec} --model ${r.meta.model} --graph ${r.meta.graph} --weights …\`. ${r.interleaved ? `${r.runs} interleaved rounds.` : `${r.runs} runs per session, one session after another.`}`,
    );
    lines.push("");
    lines.push(
      table(
        [
          "variant",
          "opt. level",
          "nodes",
          "params",
          "latency ms",
          "× peer",
          "load ms",
          "load × peer@all",
          "max abs err",
          "cosine",
          "GFLOP/s",
          "% peak",
          "load avg",
        ],
        r.rows.map((x) => {
          const isQuant = x.key === "int8" || x.key === "int4";
          const pk = isQuant ? int8Peak : fp32Peak;
          const torchNote = x.vsTorch ? ` (${sig(x.vsTorch.maxAbs, 2)})` : "";
          const cosNote = x.vsTorch ? ` (${x.vsTorch.cosine.toFixed(6)})` : "";
          return [
            x.label,
            x.level,
            String(x.nodes),
            bytesText(x.paramBytes),
            mmm(x.latency),
            x.key === "peer" ? "1" : mmm(x.ratio, 1, 3),
            mmm(x.loadMs),
            x.key === "peer" ? "1" : sig(x.loadRatio, 3),
            x.key === "peer" ? `0${torchNote}` : `${sig(x.vsPeer.maxAbs, 2)}${torchNote}`,
            x.key === "peer" ? `1${cosNote}` : `${x.vsPeer.cosine.toFixed(6)}${cosNote}`,
            x.gflops !== undefined ? sig(x.gflops) : "–",
            x.gflops !== undefined ? `${sig((100 * x.gflops) / pk, 2)}%` : "–",
            `${sig(x.load.median)} (${sig(x.load.min)}–${sig(x.load.max)})`,
          ];
        }),
      ),
    );
    lines.push("");
    for (const n of r.notes) lines.push(`- ${n}`);
    const get = (k) => r.rows.find((x) => x.key === k);
    summaryRows.push({ r, get });
  }

  // Targets.
  lines.push("");
  lines.push("## Targets");
  lines.push("");
  const vit = summaryRows.find((s) => s.r.name === "vit_b_16");
  if (!vit) lines.push("ViT-B/16 was not measured in this run.");
  else {
    const { get } = vit;
    const fused = get("fused");
    lines.push(
      "- " +
        (fused
          ? target(
              fused.ratio.median <= 0.95,
              `ViT-B/16 ort-cpu fp32 ≤ 0.95× the peer's latency: measured ${sig(fused.ratio.median)}× (${sig(fused.ratio.min)}–${sig(fused.ratio.max)})${fused.ratio.median > 0.95 ? `, ${sig((fused.ratio.median / 0.95 - 1) * 100, 2)}% over the target` : ""}`,
            )
          : target(
              undefined,
              `ViT-B/16 ort-cpu fp32 ≤ 0.95× the peer: fusion is not available in this build; the portable graph runs at ${sig(get("portable").ratio.median)}× the peer (${sig(get("portable").ratio.min)}–${sig(get("portable").ratio.max)})${get("portable").ratio.median > 0.95 ? `, ${sig((get("portable").ratio.median / 0.95 - 1) * 100, 2)}% over the 0.95× target` : ""}`,
            )),
    );
    const i8 = get("int8");
    lines.push(
      "- " +
        (i8
          ? target(
              i8.ratio.median <= 0.45 && i8.vsPeer.cosine >= 0.99,
              `ViT-B/16 int8 ≤ 0.45× the peer with cosine ≥ 0.99: measured ${sig(i8.ratio.median)}×, cosine ${i8.vsPeer.cosine.toFixed(4)}${i8.ratio.median > 0.45 ? `; latency ${sig((i8.ratio.median / 0.45 - 1) * 100, 2)}% over the target` : ""}${i8.vsPeer.cosine < 0.99 ? `; cosine ${sig(0.99 - i8.vsPeer.cosine, 2)} short` : ""}`,
            )
          : target(
              undefined,
              "ViT-B/16 int8 ≤ 0.45× the peer with cosine ≥ 0.99: int8 quantization is not available in this build",
            )),
    );
    const peer = get("peer");
    // Every way vlmc's graph was loaded at "disabled": inline, external data, external without prepacking.
    for (const dis of ["fused@disabled", "portable@disabled", "fused_ext@disabled", "fused_ext@disabled/no-prepack"]
      .map(get)
      .filter(Boolean)) {
      const loadRatio = dis.loadMs.median / peer.loadMs.median;
      const speed = dis.latency.median / peer.latency.median;
      const what = dis.key === "portable@disabled" ? "vlmc's portable graph (fusion not available)" : `${dis.label}`;
      lines.push(
        "- " +
          target(
            loadRatio <= 1 / 3 && speed <= 1,
            `${what} at "${dis.level}" loads in ≤ 1/3 of the peer's load time at "all" while running as fast: load ${sig(dis.loadMs.median)} ms vs ${sig(peer.loadMs.median)} ms = ${sig(loadRatio)}× (target ≤ 0.333×${loadRatio > 1 / 3 ? `, ${sig((loadRatio * 3 - 1) * 100, 2)}% over` : ""}); latency ${sig(dis.latency.median)} ms vs ${sig(peer.latency.median)} ms = ${sig(speed)}× (target ≤ 1×${speed > 1 ? `, ${sig((speed - 1) * 100, 2)}% slower` : ""})`,
          ),
      );
    }
  }

  // One-line summary across models.
  lines.push("");
  lines.push("## Summary: latency relative to the peer (median over rounds)");
  lines.push("");
  const keys = [
    "portable",
    "fused",
    "int8",
    "int4",
    "portable@disabled",
    "fused@disabled",
    "fused_ext@disabled",
    "fused_ext@disabled/no-prepack",
  ];
  lines.push(
    table(
      [
        "model",
        "peer ms",
        ...keys.map((k) => `${k} ×`),
        "peer load ms",
        "load × (inline / external / external, no prepacking)",
      ],
      summaryRows.map(({ r, get }) => {
        const loads = [
          get("fused@disabled") ?? get("portable@disabled"),
          get("fused_ext@disabled"),
          get("fused_ext@disabled/no-prepack"),
        ].map((x) => (x ? sig(x.loadRatio) : "–"));
        return [
          r.name,
          sig(get("peer").latency.median),
          ...keys.map((k) => (get(k) ? sig(get(k).ratio.median) : "n/a")),
          sig(get("peer").loadMs.median),
          loads.join(" / "),
        ];
      }),
    ),
  );
  lines.push("");
  lines.push("n/a: the variant is not available in this build (see each model's notes).");
  return lines.join("\n");
}

// ---- main ----------------------------------------------------------------------------------------

const peaks = { before: await peak("before") };
const results = [];
for (const name of MODELS) {
  try {
    results.push(await measureModel(name));
  } catch (e) {
    log(`${name}: failed: ${e instanceof Error ? e.message : String(e)}`);
    results.push({ name, error: e instanceof Error ? e.message.split("\n")[0] : String(e) });
  }
  const done = results[results.length - 1];
  if (!done.error) {
    const peer = done.rows.find((x) => x.key === "peer");
    log(
      `${name}: ${done.rows.map((x) => `${x.key}@${x.level} ${sig(x.latency.median)} ms (${x.key === "peer" ? "1" : sig(x.ratio.median)}×) load ${sig(x.loadMs.median)} ms cos ${x.vsPeer.cosine.toFixed(5)}`).join("; ")} [peer ${sig(peer.latency.median)} ms]`,
    );
  }
}
peaks.after = await peak("after");
const text = report(results, peaks);
fs.mkdirSync(path.join(OUT, "inference"), { recursive: true });
fs.writeFileSync(path.join(OUT, "inference", "last.md"), text + "\n");
fs.writeFileSync(
  path.join(OUT, "inference", "last.json"),
  JSON.stringify(
    { env, peaks, results: results.map((r) => ({ ...r, meta: r.meta, rows: r.rows?.map((x) => ({ ...x })) })) },
    (k, v) => (k === "output" || k === "compiled" ? undefined : v),
    1,
  ),
);
if (WRITE) writeResults("inference.md", text);
else console.log(text);

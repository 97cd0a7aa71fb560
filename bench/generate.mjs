// Decode speed at batch 1 for a LLaMA shaped like TinyLlama-1.1B: transformers' `generate` in
// PyTorch fp32 (bench/generate.py) and vlmc packages of the same model (fp32, int4, … given with
// --package LABEL=DIR) side by side in one run, against the machine's measured copy bandwidth and
// the bytes of weights a decode step reads. Also the prefill of a LLaVA-1.5-sized prompt (576
// image tokens + 32 text) and the time to the first token. Writes bench/results/generate.md
// (or --out NAME).
//
//   npm run build && node bench/generate.mjs [--package fp32=DIR --package int4=DIR] [--python PATH]
//   node bench/generate.mjs --skip-torch --provider cuda --package cuda-fp16=DIR --out generate-gpu.md
//   (GPU: bench/gpu.sh does all of it; --provider cuda opens the packages on ONNX Runtime's CUDA provider)

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import {
  BENCH,
  PYTHON as REFERENCE_PYTHON,
  cpuMsPerStep,
  environment,
  environmentBlock,
  option,
  randomIds,
  sig,
  stats,
  table,
  vlmcApi,
  writeResults,
} from "./lib.mjs";

const NEW_TOKENS = option("--new-tokens", 64);
const PROMPT_TOKENS = option("--prompt-tokens", 32);
const RUNS = option("--runs", 3);
const PYTHON = option("--python", REFERENCE_PYTHON);
const OUT_NAME = option("--out", "generate.md");
/** onnxruntime-node's execution provider for the packages: cpu (default) or cuda. */
const PROVIDER = option("--provider", "cpu");
/** Where and in what PyTorch runs (bench/gpu.sh: cuda, float16). */
const TORCH_DEVICE = option("--torch-device", "cpu");
const TORCH_DTYPE = option("--torch-dtype", "float32");

/** `--package LABEL=DIR`, repeatable. */
function packages() {
  const out = [];
  process.argv.forEach((a, i) => {
    if (a !== "--package") return;
    const [label, dir] = process.argv[i + 1].split("=");
    out.push({ label, dir });
  });
  return out;
}

// ---- copy bandwidth ------------------------------------------------------------------------------

const COPY_WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const a = Buffer.alloc(workerData.bytes, 1);
const b = Buffer.alloc(workerData.bytes);
a.copy(b);
parentPort.postMessage("ready");
parentPort.on("message", (rounds) => {
  const t = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) a.copy(b);
  parentPort.postMessage(Number(process.hrtime.bigint() - t) / 1e9);
});`;

/**
 * Bytes copied per second by `threads` threads at once, each copying its own `bytes` buffer
 * (memcpy under Buffer.copy), median of `repeats`. Memory traffic is twice this (read + write).
 */
async function copyRate(threads, bytes, rounds = 4, repeats = 5) {
  const workers = Array.from({ length: threads }, () => new Worker(COPY_WORKER, { eval: true, workerData: { bytes } }));
  const next = (w) => new Promise((resolve) => w.once("message", resolve));
  await Promise.all(workers.map(next));
  const rates = [];
  for (let r = 0; r < repeats; r++) {
    const times = await Promise.all(
      workers.map((w) => {
        w.postMessage(rounds);
        return next(w);
      }),
    );
    rates.push((threads * bytes * rounds) / Math.max(...times));
  }
  await Promise.all(workers.map((w) => w.terminate()));
  return stats(rates);
}

// ---- PyTorch -------------------------------------------------------------------------------------

function torchRun() {
  const args = [path.join(BENCH, "generate.py"), "--new-tokens", String(NEW_TOKENS), "--runs", String(RUNS)];
  args.push("--prompt-tokens", String(PROMPT_TOKENS), "--device", TORCH_DEVICE, "--dtype", TORCH_DTYPE);
  const out = execFileSync(PYTHON, args, {
    encoding: "utf8",
    maxBuffer: 1 << 24,
    stdio: ["ignore", "pipe", "inherit"],
  });
  return JSON.parse(out.trim().split("\n").at(-1));
}

// ---- vlmc packages -------------------------------------------------------------------------------

async function drain(iterator) {
  for (;;) {
    const r = await iterator.next();
    if (r.done) return r.value;
  }
}

/** The GPU's name, driver and memory as nvidia-smi reports them (the results name the card). */
function gpuName() {
  try {
    return execFileSync("nvidia-smi", ["--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"], {
      encoding: "utf8",
    }).trim();
  } catch {
    return "unknown (nvidia-smi did not answer)";
  }
}

/** Opens a package on PROVIDER; a provider onnxruntime-node cannot load ends the run with what to do. */
async function openOn(api, dir) {
  if (PROVIDER === "cpu") return api.openPackage(dir);
  try {
    return await api.openPackage(dir, { session: { executionProviders: [PROVIDER] } });
  } catch (e) {
    console.error(
      `bench/generate.mjs: onnxruntime-node could not open ${dir} on the ${PROVIDER} provider: ${e.message}\n` +
        "It needs node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so (fetched by its " +
        "install script: `npm ci` without ONNXRUNTIME_NODE_INSTALL=skip, on a machine with network access) and " +
        'CUDA 12 with cuDNN 9 on the library path; see docs/generate.md, "On a GPU".',
    );
    process.exit(3);
  }
}

/** Decode tokens/s at batch 1 and the LLaVA prefill of the package in `dir`, with the package engine. */
async function vlmcRun(api, dir) {
  const engine = await openOn(api, dir);
  try {
    const m = engine.manifest;
    const noImages = { pixels: new Float32Array(0), count: 0 };
    const text = { ids: randomIds(PROMPT_TOKENS, m.vocabSize, 1), images: noImages };
    const [c, h, w] = m.image.pixelShape;
    const pixels = Float32Array.from({ length: c * h * w }, (_, i) => Math.sin(i) * 0.5);
    const image = Array.from({ length: m.image.tokensPerImage }, () => BigInt(m.image.tokenId));
    const llava = {
      ids: [
        ...(m.tokens.bos !== undefined ? [BigInt(m.tokens.bos)] : []),
        ...image,
        ...randomIds(PROMPT_TOKENS, m.vocabSize, 2),
      ],
      images: { pixels, count: 1 },
    };
    const options = { maxNewTokens: NEW_TOKENS, stopTokens: [] };
    await drain(api.generate(engine, [text], { ...options, maxNewTokens: 2 })); // warm-up
    const decode = [];
    const first = [];
    const llavaPrefill = [];
    const llavaFirst = [];
    let peak = 0;
    const cpu = [];
    for (let r = 0; r < RUNS; r++) {
      const used = process.cpuUsage();
      const s = await drain(api.generate(engine, [text], options));
      const spent = process.cpuUsage(used);
      decode.push(s.tokensPerSecond);
      cpu.push(cpuMsPerStep(spent, s));
      first.push(s.timeToFirstTokenMs / 1000);
      const l = await drain(api.generate(engine, [llava], { maxNewTokens: 1, stopTokens: [] }));
      llavaPrefill.push(l.prefillMs / 1000);
      llavaFirst.push(l.timeToFirstTokenMs / 1000);
      peak = Math.max(peak, s.peakMemoryBytes, l.peakMemoryBytes);
    }
    return {
      target: m.target,
      dtype: m.cache.dtype,
      cacheBytes:
        2 *
        m.cache.layers *
        m.cache.heads *
        m.cache.headDim *
        (m.maxLength ?? m.contextLength) *
        (m.cache.dtype === "float16" ? 2 : 4),
      llavaTokens: llava.ids.length,
      decode: stats(decode),
      cpu: stats(cpu),
      first: stats(first),
      llavaPrefill: stats(llavaPrefill),
      llavaFirst: stats(llavaFirst),
      peak,
    };
  } finally {
    await engine.release();
  }
}

// ---- report --------------------------------------------------------------------------------------

const mmm = (s, digits = 3) => `${sig(s.median, digits)} (${sig(s.min, digits)}–${sig(s.max, digits)})`;

async function main() {
  const env = environment();
  const GiB = 2 ** 30;
  const copy1 = await copyRate(1, GiB / 2);
  const copyAll = await copyRate(os.cpus().length, GiB / 2);
  console.log(
    `copy: 1 thread ${sig(copy1.median / 1e9)} GB/s, ${os.cpus().length} threads ${sig(copyAll.median / 1e9)} GB/s`,
  );
  // The roof is the hardware's limit: the best round (least disturbed by other work) of the
  // faster copy, counted as read + write traffic.
  const bandwidth = 2 * Math.max(copy1.max, copyAll.max);

  const torch = option("--skip-torch", false) ? undefined : torchRun();
  if (torch) console.log(`torch: ${sig(torch.decode_tokens_per_second.median)} tokens/s`);

  const api = packages().length > 0 ? await vlmcApi() : undefined;
  const runs = [];
  for (const p of packages()) {
    if (!fs.existsSync(p.dir)) {
      runs.push({ ...p, skipped: `${p.dir} does not exist` });
      continue;
    }
    const r = await vlmcRun(api, p.dir);
    console.log(`vlmc ${p.label}: ${sig(r.decode.median)} tokens/s`);
    runs.push({ ...p, ...r });
  }

  const perToken = torch?.weight_bytes_per_token;
  // The roof is the CPU's: memory bandwidth over fp32 weights.
  const roof = perToken && TORCH_DEVICE === "cpu" && TORCH_DTYPE === "float32" ? bandwidth / perToken : undefined;
  const lines = [
    "# Generation: decode speed of a TinyLlama-shaped LLaMA",
    "",
    "Generated by `node bench/generate.mjs` (see docs/generate.md); do not edit by hand.",
    "",
    // The shared block's Python line would name VLMC_PYTHON; this one names what --python ran.
    environmentBlock({ ...env, python: undefined }, [
      torch
        ? `PyTorch: Python ${torch.software.python}, torch ${torch.software.torch}, transformers ${torch.software.transformers}, ${torch.threads} threads`
        : "PyTorch: not run (--skip-torch)",
      ...(PROVIDER === "cpu"
        ? []
        : [
            `Provider: onnxruntime-node's ${PROVIDER} execution provider; GPU: ${gpuName()}`,
            "The package engine keeps the key/value cache in host memory (onnxruntime-node has no CUDA tensors): every step copies it to the GPU and back; the cache bytes per step are in the last table.",
          ]),
      `Load: the figures are wall-clock on a machine shared with other work; with a load average above the core count they are lower bounds, and the ratios between rows measured in one run are what to compare.`,
      `Model: ${torch?.model ?? "LlamaForCausalLM, TinyLlama-1.1B shape"}; ${torch ? `${sig(torch.parameters / 1e9, 4)} G parameters, ${sig(torch.weight_bytes / 1e9, 3)} GB in ${torch.dtype === "float32" ? "fp32" : "fp16"}` : ""}`,
      `Method: batch 1, greedy, prompt of ${PROMPT_TOKENS} random tokens, ${NEW_TOKENS} new tokens (no eos), ${RUNS} runs after a warm-up; decode tokens/s = (new tokens − 1) / (time of ${NEW_TOKENS} tokens − time of 1 token) for PyTorch, and the loop's own decode timing for vlmc (the steps after the first token). Median (min–max).`,
    ]).replace("; Python/torch: not available", ""),
    "",
    "## Memory bandwidth and the decode roof",
    "",
    table(
      ["measure", "value"],
      [
        [
          "copy, 1 thread (bytes copied per second, 512 MiB buffers)",
          `${mmm({ median: copy1.median / 1e9, min: copy1.min / 1e9, max: copy1.max / 1e9 })} GB/s`,
        ],
        [
          `copy, ${os.cpus().length} threads at once`,
          `${mmm({ median: copyAll.median / 1e9, min: copyAll.min / 1e9, max: copyAll.max / 1e9 })} GB/s`,
        ],
        [
          "memory traffic of the best copy round (read + write): the bandwidth used below",
          `${sig(bandwidth / 1e9)} GB/s`,
        ],
        ...(perToken && roof
          ? [
              ["weights read per decode step, fp32 (all but the embedding table)", `${sig(perToken / 1e9, 4)} GB`],
              ["fp32 roof: bandwidth ÷ bytes per token", `${sig(roof)} tokens/s`],
              // MatMulNBits on CPU: 4 bits per weight plus one fp32 scale per block of 32 = 5 bits.
              [
                "int4 memory roof (every matrix int4, block 32, fp32 scales: 5 bits per weight; MatMulNBits' per-core rate binds first, docs/generate.md)",
                `${sig((roof * 32) / 5)} tokens/s`,
              ],
            ]
          : []),
      ],
    ),
    "",
    "## Decode and prefill",
    "",
    table(
      [
        "engine",
        "decode tokens/s",
        "% of fp32 roof",
        "CPU ms per token",
        "first token s (32-token prompt)",
        "LLaVA prompt: prefill s",
        "LLaVA prompt: first token s",
        "peak memory",
      ],
      [
        ...(torch
          ? [
              [
                `PyTorch transformers generate, ${torch.dtype === "float32" ? "fp32" : "fp16"}${torch.device === "cpu" ? "" : ` on ${torch.device}`}`,
                mmm(torch.decode_tokens_per_second),
                roof ? `${sig((100 * torch.decode_tokens_per_second.median) / roof)}%` : "",
                "",
                mmm(torch.time_to_first_token_seconds),
                "",
                `${mmm(torch.llava_prefill_seconds)} (${torch.llava_prompt_tokens} tokens)`,
                `${sig(torch.peak_rss_bytes / GiB)} GiB`,
              ],
            ]
          : []),
        ...runs.map((r) =>
          r.skipped
            ? [`vlmc ${r.label} (${r.dir})`, `not run: ${r.skipped}`, "", "", "", "", "", ""]
            : [
                `vlmc ${r.label} (${r.target}, cache ${r.dtype})`,
                mmm(r.decode),
                roof ? `${sig((100 * r.decode.median) / roof)}%` : "",
                mmm(r.cpu),
                mmm(r.first),
                `${mmm(r.llavaPrefill)} (${r.llavaTokens} tokens)`,
                mmm(r.llavaFirst),
                `${sig(r.peak / GiB)} GiB`,
              ],
        ),
      ],
    ),
    "",
    ...(PROVIDER === "cpu"
      ? []
      : [
          table(
            ["engine", "key/value cache (shared past/present buffer of the package's max length)"],
            runs
              .filter((r) => !r.skipped)
              .map((r) => [
                `vlmc ${r.label}`,
                `${sig(r.cacheBytes / 2 ** 20)} MiB, copied to the device and back each step`,
              ]),
          ),
          "",
        ]),
    "The LLaVA rows are the language model's share of a LLaVA-1.5 prompt: PyTorch runs the LM over 608 token",
    "embeddings (random ids standing in for the 576 image features); vlmc runs its package's vision graph on one",
    "image as well. Targets (issue 14): vlmc fp32 ≥ 1.4× PyTorch and ≥ 80% of the fp32 roof; int4 ≥ 4× vlmc fp32.",
  ];
  writeResults(OUT_NAME, lines.join("\n"));
}

await main();

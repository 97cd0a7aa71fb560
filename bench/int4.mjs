// Int4 variants of one model side by side (block sizes, session options): decode speed at batch 1,
// interleaved run by run so that a shared machine's load falls on every variant alike, the process
// CPU time per decoded token (what the step costs, less sensitive to that load than wall time), and
// accuracy against a reference package of the same weights (fp32): the logits of every step with
// the reference's own greedy tokens fed to both (teacher forcing), as cosine similarity and the
// share of steps whose greedy token agrees. Writes bench/results/int4.md (or --out NAME).
//
//   npm run build && node bench/int4.mjs --reference fp32=DIR --package b32=DIR --package b128=DIR
//      [--runs 5] [--new-tokens 64] [--threads N] [--profile LABEL]
//
// --profile LABEL also runs one generation of that package with onnxruntime's profiler and lists the
// decoder's time per operator type over the decode steps (the prefill left out).

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
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
const RUNS = option("--runs", 5);
const THREADS = option("--threads", 0);
const PROFILE = option("--profile", "");
const OUT_NAME = option("--out", "int4.md");

/** `--package LABEL=DIR` (repeatable) and `--reference LABEL=DIR`. */
function labelled(flag) {
  return process.argv.flatMap((a, i) => {
    if (a !== flag) return [];
    const [label, dir] = process.argv[i + 1].split("=");
    return [{ label, dir }];
  });
}

const noImages = { pixels: new Float32Array(0), count: 0 };
const mmm = (s, digits = 3) => `${sig(s.median, digits)} (${sig(s.min, digits)}–${sig(s.max, digits)})`;

function cosine(a, b) {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

const argmax = (xs) => xs.reduce((best, x, i) => (x > xs[best] ? i : best), 0);

/** The logits of the prefill and of each step fed `tokens` (the reference's greedy choices). */
async function forcedLogits(engine, prompt, tokens) {
  const out = [(await engine.prefill({ rows: [prompt], images: [noImages] }))[0]];
  for (const t of tokens.slice(0, -1)) out.push((await engine.step([BigInt(t)]))[0]);
  return out;
}

/** One generation of `NEW_TOKENS` greedy tokens: its stats, the tokens, the process CPU time per decode step. */
async function timed(api, engine, prompt) {
  const tokens = [];
  const cpu = process.cpuUsage();
  const it = api.generate(engine, [{ ids: prompt, images: noImages }], { maxNewTokens: NEW_TOKENS, stopTokens: [] });
  for (;;) {
    const r = await it.next();
    if (r.done) {
      return { stats: r.value, tokens, cpuMs: cpuMsPerStep(process.cpuUsage(cpu), r.value) };
    }
    tokens.push(r.value.token);
  }
}

/** The decoder's time per operator type in one profiled generation, decode steps only, ms per step. */
async function profile(api, dir, prompt) {
  const prefix = path.join(os.tmpdir(), `vlmc-int4-profile-${process.pid}`);
  const session = {
    enableProfiling: true,
    profileFilePrefix: prefix,
    ...(THREADS ? { intraOpNumThreads: THREADS } : {}),
  };
  const engine = await api.openPackage(dir, { session });
  await timed(api, engine, prompt);
  await engine.release(); // writes the profiles
  const files = fs
    .readdirSync(os.tmpdir())
    .filter((f) => f.startsWith(path.basename(prefix)))
    .map((f) => path.join(os.tmpdir(), f));
  // The decoder's profile is the largest of the three sessions'.
  const file = files.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0];
  const events = JSON.parse(fs.readFileSync(file, "utf8"));
  for (const f of files) fs.rmSync(f);
  const runs = events.filter((e) => e.name === "model_run").sort((a, b) => a.ts - b.ts);
  // Run 0 is the prefill; the decode steps follow.
  const steps = runs.slice(1);
  const byOp = new Map();
  for (const e of events) {
    if (e.cat !== "Node" || !e.name.endsWith("_kernel_time")) continue;
    if (!steps.some((r) => e.ts >= r.ts && e.ts <= r.ts + r.dur)) continue;
    byOp.set(e.args.op_name, (byOp.get(e.args.op_name) ?? 0) + e.dur / 1000);
  }
  const runMs = steps.reduce((n, r) => n + r.dur / 1000, 0) / steps.length;
  return { runMs, ops: [...byOp].sort((a, b) => b[1] - a[1]).map(([op, ms]) => [op, ms / steps.length]) };
}

async function main() {
  const env = environment();
  const api = await vlmcApi();
  const [reference] = labelled("--reference");
  const variants = labelled("--package");
  if (!reference || variants.length === 0) {
    console.error("usage: node bench/int4.mjs --reference LABEL=DIR --package LABEL=DIR [--package LABEL=DIR …]");
    process.exit(2);
  }
  const session = THREADS ? { intraOpNumThreads: THREADS } : {};
  const manifest = api.readManifest(reference.dir);
  const prompt = randomIds(PROMPT_TOKENS, manifest.vocabSize, 1);

  // Accuracy first, one package open at a time next to the reference.
  const ref = await api.openPackage(reference.dir, { session });
  const refRun = await timed(api, ref, prompt);
  const refLogits = await forcedLogits(ref, prompt, refRun.tokens);
  await ref.release();
  const accuracy = new Map();
  for (const v of variants) {
    const engine = await api.openPackage(v.dir, { session });
    const logits = await forcedLogits(engine, prompt, refRun.tokens);
    await engine.release();
    const cos = logits.map((l, i) => cosine(l, refLogits[i]));
    const agree = logits.filter((l, i) => argmax(l) === refRun.tokens[i]).length / logits.length;
    accuracy.set(v.label, { cos: stats(cos), agree });
    console.log(`${v.label}: cosine ${sig(Math.min(...cos), 4)} min, greedy agreement ${sig(100 * agree)}%`);
  }

  // Speed: every variant open, runs interleaved.
  const engines = [];
  for (const v of variants) engines.push({ ...v, engine: await api.openPackage(v.dir, { session }) });
  for (const e of engines) await timed(api, e.engine, prompt.slice(0, 4)); // warm-up
  const speed = new Map(variants.map((v) => [v.label, { tps: [], cpu: [] }]));
  for (let r = 0; r < RUNS; r++)
    for (const e of engines) {
      const run = await timed(api, e.engine, prompt);
      speed.get(e.label).tps.push(run.stats.tokensPerSecond);
      speed.get(e.label).cpu.push(run.cpuMs);
      console.log(
        `run ${r + 1} ${e.label}: ${sig(run.stats.tokensPerSecond)} tokens/s, ${sig(run.cpuMs)} CPU ms per token`,
      );
    }
  for (const e of engines) await e.engine.release();

  const profiled = PROFILE ? await profile(api, variants.find((v) => v.label === PROFILE).dir, prompt) : undefined;

  const lines = [
    "# Int4 variants: decode speed and accuracy",
    "",
    "Generated by `node bench/int4.mjs` (see docs/generate.md); do not edit by hand.",
    "",
    environmentBlock({ ...env, python: undefined }, [
      `Model: ${manifest.model}, reference ${reference.label} (${reference.dir}); batch 1, greedy, prompt of ${PROMPT_TOKENS} random tokens, ${NEW_TOKENS} new tokens, ${RUNS} runs per variant interleaved; intra-op threads: ${THREADS || "onnxruntime's default"}.`,
      "Load: wall-clock figures on a shared machine are lower bounds; the CPU time per token (the whole process's user + system time over the generation, divided by the decode steps + 1 for the prefill) is the cost of a step, and with threads that spin it includes their spinning.",
      "Accuracy: the reference's greedy tokens fed to every package (teacher forcing); cosine similarity of each step's logits with the reference's, and the share of steps whose greedy token is the reference's.",
    ]).replace("; Python/torch: not available", ""),
    "",
    table(
      [
        "package",
        "decode tokens/s",
        "CPU ms per token",
        "logits cosine vs reference: min",
        "median",
        "greedy agreement",
      ],
      variants.map((v) => {
        const s = speed.get(v.label);
        const a = accuracy.get(v.label);
        return [
          `${v.label} (${v.dir})`,
          mmm(stats(s.tps)),
          mmm(stats(s.cpu)),
          sig(a.cos.min, 5),
          sig(a.cos.median, 5),
          `${sig(100 * a.agree)}%`,
        ];
      }),
    ),
    ...(profiled
      ? [
          "",
          `## Where a decode step's time goes (${PROFILE}, onnxruntime profiler)`,
          "",
          `Decoder run: ${sig(profiled.runMs)} ms per step with the profiler on (it slows the run).`,
          "",
          table(
            ["operator", "ms per step", "share"],
            profiled.ops.map(([op, ms]) => [op, sig(ms), `${sig((100 * ms) / profiled.runMs)}%`]),
          ),
        ]
      : []),
  ];
  writeResults(OUT_NAME, lines.join("\n"));
}

await main();

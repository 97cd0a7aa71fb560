#!/usr/bin/env node
// Front-end benchmark: parse and check time of generated .vlm specs from 1 KB to 5 MB (doubling),
// the median of several runs each, and time per KB to show whether the cost grows linearly.
//
//   npm run build && node bench/parse.mjs                  full run, writes bench/results/parse.md
//   node bench/parse.mjs --max-kb 256 --runs 3             a quick look (writes nothing unless --write)
//
// Runs against the built compiler (dist/), so build first. `--expose-gc` (node --expose-gc ...)
// collects garbage between runs, which steadies the large sizes.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const apiPath = path.join(root, "dist", "src", "index.js");
if (!fs.existsSync(apiPath)) {
  console.error(`${path.relative(process.cwd(), apiPath)} is missing: run \`npm run build\` first.`);
  process.exit(2);
}
const { parse, check } = await import(pathToFileURL(apiPath).href);

// ---- options -------------------------------------------------------------------------------------

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : fallback;
}
const RUNS = option("--runs", 5);
const MAX_KB = option("--max-kb", 5 * 1024);
const MIN_KB = option("--min-kb", 1);
const full = MAX_KB >= 5 * 1024 && MIN_KB <= 1;
const WRITE = process.argv.includes("--write") || (full && !process.argv.includes("--no-write"));

const KB = 1024;
const sizesKb = [];
for (let kb = MIN_KB; kb < MAX_KB; kb *= 2) sizesKb.push(kb);
sizesKb.push(MAX_KB);

// ---- the generated spec --------------------------------------------------------------------------

/** One unit of a spec: a comment, a constant and a transformer-style block, all with fresh names. */
function unit(i) {
  return `// ---- layer family ${i} ----------------------------------------------------------
const WIDTH_${i} = ${64 + (i % 4) * 32}

// Pre-norm attention and MLP with a learned gate, in the style of std/.
block layer_${i}(width = WIDTH_${i}, heads = 4, mlp_ratio = 4, eps = 1e-5, act = gelu) {
  norm1 = layer_norm(width, eps: eps)
  q_proj = linear(width, width)
  k_proj = linear(width, width)
  v_proj = linear(width, width, bias: false)
  out_proj = linear(width, width)
  norm2 = layer_norm(width, eps: eps)
  fc1 = linear(width, mlp_ratio * width)
  fc2 = linear(mlp_ratio * width, width)
  param gate: [1, 1, width] = zeros

  forward(x, mask = none) {
    expect width % heads == 0
    h = norm1(x)
    a = attention(q_proj(h), k_proj(h), v_proj(h), heads, causal: false, mask: mask)
    x = x + out_proj(a) * tanh(gate)
    f = act
    return x + fc2(f(fc1(norm2(x))))
  }
}

`;
}

/**
 * A spec of `bytes` characters (to within a line): as many units as fit, then short constants to
 * fill up, then one small model (so that check elaborates the same small amount at every size).
 */
function spec(bytes) {
  const tail = `model bench {
  layer = layer_0()
  forward(x: f32[B, T, WIDTH_0]) {
    return layer(x)
  }
}
`;
  const parts = [unit(0)];
  let size = tail.length + parts[0].length;
  for (let i = 1; ; i++) {
    const u = unit(i);
    if (size + u.length > bytes) break;
    parts.push(u);
    size += u.length;
  }
  for (let i = 0; size < bytes; i++) {
    const c = `const PAD_${i} = ${i} * 2\n`;
    parts.push(c);
    size += c.length;
  }
  return parts.join("") + tail;
}

// ---- measuring -----------------------------------------------------------------------------------

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Wall-clock and CPU time (user + system, this process) of `f`, in ms. */
function time(f) {
  globalThis.gc?.();
  const c = process.cpuUsage();
  const t = performance.now();
  const r = f();
  const wall = performance.now() - t;
  const cpu = process.cpuUsage(c);
  return { ms: wall, cpu: (cpu.user + cpu.system) / 1000, r };
}

const FILE = "bench.vlm";

// Warm up the JIT (small and large inputs take different paths through the optimiser).
for (const [kb, times] of [
  [32, 5],
  [512, 2],
]) {
  const warm = spec(kb * KB);
  for (let i = 0; i < times; i++) {
    parse(warm, FILE);
    check([FILE], { overrides: new Map([[FILE, warm]]) });
  }
}

// Rounds: every round measures every size once, so that a change in the machine's load during the
// run (other processes) spreads over all sizes instead of skewing the sizes measured at that time.
const texts = sizesKb.map((kb) => ({ kb, text: spec(kb * KB) }));
const samples = texts.map(() => ({ parse: [], parseCpu: [], check: [], checkCpu: [] }));
for (let run = 0; run < RUNS; run++) {
  const started = performance.now();
  texts.forEach(({ kb, text }, i) => {
    const m = samples[i];
    const p = time(() => parse(text, FILE));
    if (p.r.diagnostics.length > 0)
      throw new Error(`generated spec of ${kb} KB does not parse: ${p.r.diagnostics[0].message}`);
    m.parse.push(p.ms);
    m.parseCpu.push(p.cpu);
    const c = time(() => check([FILE], { overrides: new Map([[FILE, text]]) }));
    if (!c.r.ok)
      throw new Error(
        `generated spec of ${kb} KB does not check: ${c.r.diagnostics[0].code} ${c.r.diagnostics[0].message}`,
      );
    m.check.push(c.ms);
    m.checkCpu.push(c.cpu);
  });
  console.error(
    `  round ${run + 1}/${RUNS}: ${((performance.now() - started) / 1000).toFixed(1)} s, load ${os.loadavg()[0].toFixed(2)}`,
  );
}
const rows = texts.map(({ kb, text }, i) => {
  const m = samples[i];
  return {
    kb,
    bytes: text.length,
    lines: text.split("\n").length,
    parse: median(m.parse),
    parseCpu: median(m.parseCpu),
    check: median(m.check),
    checkCpu: median(m.checkCpu),
  };
});

// ---- reporting -----------------------------------------------------------------------------------

function fmtSize(bytes) {
  return bytes >= 1024 * KB
    ? `${(bytes / (1024 * KB)).toFixed(bytes % (1024 * KB) === 0 ? 0 : 2)} MB`
    : `${(bytes / KB).toFixed(bytes >= 10 * KB ? 0 : 1)} KB`;
}

/** Least-squares slope of log(time) against log(size): 1 is linear, 2 quadratic. */
function exponent(points) {
  const xs = points.map((p) => Math.log(p.bytes));
  const ys = points.map((p) => Math.log(p.ms));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

const perKb = (ms, bytes) => (ms * 1000) / (bytes / KB); // µs per KB
const mbPerS = (ms, bytes) => bytes / (1024 * KB) / (ms / 1000);
const table = [
  "| size | lines | parse (ms) | parse µs/KB | parse MB/s | parse CPU (ms) | check (ms) | check µs/KB | check CPU (ms) |",
  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ...rows.map((r) =>
    [
      fmtSize(r.bytes),
      r.lines,
      r.parse.toFixed(1),
      perKb(r.parse, r.bytes).toFixed(0),
      mbPerS(r.parse, r.bytes).toFixed(2),
      r.parseCpu.toFixed(1),
      r.check.toFixed(1),
      perKb(r.check, r.bytes).toFixed(0),
      r.checkCpu.toFixed(1),
    ]
      .join(" | ")
      .replace(/^/, "| ")
      .replace(/$/, " |"),
  ),
];

// The scaling verdict uses sizes from 64 KB up, where fixed costs no longer dominate. Wall-clock
// time is the figure that matters; CPU time is shown beside it because other load disturbs it less,
// but it also counts V8's background threads (concurrent GC marking, JIT compilation), which
// inflate it most at the smaller sizes.
const large = rows.filter((r) => r.bytes >= 64 * KB);
const fitRows = large.length >= 3 ? large : rows;
const first = fitRows[0];
const last = fitRows[fitRows.length - 1];
const verdict = (e) =>
  e < 0.85
    ? "sub-linear: warm-up, fixed costs or noise"
    : e < 1.15
      ? "linear"
      : e < 1.5
        ? "slightly super-linear"
        : "super-linear";
const line = (label, key) => {
  const e = exponent(fitRows.map((r) => ({ bytes: r.bytes, ms: r[key] })));
  const drift = perKb(last[key], last.bytes) / perKb(first[key], first.bytes);
  return `- ${label}: time ∝ size^${e.toFixed(2)} (${verdict(e)}); µs/KB at ${fmtSize(last.bytes)} is ${drift.toFixed(2)}× that at ${fmtSize(first.bytes)}`;
};
const scaling = [
  `Fitted over ${fmtSize(first.bytes)}–${fmtSize(last.bytes)} (log–log least squares; 1.0 = linear, 2.0 = quadratic):`,
  line("parse, wall clock", "parse"),
  line("check, wall clock", "check"),
  line("parse, CPU time", "parseCpu"),
  line("check, CPU time", "checkCpu"),
];

const cpus = os.cpus();
const machine = `${cpus[0]?.model ?? "unknown CPU"}, ${cpus.length} cores, ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB memory, ${os.platform()} ${os.release()}`;
const date = new Date().toISOString();

console.log(`\nvlmc front-end benchmark, ${date}\n${machine}; node ${process.version}; median of ${RUNS} rounds\n`);
console.log(table.join("\n"));
console.log("\n" + scaling.join("\n"));

if (WRITE) {
  const md = `# Front-end benchmark: parse and check

Generated by \`node bench/parse.mjs\` (see bench/README.md); do not edit by hand.

- Date: ${date}
- Machine: ${machine}
- Load average at the end: ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(", ")} (1, 5, 15 min)
- Node: ${process.version}${globalThis.gc ? " (--expose-gc: garbage collected before every run)" : ""}
- Method: generated specs (transformer-style \`block\`s with a constant each, ~1 KB a unit, padded to size with short constants, one small model at the end), the median of ${RUNS} rounds after a warm-up (each round measures every size once, so load changes spread over all sizes). \`parse\` is \`parse(text)\`; \`check\` is \`check([file])\` with the text as an override: parse, name resolution and the elaboration of the one model (a constant amount of work). Times are wall-clock unless marked CPU; CPU time is this process's user + system time, which includes V8's background threads (concurrent GC, JIT compilation).

${table.join("\n")}

## Scaling

${scaling.join("\n")}
`;
  const out = path.join(here, "results", "parse.md");
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, md);
  console.log(`\nwrote ${path.relative(process.cwd(), out)}`);
}

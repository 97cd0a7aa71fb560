// Shared pieces of the benchmarks: the environment block every results file starts with, summary
// statistics (median, min, max over repeated runs, each with the load average it ran under), .npy
// input/output, ONNX inspection (node count, op types, parameter bytes), child processes with their
// peak resident memory, and Markdown tables.

import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const BENCH = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(BENCH, "..");
/** The reference Python (scripts/requirements.txt): VLMC_PYTHON, default python3. */
export const PYTHON = process.env.VLMC_PYTHON ?? "python3";
export const OUT = path.join(BENCH, "out");
export const RESULTS = path.join(BENCH, "results");

/** The built compiler's API (dist/src/index.js); exits with a hint when it is not built. */
export async function vlmcApi() {
  const p = path.join(ROOT, "dist", "src", "index.js");
  if (!fs.existsSync(p)) {
    console.error(`${path.relative(process.cwd(), p)} is missing: run \`npm run build\` first.`);
    process.exit(2);
  }
  return import(pathToFileURL(p).href);
}

// ---- options -------------------------------------------------------------------------------------

/** `--name value` from argv (numbers converted), `--flag` → true, else the fallback. */
export function option(name, fallback) {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = process.argv[i + 1];
  if (typeof fallback === "boolean") return true;
  if (v === undefined || v.startsWith("--")) return fallback;
  return typeof fallback === "number" ? Number(v) : v;
}

export function listOption(name, fallback) {
  const v = option(name, "");
  return v === ""
    ? fallback
    : v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
}

/** A seeded list of token ids in [3, vocab): prompts for the decode benchmarks. */
export function randomIds(n, vocab, seed) {
  let x = seed >>> 0;
  return Array.from({ length: n }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return BigInt(3 + (x % (vocab - 3)));
  });
}

// ---- statistics ----------------------------------------------------------------------------------

/**
 * The process's CPU time per decode step of a generation, in ms, from `process.cpuUsage(start)`:
 * the prefill (a short prompt reads the weights once, as a step does) counts as one more step. The
 * cost of a step, which other work on a shared machine disturbs less than the wall time.
 */
export function cpuMsPerStep(spent, stats) {
  return (spent.user + spent.system) / 1000 / (stats.decodeSteps + 1);
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** {median, min, max, n} of the numbers. */
export function stats(xs) {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

/** MemAvailable from /proc/meminfo, in bytes (os.freemem() where it cannot be read). */
export function memAvailable() {
  const m = readText("/proc/meminfo").match(/MemAvailable:\s+(\d+) kB/);
  return m ? Number(m[1]) * 1024 : os.freemem();
}

export function load1() {
  return os.loadavg()[0];
}

/** Least-squares slope of log y on log x: 1 = linear, 2 = quadratic. */
export function loglogSlope(xs, ys) {
  const lx = xs.map(Math.log);
  const ly = ys.map(Math.log);
  const mx = lx.reduce((a, b) => a + b, 0) / lx.length;
  const my = ly.reduce((a, b) => a + b, 0) / ly.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < lx.length; i++) {
    num += (lx[i] - mx) * (ly[i] - my);
    den += (lx[i] - mx) ** 2;
  }
  return num / den;
}

/** Linear fit y = a + b·x with R². */
export function linearFit(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  const b = sxy / sxx;
  return { a: my - b * mx, b, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

// ---- formatting ----------------------------------------------------------------------------------

/** A number with `digits` significant digits, no exponent for the sizes we print. */
export function sig(x, digits = 3) {
  if (x === undefined || x === null || Number.isNaN(x)) return "–";
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return "0";
  const mag = Math.floor(Math.log10(Math.abs(x)));
  const decimals = Math.max(0, digits - 1 - mag);
  return x.toFixed(Math.min(decimals, 6));
}

/** "median (min–max)" of a stats object, scaled. */
export function mmm(s, scale = 1, digits = 3) {
  if (!s || !Number.isFinite(s.median)) return "–";
  if (s.n === 1) return sig(s.median * scale, digits);
  return `${sig(s.median * scale, digits)} (${sig(s.min * scale, digits)}–${sig(s.max * scale, digits)})`;
}

export function bytesText(n) {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

export function table(header, rows, align) {
  const a = align ?? header.map((_, i) => (i === 0 ? "---" : "---:"));
  return [`| ${header.join(" | ")} |`, `|${a.join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

// ---- environment ---------------------------------------------------------------------------------

let pythonVersions;
function pyVersions() {
  if (pythonVersions === undefined) {
    try {
      pythonVersions = JSON.parse(
        execFileSync(PYTHON, [path.join(BENCH, "peers.py"), "versions"], {
          encoding: "utf8",
          stdio: ["ignore", "pipe", "ignore"],
        }),
      );
    } catch {
      pythonVersions = null;
    }
  }
  return pythonVersions;
}

function readText(p) {
  try {
    return fs.readFileSync(p, "utf8");
  } catch {
    return "";
  }
}

function gitDescribe() {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no", "--", "src", "std"], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
    return `${head}${dirty ? " (src/ or std/ with uncommitted changes)" : ""}`;
  } catch {
    return "unknown";
  }
}

/** Facts about the machine and the software, for the head of a results file. */
export function environment() {
  const cpuinfo = readText("/proc/cpuinfo");
  const flags = (cpuinfo.match(/^flags\s*:\s*(.*)$/m)?.[1] ?? "").split(/\s+/);
  const wanted = [
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
  ];
  const ortPkg = JSON.parse(readText(path.join(ROOT, "node_modules", "onnxruntime-node", "package.json")) || "{}");
  const vlmcPkg = JSON.parse(readText(path.join(ROOT, "package.json")) || "{}");
  return {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.cpus().length,
    flags: wanted.filter((f) => flags.includes(f)),
    memGiB: os.totalmem() / 2 ** 30,
    os: `${os.platform()} ${os.release()}`,
    node: process.version,
    ort: ortPkg.version ?? "unknown",
    vlmc: `${vlmcPkg.version ?? "?"} at ${gitDescribe()}`,
    python: pyVersions(),
    load: os.loadavg(),
  };
}

/** The environment as a Markdown list. */
export function environmentBlock(env, extra = []) {
  const py = env.python
    ? `Python ${env.python.python}, torch ${env.python.torch}, torchvision ${env.python.torchvision}, onnx ${env.python.onnx}, numpy ${env.python.numpy}`
    : "Python/torch: not available";
  return [
    `- Date: ${env.date}`,
    `- Machine: ${env.cpu}, ${env.cores} cores, ${env.memGiB.toFixed(1)} GiB memory, ${env.os}`,
    `- CPU flags (relevant): ${env.flags.join(" ") || "none found"}`,
    `- Software: Node ${env.node}, onnxruntime-node ${env.ort}, vlmc ${env.vlmc}; ${py}`,
    `- Load average at the start: ${env.load.map((x) => x.toFixed(2)).join(", ")}; at the end: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(", ")} (1, 5, 15 min)`,
    ...extra.map((e) => `- ${e}`),
  ].join("\n");
}

export function writeResults(name, text) {
  fs.mkdirSync(RESULTS, { recursive: true });
  const p = path.join(RESULTS, name);
  fs.writeFileSync(p, text.endsWith("\n") ? text : text + "\n");
  console.log(`wrote ${path.relative(process.cwd(), p)}`);
}

// ---- .npy ----------------------------------------------------------------------------------------

const NPY_TYPES = {
  "<f4": Float32Array,
  "<f8": Float64Array,
  "<i8": BigInt64Array,
  "<i4": Int32Array,
  "|u1": Uint8Array,
  "|i1": Int8Array,
  "|b1": Uint8Array,
};

export function readNpy(p) {
  const buf = fs.readFileSync(p);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.subarray(start, start + headerLen).toString("latin1");
  const descr = header.match(/'descr':\s*'([^']+)'/)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${p}: Fortran order not supported`);
  const shape = header
    .match(/'shape':\s*\(([^)]*)\)/)[1]
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const Type = NPY_TYPES[descr];
  if (!Type) throw new Error(`${p}: dtype ${descr} not supported`);
  const data = buf.subarray(start + headerLen);
  const copy = new Uint8Array(data.byteLength);
  copy.set(data);
  return { dtype: descr, shape, data: new Type(copy.buffer, 0, copy.byteLength / Type.BYTES_PER_ELEMENT) };
}

// ---- ONNX inspection -----------------------------------------------------------------------------

let onnxProto;
async function proto() {
  onnxProto ??= (await import("onnx-proto")).default.onnx;
  return onnxProto;
}

const ELEM_BYTES = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2, 21: 1, 22: 1 };

function tensorBytes(t) {
  const ext = (t.externalData ?? []).find((e) => e.key === "length");
  if (t.dataLocation === 1 && ext) return Number(ext.value);
  if (t.rawData?.length) return t.rawData.length;
  const n = (t.dims ?? []).reduce((a, d) => a * Number(d), 1);
  const dt = t.dataType;
  if (dt === 21 || dt === 22) return Math.ceil(n / 2); // uint4 / int4
  return n * (ELEM_BYTES[dt] ?? 4);
}

/**
 * Node count (every node of the main graph, subgraphs counted in), op types by count, custom
 * domains, and parameter bytes (every initializer and Constant node's tensor, inline or external).
 */
export async function onnxInfo(p) {
  const onnx = await proto();
  const model = onnx.ModelProto.decode(fs.readFileSync(p));
  const ops = {};
  const domains = new Set();
  let nodes = 0;
  let paramBytes = 0;
  let initializers = 0;
  const visit = (g) => {
    for (const t of g.initializer ?? []) {
      paramBytes += tensorBytes(t);
      initializers++;
    }
    for (const n of g.node ?? []) {
      nodes++;
      const key = n.domain ? `${n.domain}.${n.opType}` : n.opType;
      ops[key] = (ops[key] ?? 0) + 1;
      if (n.domain && n.domain !== "ai.onnx") domains.add(n.domain);
      for (const a of n.attribute ?? []) {
        if (a.t) paramBytes += n.opType === "Constant" ? tensorBytes(a.t) : 0;
        if (a.g) visit(a.g);
        for (const sg of a.graphs ?? []) visit(sg);
      }
    }
  };
  visit(model.graph);
  return {
    nodes,
    ops,
    domains: [...domains],
    paramBytes,
    initializers,
    inputs: model.graph.input.map((i) => i.name),
    outputs: model.graph.output.map((o) => o.name),
  };
}

/** A short text of the op types that differ between two op histograms. */
export function opDiff(a, b) {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  const parts = [];
  for (const k of [...keys].sort()) {
    const d = (b[k] ?? 0) - (a[k] ?? 0);
    if (d !== 0) parts.push(`${k} ${d > 0 ? "+" : ""}${d}`);
  }
  return parts.join(", ");
}

// ---- agreement -----------------------------------------------------------------------------------

/** Max abs error and cosine similarity of two float arrays of the same length. */
export function agreement(ref, x) {
  if (ref.length !== x.length) return { maxAbs: NaN, cosine: NaN, note: `sizes differ: ${ref.length} vs ${x.length}` };
  let maxAbs = 0;
  let dot = 0;
  let na = 0;
  let nb = 0;
  let refMax = 0;
  for (let i = 0; i < ref.length; i++) {
    const a = ref[i];
    const b = x[i];
    const d = Math.abs(a - b);
    if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? NaN : d;
    dot += a * b;
    na += a * a;
    nb += b * b;
    refMax = Math.max(refMax, Math.abs(a));
  }
  return { maxAbs, cosine: dot / Math.sqrt(na * nb), refMax };
}

// ---- child processes -----------------------------------------------------------------------------

/**
 * Runs a command under /usr/bin/time -v (when present; else polls /proc/<pid>/status for VmHWM)
 * and returns wall seconds, peak resident bytes, exit code and output.
 */
export function runMeasured(cmd, args, { cwd = ROOT, env = process.env, quiet = true } = {}) {
  const haveTime = fs.existsSync("/usr/bin/time");
  const argv = haveTime ? ["-v", cmd, ...args] : args;
  const exe = haveTime ? "/usr/bin/time" : cmd;
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(exe, argv, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let polledPeak = 0;
    const poll = haveTime
      ? undefined
      : setInterval(() => {
          const s = readText(`/proc/${child.pid}/status`);
          const m = s.match(/VmHWM:\s+(\d+) kB/);
          if (m) polledPeak = Math.max(polledPeak, Number(m[1]) * 1024);
        }, 50);
    child.stdout.on("data", (d) => {
      stdout += d;
      if (!quiet) process.stdout.write(d);
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("close", (code) => {
      if (poll) clearInterval(poll);
      const wall = (performance.now() - t0) / 1000;
      const m = stderr.match(/Maximum resident set size \(kbytes\): (\d+)/);
      const e = stderr.match(/Elapsed \(wall clock\) time.*: ([\d:.]+)/);
      const peak = m ? Number(m[1]) * 1024 : polledPeak;
      let timed = wall;
      if (e) {
        const parts = e[1].split(":").map(Number);
        timed = parts.reduce((a, b) => a * 60 + b, 0);
      }
      resolve({ code, wall, timedWall: timed, peakRss: peak, stdout, stderr, load: load1() });
    });
  });
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Differential tests of fusion: each spec is compiled for `portable` and for `ort-cpu` from the same
// random checkpoint, both models run in onnxruntime on the same inputs, and the outputs must agree;
// the ort-cpu model must contain the fused ops the spec is there to produce. Specs: the parity
// fixtures' tiny std models (with their committed inputs) and one hand-written spec per rule.
// A fused model must also give the same outputs with ONNX Runtime's own fusions off and on. Where
// a fused op is left out on ort-cpu (it ran slower there), the case compiles for ort-cuda, whose
// fp32 graph runs on the CPU provider all the same.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, describe, expect, it } from "vitest";
import { elaborate } from "../../driver/check.js";
import { fixtureWeights } from "../../../test/helpers/parity-fixtures.js";
import { compile } from "../../driver/compile.js";
import { Rng } from "../../numerics/rng.js";
import { readNpy } from "../../runtime/npy.js";
import { decodeOnnxModel } from "../../onnx/onnx-writer.js";
import { writeSafetensors } from "../../codegen/safetensors.js";
import { FUSED_OP_KERNELS } from "../../target/target-ops.js";
import type { TargetName as Target } from "../../target/target.js";

const PARITY = path.join(import.meta.dirname, "..", "..", "..", "test", "fixtures", "parity");
/** Sizes of symbolic dims in generated inputs. */
const DIM_SIZES: Readonly<Record<string, number>> = { B: 2, T: 5, S: 7, N: 3 };

const folders: string[] = [];
const figures: string[] = [];
afterAll(() => {
  for (const dir of folders.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  if (process.env["VLMC_FUSION_REPORT"]) console.log(`fusion parity (portable vs ort-cpu)\n${figures.join("\n")}`);
});

type Feeds = Record<string, ort.Tensor>;
type Outputs = Record<string, Float32Array>;

/** A checkpoint of every parameter of the spec's models, 0.5·N(0, 1) (variances 0.5 + U(0, 1)), so biases and shifts are not zeros. */
function randomCheckpoint(spec: string, dir: string): string {
  const rng = new Rng(11);
  const params = elaborate([spec]).models.flatMap((m) => m.module!.params);
  const file = path.join(dir, "weights.safetensors");
  writeSafetensors(
    file,
    params.map((p) => {
      const n = (p.type.shape as number[]).reduce((a, b) => a * b, 1);
      const data = Float32Array.from({ length: n }, () =>
        p.name.endsWith("running_var") ? 0.5 + rng.uniform() : 0.5 * rng.normal(),
      );
      return { name: p.name, dtype: "F32" as const, shape: p.type.shape as number[], data };
    }),
  );
  return file;
}

/** Compiles every graph of `spec` for `target` from `weights`; graph name → model file. */
async function build(
  spec: string,
  target: Target,
  weights: string | string[],
  dir: string,
): Promise<Map<string, string>> {
  const result = await compile([spec], { target, weights, out: path.join(dir, target), verifyIr: true });
  expect(result.diagnostics.filter((d) => d.severity === "error").map((d) => `${d.code} ${d.message}`)).toEqual([]);
  return new Map(result.files.map((f) => [f.graph, f.path]));
}

async function run(file: string, feeds: Feeds, level: "disabled" | "all"): Promise<Outputs> {
  const session = await ort.InferenceSession.create(file, { graphOptimizationLevel: level });
  try {
    const results = await session.run(feeds);
    return Object.fromEntries(
      Object.entries(results).map(([name, t]) => [name, Float32Array.from(t.data as Float32Array)]),
    );
  } finally {
    await session.release();
  }
}

/** ONNX Runtime ops in a model, by op name. */
function fusedOps(file: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of decodeOnnxModel(fs.readFileSync(file)).graph!.node!)
    if (n.opType! in FUSED_OP_KERNELS) counts[n.opType!] = (counts[n.opType!] ?? 0) + 1;
  return counts;
}

/** Random inputs for a model's declared inputs: floats in [-1, 1), ids in [0, 8), bools mostly true. */
function randomFeeds(file: string, seed: number): Feeds {
  const rng = new Rng(seed);
  const feeds: Feeds = {};
  for (const input of decodeOnnxModel(fs.readFileSync(file)).graph!.input!) {
    const t = input.type!.tensorType!;
    const dims = t.shape!.dim!.map((d) => (d.dimParam ? (DIM_SIZES[d.dimParam] ?? 3) : Number(d.dimValue)));
    const n = dims.reduce((a, b) => a * b, 1);
    if (t.elemType === 1)
      feeds[input.name!] = new ort.Tensor(
        "float32",
        Float32Array.from({ length: n }, () => 2 * rng.uniform() - 1),
        dims,
      );
    else if (t.elemType === 7)
      feeds[input.name!] = new ort.Tensor(
        "int64",
        BigInt64Array.from({ length: n }, () => BigInt(Math.floor(8 * rng.uniform()))),
        dims,
      );
    else if (t.elemType === 9)
      feeds[input.name!] = new ort.Tensor(
        "bool",
        Uint8Array.from({ length: n }, () => (rng.uniform() < 0.8 ? 1 : 0)),
        dims,
      );
    else throw new Error(`no random input of ONNX type ${t.elemType}`);
  }
  return feeds;
}

/** The inputs a parity fixture commits for `graph`. */
function fixtureFeeds(dir: string, graph: string): Feeds {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "case.json"), "utf8")) as {
    graphs: Record<string, { inputs: Record<string, string> }>;
  };
  const types: Record<string, ort.Tensor.Type> = { "<f4": "float32", "<i8": "int64", "|b1": "bool" };
  return Object.fromEntries(
    Object.entries(manifest.graphs[graph]!.inputs).map(([name, npy]) => {
      const a = readNpy(path.join(dir, npy));
      return [name, new ort.Tensor(types[a.dtype]!, a.data, a.shape)];
    }),
  );
}

/** Largest |a − b| over every output, and the largest |b|. */
function compare(a: Outputs, b: Outputs): { abs: number; scale: number } {
  let abs = 0;
  let scale = 0;
  for (const [name, want] of Object.entries(b)) {
    const got = a[name]!;
    expect(got.length, name).toBe(want.length);
    want.forEach((w, i) => {
      abs = Math.max(abs, Math.abs(got[i]! - w));
      scale = Math.max(scale, Math.abs(w));
    });
  }
  return { abs, scale };
}

interface Case {
  readonly name: string;
  /** The spec file, written to a temporary folder when given as text. */
  readonly spec: string;
  /** Committed inputs per graph (a parity fixture's folder); random ones otherwise. */
  readonly fixture?: string;
  /** Fused ops the fused models must hold at least, summed over graphs. */
  readonly expected: Readonly<Record<string, number>>;
  /** The target of the fused models (default ort-cpu). */
  readonly target?: Target;
}

/**
 * Runs a case: outputs of ort-cpu (or the case's target) vs portable within 1e-5 of the outputs' scale (max |y|, at least
 * 1: the fused kernels sum in another order); the fused
 * model with ONNX Runtime's optimizations all vs disabled, likewise. Measured: at most 6e-7 of it.
 */
async function check(c: Case): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vlmc-fusion-"));
  folders.push(dir);
  const spec = c.spec.endsWith(".vlm") ? c.spec : path.join(dir, "spec.vlm");
  if (spec !== c.spec) fs.writeFileSync(spec, c.spec);
  // A fixture's checkpoint (the library's own keys) loads through the spec's key maps; other specs take random
  // weights under vlmc's names.
  const weights = c.fixture ? fixtureWeights(c.fixture, dir) : randomCheckpoint(spec, dir);
  const portable = await build(spec, "portable", weights, dir);
  const target = c.target ?? "ort-cpu";
  const fused = await build(spec, target, weights, dir);
  const counts: Record<string, number> = {};
  let worst = { abs: 0, scale: 0, optimized: 0 };
  for (const [graph, file] of fused) {
    for (const [op, n] of Object.entries(fusedOps(file))) counts[op] = (counts[op] ?? 0) + n;
    const feeds = c.fixture ? fixtureFeeds(c.fixture, graph) : randomFeeds(file, 5);
    const reference = await run(portable.get(graph)!, feeds, "disabled");
    const ours = await run(file, feeds, "disabled");
    const { abs, scale } = compare(ours, reference);
    const tolerance = 1e-5 * Math.max(scale, 1);
    expect(abs, `${c.name} ${graph}: ${target} vs portable (outputs up to ${scale})`).toBeLessThanOrEqual(tolerance);
    const optimized = compare(await run(file, feeds, "all"), ours);
    expect(
      optimized.abs,
      `${c.name} ${graph}: ${target} with ONNX Runtime's optimizations all vs disabled`,
    ).toBeLessThanOrEqual(tolerance);
    worst = {
      abs: Math.max(worst.abs, abs),
      scale: Math.max(worst.scale, scale),
      optimized: Math.max(worst.optimized, optimized.abs),
    };
  }
  for (const [op, n] of Object.entries(c.expected))
    expect(counts[op] ?? 0, `${c.name}: ${op} nodes`).toBeGreaterThanOrEqual(n);
  const e = (x: number) => x.toExponential(1);
  figures.push(
    `${c.name.padEnd(26)} |Δ| ${e(worst.abs)} (|y| ≤ ${worst.scale.toFixed(1)}), ORT all vs disabled ${e(worst.optimized)}  ${JSON.stringify(counts)}`,
  );
}

// ---- hand-written specs, one per rule ----

const SKIP_NORMS_SPEC = `model m {
  fc = linear(8, 8)
  fc2 = linear(8, 8)
  ln = layer_norm(8)
  ln2 = layer_norm(8, bias: false)
  rms = rms_norm(8)
  rms2 = rms_norm(8)
  param pos: [1, 4, 8] = normal(0.5)
  forward(x: f32[B, 4, 8], y: f32[B, 4, 8]) {
    s = x + pos
    a = ln(s)
    s2 = s + fc(a)
    b = rms(s2)
    post = ln2(fc2(b) + y)
    return a: a, b: rms2(post) + s2, flat: rms(y[:, 0])
  }
}`;

const RULE_CASES: Case[] = [
  // SkipLayerNormalization only on ort-cuda: on ort-cpu it ran slower than Add + LayerNormalization.
  {
    name: "skip norms",
    spec: SKIP_NORMS_SPEC,
    expected: { SkipSimplifiedLayerNormalization: 1, SimplifiedLayerNormalization: 2 },
  },
  {
    name: "skip norms (ort-cuda)",
    spec: SKIP_NORMS_SPEC,
    target: "ort-cuda",
    expected: { SkipLayerNormalization: 2, SkipSimplifiedLayerNormalization: 1, SimplifiedLayerNormalization: 2 },
  },
  {
    name: "gelus",
    spec: `model m {
  fc = linear(8, 12)
  fc2 = linear(8, 12, bias: false)
  forward(x: f32[B, T, 8]) {
    h = fc(x * 3)
    return a: gelu(fc(x)) + gelu_tanh(fc(x * 2)), b: quick_gelu(h) + gelu(h) + gelu_tanh(fc2(x))
  }
}`,
    expected: { BiasGelu: 1, FastGelu: 2, Gelu: 1, QuickGelu: 1 },
  },
  {
    name: "multi-head attention",
    spec: `model m {
  forward(q: f32[B, T, 16], k: f32[B, S, 16], v: f32[B, S, 24], mask: f32[B, 1, 1, S], allowed: bool[B, 1, T, S], c: f32[B, T, 16], bias2: f32[T, T]) {
    return cross: attention(q, k, v, 4, mask: mask),
      bool_mask: attention(q, k, v, 4, mask: allowed, scale: 0.5),
      causal_rope: attention(q, c, c, 4, causal: true, rotary: 10000.0),
      causal_bias: attention(c, q, q, 2, causal: true, mask: bias2),
      cross_causal: attention(q, k, k, 4, causal: true)
  }
}`,
    expected: { MultiHeadAttention: 4, RotaryEmbedding: 2 },
  },
  {
    // One projection sliced (with a bias, without one, a Linear's), three Linears packed at build
    // time (with biases and wider values, without biases), float, bool and causal masks.
    name: "attention with packed projections",
    spec: `model m {
  qkv = linear(16, 48)
  qp = linear(16, 16)
  kp = linear(16, 16)
  vp = linear(16, 24)
  qn = linear(16, 16, bias: false)
  kn = linear(16, 16, bias: false)
  vn = linear(16, 16, bias: false)
  param w: [16, 48] = normal(0.5)
  param w2: [16, 48] = normal(0.5)
  param b: [48] = normal(0.5)
  forward(x: f32[B, T, 16], mask: f32[B, 1, 1, T], allowed: bool[B, 1, T, T]) {
    h = x @ w + b
    p = x @ w2
    l = qkv(x * 2)
    return sliced: attention(h[:, :, 0:16], h[:, :, 16:32], h[:, :, 32:48], 4, mask: mask),
      unbiased: attention(p[:, :, 0:16], p[:, :, 16:32], p[:, :, 32:48], 2, causal: true),
      linear: attention(l[:, :, 0:16], l[:, :, 16:32], l[:, :, 32:48], 4, mask: allowed),
      linears: attention(qp(x), kp(x), vp(x), 4, scale: 0.3),
      bare: attention(qn(x), kn(x), vn(x), 8, causal: true, mask: mask)
  }
}`,
    expected: { Attention: 5 },
  },
  {
    name: "group-query attention",
    spec: `model m {
  forward(q: f32[B, T, 64], kv: f32[B, T, 32], q8: f32[B, T, 32], kv8: f32[B, T, 16]) {
    return rope_inside: attention(q, kv, kv, 4, kv_heads: 2, causal: true, rotary: 10000.0),
      rope_outside: attention(q8, kv8, kv8, 4, kv_heads: 2, causal: true, rotary: 500.0),
      plain: attention(q, kv, kv, 4, kv_heads: 2, causal: true, scale: 0.3)
  }
}`,
    expected: { GroupQueryAttention: 3, RotaryEmbedding: 2 },
  },
  {
    name: "llama without mask (GQA)",
    spec: `import { llama } from "std"
model m {
  encoder net = llama(vocab: 50, width: 64, depth: 2, heads: 4, kv_heads: 2, mlp: 48, context: 16, eps: 1e-5)
  forward(ids: i64[B, T <= 16]) {
    return logits: net(net.embed_tokens(ids))
  }
}`,
    expected: { GroupQueryAttention: 2, SkipSimplifiedLayerNormalization: 4, SimplifiedLayerNormalization: 1 },
  },
];

describe("fusion keeps outputs (ort-cpu vs portable in onnxruntime)", () => {
  for (const c of RULE_CASES) it(c.name, () => check(c));

  // The tiny std models of the parity fixtures, on their committed inputs.
  const fixtures = fs.existsSync(PARITY)
    ? fs
        .readdirSync(PARITY)
        .filter((n) => fs.existsSync(path.join(PARITY, n, "spec.vlm")))
        .sort()
    : [];
  const EXPECTED: Readonly<Record<string, Record<string, number>>> = {
    vit: { Attention: 2, BiasGelu: 2 },
    hf_vit: { Attention: 2, BiasGelu: 2 },
    hf_clip: { Attention: 8, QuickGelu: 8 },
    hf_llama: { GroupQueryAttention: 2, SkipSimplifiedLayerNormalization: 4, SimplifiedLayerNormalization: 1 },
    hf_t5: { Attention: 4, MultiHeadAttention: 2 },
    // Q-Former: self-attention packed, cross-attention to the image as MultiHeadAttention.
    hf_blip2: { Attention: 8, MultiHeadAttention: 2 },
    hf_bert: { Attention: 2, BiasGelu: 2 },
    hf_gpt2: { Attention: 2, FastGelu: 2 },
    hf_opt: { Attention: 2 },
  };
  for (const name of fixtures) {
    it(`std ${name}`, () =>
      check({
        name,
        spec: path.join(PARITY, name, "spec.vlm"),
        fixture: path.join(PARITY, name),
        expected: EXPECTED[name] ?? {},
      }));
  }
});

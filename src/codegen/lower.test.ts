// Numerical tests of the portable lowering: small models, one per IR op family, compiled and run
// in onnxruntime, against straightforward double-precision JavaScript references computed from
// the same weights (read back from the ONNX initializers). Parameters come from a random
// checkpoint so that norms' scales and biases are not the ones and zeros of default init.

import fs from "node:fs";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { tempFolders } from "../../test/temp-folders.js";
import { elaborate } from "../driver/check.js";
import { compile } from "../driver/compile.js";
import { Rng } from "../numerics/rng.js";
import { decodeOnnxModel } from "../onnx/onnx-writer.js";
import { writeSafetensors } from "./safetensors.js";

const tempFolder = tempFolders("vlmc-lower-");

interface Tensor {
  shape: number[];
  data: number[];
}

interface Built {
  file: string;
  /** Initializers as stored in the model (Linear weights transposed to [in, out]). */
  params: Map<string, Tensor>;
  metadata: Map<string, string>;
  run(feeds: Record<string, ort.Tensor>): Promise<Record<string, Tensor>>;
}

/**
 * Compiles one graph of `src` with every parameter drawn from a random
 * checkpoint; batch-norm variances are kept positive.
 */
async function build(src: string, graph = "forward"): Promise<Built> {
  const dir = tempFolder();
  const spec = path.join(dir, "spec.vlm");
  fs.writeFileSync(spec, src);
  const module = elaborate([spec]).models[0]!.module!;
  const rng = new Rng(7);
  const checkpoint = path.join(dir, "weights.safetensors");
  writeSafetensors(
    checkpoint,
    module.params.map((p) => {
      const n = (p.type.shape as number[]).reduce((a, b) => a * b, 1);
      const data = Float32Array.from({ length: n }, () =>
        p.name.endsWith("running_var") ? 0.5 + rng.uniform() : 0.5 * rng.normal(),
      );
      return { name: p.name, dtype: "F32" as const, shape: p.type.shape as number[], data };
    }),
  );
  const out = path.join(dir, "model.onnx");
  // Lowering is tested on the graph as written: the checks would flag these deliberately odd specs.
  const result = await compile([spec], {
    out,
    weights: checkpoint,
    graph,
    passes: ["-unused-values", "-output-dependence"],
  });
  expect(result.diagnostics).toEqual([]);
  const model = decodeOnnxModel(fs.readFileSync(out));
  const params = new Map<string, Tensor>();
  for (const t of model.graph!.initializer!) {
    const raw = t.rawData!;
    const bytes = new Uint8Array(raw.byteLength);
    bytes.set(raw);
    if (t.dataType === 1)
      params.set(t.name!, { shape: t.dims!.map(Number), data: Array.from(new Float32Array(bytes.buffer)) });
  }
  const metadata = new Map(model.metadataProps!.map((p) => [p.key!, p.value!]));
  return {
    file: out,
    params,
    metadata,
    run: async (feeds) => {
      const session = await ort.InferenceSession.create(out);
      try {
        const results = await session.run(feeds);
        return Object.fromEntries(
          Object.entries(results).map(([name, t]) => [
            name,
            { shape: [...t.dims], data: Array.from(t.data as ArrayLike<number | bigint>, Number) },
          ]),
        );
      } finally {
        await session.release();
      }
    },
  };
}

function randomTensor(shape: number[], seed: number): Tensor {
  const rng = new Rng(seed);
  return { shape, data: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()) };
}

const f32 = (t: Tensor) => new ort.Tensor("float32", Float32Array.from(t.data), t.shape);
const i64 = (shape: number[], data: number[]) => new ort.Tensor("int64", BigInt64Array.from(data, BigInt), shape);

/** Same shape, and values within 1e-4 of the reference. */
function expectClose(actual: Tensor, expected: Tensor, tolerance = 1e-4): void {
  expect(actual.shape).toEqual(expected.shape);
  let worst = 0;
  actual.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - expected.data[i]!))));
  expect(worst).toBeLessThanOrEqual(tolerance);
}

// ---- references (row-major, double precision) ----

function param(b: Built, name: string): Tensor {
  const p = b.params.get(name);
  if (!p) throw new Error(`no initializer ${name}`);
  return p;
}

/** Applies `f` to each row of the last axis. */
function rows(x: Tensor, f: (row: number[]) => number[]): Tensor {
  const w = x.shape[x.shape.length - 1]!;
  const out: number[] = [];
  for (let i = 0; i < x.data.length; i += w) out.push(...f(x.data.slice(i, i + w)));
  return { shape: [...x.shape.slice(0, -1), out.length / (x.data.length / w)], data: out };
}

function map(x: Tensor, f: (v: number, i: number) => number): Tensor {
  return { shape: x.shape, data: x.data.map(f) };
}

/** y = x · Wt + b with the weight as stored, [in, out]. */
function linear(x: Tensor, wt: Tensor, b?: Tensor): Tensor {
  const outF = (wt.shape as [number, number])[1];
  return rows(x, (r) =>
    Array.from({ length: outF }, (_, o) => r.reduce((s, v, i) => s + v * wt.data[i * outF + o]!, b?.data[o] ?? 0)),
  );
}

function layerNorm(x: Tensor, w: Tensor, b: Tensor | undefined, eps: number): Tensor {
  return rows(x, (r) => {
    const mean = r.reduce((s, v) => s + v, 0) / r.length;
    const variance = r.reduce((s, v) => s + (v - mean) ** 2, 0) / r.length;
    return r.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * w.data[i]! + (b?.data[i] ?? 0));
  });
}

/** erf to ~1e-12 by its Maclaurin series for |x| < 3 and the asymptotic 1 beyond (erfc(3) ≈ 2e-5 · 1/3). */
function erf(x: number): number {
  if (Math.abs(x) > 5) return Math.sign(x);
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

describe("portable lowering, numerically", () => {
  it("linear, the GELUs and layer norm", async () => {
    const b = await build(`model m {
  fc = linear(8, 12)
  ln = layer_norm(12)
  ln2 = layer_norm(12, bias: false, eps: 1e-3)
  forward(x: f32[B, T, 8]) {
    h = fc(x)
    return a: ln(gelu(h)), b: ln2(gelu_tanh(h)), c: quick_gelu(h) + silu(h) + squared_relu(h)
  }
}`);
    // The weight keeps its name, stored [in, out], and the metadata says so.
    expect(param(b, "fc.weight").shape).toEqual([8, 12]);
    expect(JSON.parse(b.metadata.get("vlmc.transposed")!)).toEqual(["fc.weight"]);
    const x = randomTensor([2, 3, 8], 1);
    const out = await b.run({ x: f32(x) });
    const h = linear(x, param(b, "fc.weight"), param(b, "fc.bias"));
    const gelu = map(h, (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
    const geluTanh = map(h, (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    expectClose(out["a"]!, layerNorm(gelu, param(b, "ln.weight"), param(b, "ln.bias"), 1e-5));
    expectClose(out["b"]!, layerNorm(geluTanh, param(b, "ln2.weight"), undefined, 1e-3));
    expectClose(
      out["c"]!,
      map(h, (v) => v * sigmoid(1.702 * v) + v * sigmoid(v) + Math.max(v, 0) ** 2),
    );
  });

  it("conv2d (strided, padded, grouped), batch norm, max and average pooling", async () => {
    const b = await build(`model m {
  conv = conv2d(3, 4, 3, stride: 2, padding: 1)
  dw = conv2d(4, 4, 3, padding: 1, groups: 4, bias: false)
  bn = batch_norm(4)
  forward(img: f32[B, 3, 9, 9]) {
    y = relu(bn(dw(conv(img))))
    return p: max_pool2d(y, 2), q: avg_pool2d(y, 3, stride: 2, padding: 1)
  }
}`);
    const img = randomTensor([2, 3, 9, 9], 2);
    const out = await b.run({ img: f32(img) });
    const c1 = conv2d(img, param(b, "conv.weight"), param(b, "conv.bias"), 2, 1, 1);
    const c2 = conv2d(c1, param(b, "dw.weight"), undefined, 1, 1, 4);
    const [mean, variance, w, bias] = ["running_mean", "running_var", "weight", "bias"].map((k) => param(b, `bn.${k}`));
    const plane = c2.shape[2]! * c2.shape[3]!;
    const y = map(c2, (v, i) => {
      const ch = Math.floor(i / plane) % c2.shape[1]!;
      return Math.max(
        0,
        ((v - mean!.data[ch]!) / Math.sqrt(variance!.data[ch]! + 1e-5)) * w!.data[ch]! + bias!.data[ch]!,
      );
    });
    expectClose(
      out["p"]!,
      pool(y, 2, 2, 0, (win) => Math.max(...win.filter((v) => v !== undefined))),
    );
    // PyTorch's default count_include_pad=True: padding counts in the divisor.
    expectClose(
      out["q"]!,
      pool(y, 3, 2, 1, (win) => win.reduce<number>((s, v) => s + (v ?? 0), 0) / win.length),
    );
  });

  it("embedding and RMS norm", async () => {
    const b = await build(`model m {
  emb = embedding(20, 8)
  norm = rms_norm(8, eps: 1e-5)
  forward(ids: i64[B, T]) {
    return norm(emb(ids))
  }
}`);
    const ids = [0, 5, 19, 3, 3, 11];
    const out = await b.run({ ids: i64([2, 3], ids) });
    const table = param(b, "emb.weight");
    const gathered: Tensor = { shape: [2, 3, 8], data: ids.flatMap((i) => table.data.slice(i * 8, i * 8 + 8)) };
    const w = param(b, "norm.weight");
    expectClose(
      out["output"]!,
      rows(gathered, (r) => {
        const rms = Math.sqrt(r.reduce((s, v) => s + v * v, 0) / r.length + 1e-5);
        return r.map((v, i) => (v / rms) * w.data[i]!);
      }),
    );
  });

  const ATTENTION = `model m {
  q = linear(16, 16)
  k = linear(16, 16)
  v = linear(16, 16)
  k2 = linear(16, 8)
  v2 = linear(16, 8)
  forward(x: f32[B, T, 16], mask: f32[B, 1, T, T]) {
    qx = q(x)
    return plain: attention(qx, k(x), v(x), 4),
      causal: attention(qx, k(x), v(x), 4, causal: true, scale: 0.3),
      grouped: attention(qx, k2(x), v2(x), 4, kv_heads: 2, causal: true),
      rotary: attention(qx, k(x), v(x), 4, causal: true, rotary: 100.0),
      masked: attention(qx, k(x), v(x), 4, mask: mask),
      allowed: attention(qx, k(x), v(x), 4, mask: mask > -0.8),
      all: attention(qx, k2(x), v2(x), 4, kv_heads: 2, causal: true, rotary: 10000.0, mask: mask)
  }
  graph cross(x: f32[B, T, 16], memory: f32[B, S, 16]) {
    return attention(q(x), k(memory), v(memory), 4, causal: true, rotary: 100.0)
  }
}`;

  it("attention: plain, causal with a scale, grouped-query, rotary, additive and bool masks, and all at once", async () => {
    const b = await build(ATTENTION);
    const x = randomTensor([2, 5, 16], 3);
    // Masked-out pairs get −30 rather than a huge value: in float32, −1e9 + score would round the
    // score away in rows where every visible key is masked, which the reference would not.
    const mask = map(randomTensor([2, 1, 5, 5], 4), (v) => (v < -0.8 ? -30 : v));
    const out = await b.run({ x: f32(x), mask: f32(mask) });
    const proj = (name: string) => linear(x, param(b, `${name}.weight`), param(b, `${name}.bias`));
    const [q, k, v, k2, v2] = ["q", "k", "v", "k2", "v2"].map(proj) as Tensor[];
    const base = { heads: 4, kvHeads: 4, causal: false, scale: 0.5, theta: 0 };
    expectClose(out["plain"]!, attention(q!, k!, v!, base));
    expectClose(out["causal"]!, attention(q!, k!, v!, { ...base, causal: true, scale: 0.3 }));
    expectClose(out["grouped"]!, attention(q!, k2!, v2!, { ...base, kvHeads: 2, causal: true }));
    expectClose(out["rotary"]!, attention(q!, k!, v!, { ...base, causal: true, theta: 100 }));
    expectClose(out["masked"]!, attention(q!, k!, v!, { ...base, mask }));
    // A bool mask marks the pairs that may attend.
    expectClose(
      out["allowed"]!,
      attention(q!, k!, v!, { ...base, mask: map(mask, (m) => (m > -0.8 ? 0 : -Infinity)) }),
    );
    expectClose(out["all"]!, attention(q!, k2!, v2!, { ...base, kvHeads: 2, causal: true, theta: 10000, mask }));
  });

  it("attention with fewer queries than keys aligns causality and positions at the end", async () => {
    const b = await build(ATTENTION, "cross");
    const x = randomTensor([1, 3, 16], 5);
    const memory = randomTensor([1, 6, 16], 6);
    const out = await b.run({ x: f32(x), memory: f32(memory) });
    const proj = (t: Tensor, name: string) => linear(t, param(b, `${name}.weight`), param(b, `${name}.bias`));
    expectClose(
      out["output"]!,
      attention(proj(x, "q"), proj(memory, "k"), proj(memory, "v"), {
        heads: 4,
        kvHeads: 4,
        causal: true,
        scale: 0.5,
        theta: 100,
      }),
    );
  });

  it("slices, concat, reshape, transpose, expand and arange over a symbolic batch", async () => {
    const b = await build(`model m {
  forward(x: f32[B, N, 4]) {
    flat = reshape(x, [dim(x, 0) * dim(x, 1), 4])
    back = reshape(flat * 2.0, [dim(x, 0), dim(x, 1), 2, 2])
    first = x[:, 0]
    return flat, back, tail: x[:, 1:, 1:3], cat: concat(first, first * 3.0, axis: 1),
      wide: expand(unsqueeze(first, 1), [dim(x, 0), 3, 4]), t: transpose(back, [0, 2, 1, 3]),
      ids: arange(dim(x, 0) * dim(x, 1)), rev: x[:, :, ::-1], rows: expand(unsqueeze(x[0], 0), [dim(x, 0), dim(x, 1), 4])
  }
}`);
    const x = randomTensor([2, 3, 4], 8);
    const out = await b.run({ x: f32(x) });
    const at = (i: number, j: number, c: number) => x.data[(i * 3 + j) * 4 + c]!;
    const build3 = (shape: number[], f: (idx: number[]) => number): Tensor => {
      const data: number[] = [];
      const idx = shape.map(() => 0);
      const total = shape.reduce((a, b2) => a * b2, 1);
      for (let n = 0; n < total; n++) {
        let r = n;
        for (let d = shape.length - 1; d >= 0; d--) {
          idx[d] = r % shape[d]!;
          r = Math.floor(r / shape[d]!);
        }
        data.push(f(idx));
      }
      return { shape, data };
    };
    expectClose(out["flat"]!, { shape: [6, 4], data: x.data });
    expectClose(out["back"]!, { shape: [2, 3, 2, 2], data: x.data.map((v) => 2 * v) });
    expectClose(
      out["tail"]!,
      build3([2, 2, 2], ([i, j, c]) => at(i!, j! + 1, c! + 1)),
    );
    expectClose(
      out["cat"]!,
      build3([2, 8], ([i, c]) => (c! < 4 ? at(i!, 0, c!) : 3 * at(i!, 0, c! - 4))),
    );
    expectClose(
      out["wide"]!,
      build3([2, 3, 4], ([i, , c]) => at(i!, 0, c!)),
    );
    expectClose(
      out["t"]!,
      build3([2, 2, 3, 2], ([i, a, j, c]) => 2 * at(i!, j!, a! * 2 + c!)),
    );
    expect(out["ids"]).toEqual({ shape: [6], data: [0, 1, 2, 3, 4, 5] });
    expectClose(
      out["rev"]!,
      build3([2, 3, 4], ([i, j, c]) => at(i!, j!, 3 - c!)),
    );
    expectClose(
      out["rows"]!,
      build3([2, 3, 4], ([, j, c]) => at(0, j!, c!)),
    );
  });

  it("elementwise ops, comparisons, reductions, cumsum, casts, modulo and relative position buckets", async () => {
    const b = await build(`model m {
  forward(x: f32[B, 5], y: f32[B, 5]) {
    return sm: softmax(x), mn: mean(x, axis: 1, keepdim: true), total: sum(x, axis: 0), top: reduce_max(x, axis: 1), l2: l2_normalize(x),
      w: where(x > y, x, y), cs: cumsum(x, axis: 1), md: x % 0.7, mdi: cast(x * 10.0, i64) % 3,
      un: exp(x) + log(abs(x) + 1.0) + sqrt(abs(x)) + tanh(x) + sigmoid(x) + relu(-x) + x ** 2.0 - x / (abs(y) + 1.0),
      cmp: cast((x >= y) and (x != y) or not (x < 0.0), f32),
      rb: relative_position_bucket(5, 7, 8, 20), rbc: relative_position_bucket(6, 40, 16, 30, bidirectional: false)
  }
}`);
    const x = randomTensor([2, 5], 9);
    const y = randomTensor([2, 5], 10);
    const out = await b.run({ x: f32(x), y: f32(y) });
    expectClose(
      out["sm"]!,
      rows(x, (r) => {
        const e = r.map((v) => Math.exp(v - Math.max(...r)));
        return e.map((v) => v / e.reduce((s, u) => s + u, 0));
      }),
    );
    expectClose(
      out["mn"]!,
      rows(x, (r) => [r.reduce((s, v) => s + v, 0) / r.length]),
    );
    expectClose(out["top"]!, { shape: [2], data: [0, 1].map((i) => Math.max(...x.data.slice(5 * i, 5 * i + 5))) });
    expectClose(out["total"]!, { shape: [5], data: x.data.slice(0, 5).map((v, i) => v + x.data[5 + i]!) });
    expectClose(
      out["l2"]!,
      rows(x, (r) => r.map((v) => v / Math.max(Math.hypot(...r), 1e-12))),
    );
    expectClose(
      out["w"]!,
      map(x, (v, i) => (v > y.data[i]! ? v : y.data[i]!)),
    );
    expectClose(
      out["cs"]!,
      rows(x, (r) => r.map((_, i) => r.slice(0, i + 1).reduce((s, v) => s + v, 0))),
    );
    // Python's `%` (torch.remainder): the result takes the divisor's sign.
    expectClose(
      out["md"]!,
      map(x, (v) => v - Math.floor(v / 0.7) * 0.7),
    );
    expect(out["mdi"]!.data).toEqual(x.data.map((v) => ((Math.trunc(Math.fround(v) * 10) % 3) + 3) % 3));
    expectClose(
      out["un"]!,
      map(
        x,
        (v, i) =>
          Math.exp(v) +
          Math.log(Math.abs(v) + 1) +
          Math.sqrt(Math.abs(v)) +
          Math.tanh(v) +
          sigmoid(v) +
          Math.max(-v, 0) +
          v * v -
          v / (Math.abs(y.data[i]!) + 1),
      ),
    );
    expect(out["cmp"]!.data).toEqual(x.data.map((v, i) => ((v >= y.data[i]! && v !== y.data[i]!) || !(v < 0) ? 1 : 0)));
    expect(out["rb"]).toEqual({ shape: [5, 7], data: t5Buckets(5, 7, 8, 20, true) });
    expect(out["rbc"]).toEqual({ shape: [6, 40], data: t5Buckets(6, 40, 16, 30, false) });
  });
});

function conv2d(x: Tensor, w: Tensor, b: Tensor | undefined, stride: number, pad: number, groups: number): Tensor {
  const [B, C, H, W] = x.shape as [number, number, number, number];
  const [O, Cg, K] = w.shape as [number, number, number];
  const Ho = Math.floor((H + 2 * pad - K) / stride) + 1;
  const Wo = Math.floor((W + 2 * pad - K) / stride) + 1;
  const data: number[] = [];
  for (let n = 0; n < B; n++)
    for (let o = 0; o < O; o++)
      for (let i = 0; i < Ho; i++)
        for (let j = 0; j < Wo; j++) {
          let s = b?.data[o] ?? 0;
          const g = Math.floor(o / (O / groups));
          for (let c = 0; c < Cg; c++)
            for (let ki = 0; ki < K; ki++)
              for (let kj = 0; kj < K; kj++) {
                const yi = i * stride - pad + ki;
                const xj = j * stride - pad + kj;
                if (yi < 0 || yi >= H || xj < 0 || xj >= W) continue;
                s += x.data[((n * C + g * Cg + c) * H + yi) * W + xj]! * w.data[((o * Cg + c) * K + ki) * K + kj]!;
              }
          data.push(s);
        }
  return { shape: [B, O, Ho, Wo], data };
}

/** Pools each k×k window; padded positions are passed as undefined. */
function pool(
  x: Tensor,
  k: number,
  stride: number,
  pad: number,
  f: (window: (number | undefined)[]) => number,
): Tensor {
  const [B, C, H, W] = x.shape as [number, number, number, number];
  const Ho = Math.floor((H + 2 * pad - k) / stride) + 1;
  const Wo = Math.floor((W + 2 * pad - k) / stride) + 1;
  const data: number[] = [];
  for (let n = 0; n < B * C; n++)
    for (let i = 0; i < Ho; i++)
      for (let j = 0; j < Wo; j++) {
        const window: (number | undefined)[] = [];
        for (let a = 0; a < k; a++)
          for (let c = 0; c < k; c++) {
            const yi = i * stride - pad + a;
            const xj = j * stride - pad + c;
            window.push(yi < 0 || yi >= H || xj < 0 || xj >= W ? undefined : x.data[(n * H + yi) * W + xj]);
          }
        data.push(f(window));
      }
  return { shape: [B, C, Ho, Wo], data };
}

interface AttentionConfig {
  heads: number;
  kvHeads: number;
  causal: boolean;
  scale: number;
  theta: number;
  mask?: Tensor;
}

/** Rotates one head vector at a position, HF LLaMA's rotate_half convention. */
function rope(vec: number[], pos: number, theta: number): number[] {
  const half = vec.length / 2;
  return vec.map((v, i) => {
    const f = i % half;
    const angle = pos * theta ** ((-2 * f) / vec.length);
    const rotated = i < half ? -vec[i + half]! : vec[i - half]!;
    return v * Math.cos(angle) + rotated * Math.sin(angle);
  });
}

function attention(q: Tensor, k: Tensor, v: Tensor, c: AttentionConfig): Tensor {
  const [B, Tq, width] = q.shape as [number, number, number];
  const Tk = k.shape[1]!;
  const d = width / c.heads;
  const dv = v.shape[2]! / c.kvHeads;
  const head = (t: Tensor, b: number, tok: number, h: number, w: number) =>
    t.data.slice((b * t.shape[1]! + tok) * t.shape[2]! + h * w, (b * t.shape[1]! + tok) * t.shape[2]! + (h + 1) * w);
  const out = new Array<number>(B * Tq * c.heads * dv).fill(0);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < c.heads; h++) {
      const g = Math.floor(h / (c.heads / c.kvHeads));
      for (let i = 0; i < Tq; i++) {
        const qPos = Tk - Tq + i;
        const qi = c.theta > 0 ? rope(head(q, b, i, h, d), qPos, c.theta) : head(q, b, i, h, d);
        const scores = Array.from({ length: Tk }, (_, j) => {
          if (c.causal && j > qPos) return -Infinity;
          const kj = c.theta > 0 ? rope(head(k, b, j, g, d), j, c.theta) : head(k, b, j, g, d);
          const m = c.mask ? c.mask.data[(b * Tq + i) * Tk + j]! : 0;
          return qi.reduce((s, val, e) => s + val * kj[e]!, 0) * c.scale + m;
        });
        const top = Math.max(...scores);
        const weights = scores.map((s) => Math.exp(s - top));
        const total = weights.reduce((s, w) => s + w, 0);
        for (let j = 0; j < Tk; j++) {
          const vj = head(v, b, j, g, dv);
          for (let e = 0; e < dv; e++) out[((b * Tq + i) * c.heads + h) * dv + e]! += (weights[j]! / total) * vj[e]!;
        }
      }
    }
  return { shape: [B, Tq, c.heads * dv], data: out };
}

/** HF T5Attention._relative_position_bucket over memory − context positions, in double precision. */
function t5Buckets(qLen: number, kLen: number, buckets: number, maxDistance: number, bidirectional: boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < qLen; i++)
    for (let j = 0; j < kLen; j++) {
      let n = buckets;
      let bucket = 0;
      let rel = j - i;
      if (bidirectional) {
        n = Math.floor(n / 2);
        bucket += rel > 0 ? n : 0;
        rel = Math.abs(rel);
      } else rel = -Math.min(rel, 0);
      const maxExact = Math.floor(n / 2);
      const large = Math.min(
        maxExact + Math.trunc((Math.log(rel / maxExact) / Math.log(maxDistance / maxExact)) * (n - maxExact)),
        n - 1,
      );
      out.push(bucket + (rel < maxExact ? rel : large));
    }
  return out;
}

// Small graphs for pass tests: typed helpers over the Graph API, and seeded random graphs built
// from the primitives for property tests. A generator call with the same seed builds the same
// graph again, so a test can optimise one copy and keep the other, e.g. to run both in
// onnxruntime (numeric-fixtures.ts).

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { elaborate, type ElaborateResult } from "../../src/driver/check.js";
import type { Diagnostic } from "../../src/diagnostics/diagnostic.js";
import type { Span } from "../../src/diagnostics/source.js";
import { dimMul, isStatic, sym, type Dim } from "../../src/ir/dims.js";
import {
  Graph,
  type AttrValue,
  type ComponentInfo,
  type IrModule,
  type Param,
  type Value,
} from "../../src/ir/graph.js";
import { shapesEqual, tensorType, type DType } from "../../src/ir/types.js";
import { DEFAULT_MAX_ITERATIONS } from "../../src/passes/manager.js";
import { printModule, verifyModule } from "../../src/passes/module-ir.js";
import type { NearMiss, Pass, PassContext, PassOptions } from "../../src/passes/pass.js";
import { targetNamed, type TargetName } from "../../src/target/target.js";

/** Pass options as tests write them: the target by name. */
type TestPassOptions = Partial<Omit<PassOptions, "target">> & { readonly target?: TargetName };

const B = sym("B");

export const SPAN: Span = { file: "test.vlm", start: 0, end: 0 };

export function testParam(name: string, shape: number[], component = name.split(".")[0]!): Param {
  return {
    name,
    type: tensorType("f32", shape),
    init: { kind: "zeros" },
    component,
    role: undefined,
    frozen: false,
    buffer: false,
    span: SPAN,
  };
}

export function testModule(
  graphs: Graph[],
  params: Param[] = [],
  components: ComponentInfo[] = [],
  stages: IrModule["stages"] = [],
): IrModule {
  return { name: "test", params, components, graphs, stages, policies: [], weights: [] };
}

/** Elaborates a spec given as text (written to a temporary file, which `std` imports resolve from). */
export function elaborateSpec(text: string): ElaborateResult & { text: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vlmc-passes-"));
  try {
    const file = path.join(dir, "spec.vlm");
    fs.writeFileSync(file, text);
    return { ...elaborate([file]), text };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A context that keeps what a pass reports, for running a pass without the manager. */
export function recordingContext(options: TestPassOptions = {}) {
  const record = {
    diagnostics: [] as Diagnostic[],
    stats: new Map<string, number>(),
    fires: new Map<string, number>(),
    nearMisses: [] as NearMiss[],
    caps: [] as string[],
  };
  const ctx: PassContext = {
    options: { maxIterations: DEFAULT_MAX_ITERATIONS, ...options, target: targetNamed(options.target) },
    accept: (d) => record.diagnostics.push(d),
    stat: (key, n = 1) => record.stats.set(key, (record.stats.get(key) ?? 0) + n),
    fired: (rule) => record.fires.set(rule, (record.fires.get(rule) ?? 0) + 1),
    nearMiss: (m) => record.nearMisses.push(m),
    capped: (what) => record.caps.push(what),
  };
  return { ctx, ...record };
}

/** Runs one pass without the manager: its result, what it reported, the IR after it and the verifier's findings. */
export function runPass(pass: Pass, module: IrModule, options: TestPassOptions = {}) {
  const record = recordingContext(options);
  const { changed } = pass.run(module, record.ctx);
  return { changed, ...record, ir: printModule(module), problems: verifyModule(module) };
}

/** Adds a one-output node; `shape` defaults to the first input's. */
export function node(
  g: Graph,
  op: string,
  inputs: (Value | undefined)[],
  shape?: readonly Dim[],
  attrs: Record<string, AttrValue> = {},
  dtype?: DType,
): Value {
  const first = inputs.find((v) => v !== undefined);
  const type = tensorType(dtype ?? first?.type.dtype ?? "f32", shape ?? first?.type.shape ?? []);
  return g.addNode(op, inputs, [type], attrs, "/test", SPAN).outputs[0]!;
}

export function constant(g: Graph, value: number, dtype: DType = "f32"): Value {
  return node(g, "Constant", [], [], { value, dtype }, dtype);
}

/**
 * Learned queries [1, 4, 8] plus positions, broadcast to the batch, normed and projected, then
 * reading image features [B, 6, 8]: the shape of a Q-Former's or Perceiver's query path.
 */
export function learnedQueries(): { g: Graph; params: Param[] } {
  const g = new Graph("forward");
  const image = g.addInput("image", tensorType("f32", [B, 6, 8]));
  const shapes: [string, number[]][] = [
    ["query_tokens", [1, 4, 8]],
    ["norm.weight", [8]],
    ["norm.bias", [8]],
    ["to_q.weight", [8, 8]],
    ["to_k.weight", [8, 8]],
    ["to_v.weight", [8, 8]],
    ["pos", [4, 8]],
  ];
  const params = shapes.map(([name, shape]) => testParam(`q.${name}`, shape, "q"));
  const [tokens, nw, nb, wq, wk, wv, pos] = params.map((p) => g.paramValue(p)) as [
    Value,
    Value,
    Value,
    Value,
    Value,
    Value,
    Value,
  ];
  const expand = node(g, "Expand", [tokens], [B, 4, 8], { shape: [-1, 4, 8] });
  const normed = node(g, "LayerNorm", [node(g, "Add", [expand, pos], [B, 4, 8]), nw, nb], undefined, { eps: 1e-5 });
  const q = node(g, "Linear", [normed, wq, undefined]);
  const k = node(g, "Linear", [image, wk, undefined]);
  const v = node(g, "Linear", [image, wv, undefined]);
  g.setOutput("y", node(g, "Attention", [q, k, v, undefined], [B, 4, 8], { heads: 2 }));
  return { g, params };
}

/** mulberry32: a small seeded PRNG, so failures reproduce from the seed alone. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A random graph of Add, Mul, MatMul, Transpose, Reshape, Relu, Concat and Slice over small
 * shapes (some with the symbolic batch B), with parameters, scalar constants 0 and 1, repeated
 * expressions and dead branches, so every cleanup rule has something to find.
 */
export function randomModule(seed: number): IrModule {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const g = new Graph(`random_${seed}`);
  const params: Param[] = [];
  const param = (shape: number[]): Value => {
    // N(0, 1) rather than testParam's zeros, so that run in onnxruntime the weights matter.
    const p: Param = { ...testParam(`p${params.length}.weight`, shape), init: { kind: "normal", mean: 0, std: 1 } };
    params.push(p);
    return g.paramValue(p);
  };
  const pool: Value[] = [];
  for (let i = 0; i < 2; i++) pool.push(param([int(1, 4), int(2, 4)]));
  // Inputs last, so the first chain starts from one.
  const inputCount = int(1, 2);
  for (let i = 0; i < inputCount; i++) {
    const shape: Dim[] = [rand() < 0.5 ? B : int(1, 3), int(2, 4), int(1, 4)];
    pool.push(g.addInput(`x${i}`, tensorType("f32", shape)));
  }

  const sameShape = (x: Value): Value => {
    const peers = pool.filter((p) => p !== x && shapesEqual(p.type.shape, x.type.shape));
    const r = rand();
    if (r < 0.3) return constant(g, pick([0, 1, 2]));
    if (r < 0.5 || peers.length === 0)
      return x.type.shape.every(isStatic) && rand() < 0.5 ? param(x.type.shape as number[]) : x;
    return pick(peers);
  };
  const steps: Record<string, (x: Value) => Value> = {
    Add: (x) => node(g, "Add", [x, sameShape(x)], x.type.shape),
    Mul: (x) => node(g, "Mul", rand() < 0.5 ? [x, sameShape(x)] : [sameShape(x), x], x.type.shape),
    Relu: (x) => node(g, "Relu", [x]),
    MatMul: (x) => {
      const s = x.type.shape;
      const n = int(1, 4);
      if (s.length < 2 || !isStatic(s[s.length - 1]!)) return node(g, "Relu", [x]);
      return node(g, "MatMul", [x, param([s[s.length - 1] as number, n])], [...s.slice(0, -1), n]);
    },
    Transpose: (x) => {
      const rank = x.type.shape.length;
      const perm = [...Array(rank).keys()];
      if (rand() < 0.8)
        for (let i = rank - 1; i > 0; i--) {
          const j = int(0, i);
          [perm[i], perm[j]] = [perm[j]!, perm[i]!];
        }
      return node(
        g,
        "Transpose",
        [x],
        perm.map((p) => x.type.shape[p]!),
        { perm },
      );
    },
    Reshape: (x) => {
      const s = x.type.shape;
      // Merge two neighbouring axes, split one static axis off, or keep the shape.
      const r = rand();
      let target: Dim[] = [...s];
      if (r < 0.4 && s.length >= 2) {
        const at = int(0, s.length - 2);
        target = [...s.slice(0, at), dimMul(s[at]!, s[at + 1]!), ...s.slice(at + 2)];
      } else if (r < 0.8 && s.length < 4) target = [...s, 1];
      return node(g, "Reshape", [x], target, { shape: target.map((d) => (isStatic(d) ? d : -1)) });
    },
    Concat: (x) => {
      const axis = int(0, x.type.shape.length - 1);
      const other = rand() < 0.5 ? x : sameShape(x);
      const shape = x.type.shape.map((d, i) => (i === axis ? dimMul(d, 2) : d));
      return other.type.shape.length === x.type.shape.length
        ? node(g, "Concat", [x, other], shape, { axis })
        : node(g, "Relu", [x]);
    },
    Slice: (x) => {
      const axes = x.type.shape.map((_, i) => i).filter((i) => isStatic(x.type.shape[i]!));
      if (axes.length === 0) return node(g, "Relu", [x]);
      const axis = pick(axes);
      const d = x.type.shape[axis] as number;
      const start = rand() < 0.4 ? 0 : int(0, d - 1);
      const end = rand() < 0.4 ? d : int(start + 1, d);
      return node(
        g,
        "Slice",
        [x],
        x.type.shape.map((e, i) => (i === axis ? end - start : e)),
        { starts: [start], ends: [end], axes: [axis], steps: [1] },
      );
    },
  };
  const ops = Object.keys(steps);
  const count = int(4, 16);
  for (let i = 0; i < count; i++) {
    // Mostly chains (the newest values), sometimes a branch from anywhere.
    const x = rand() < 0.7 ? pick(pool.slice(-3)) : pick(pool);
    const op = pick(ops);
    pool.push(steps[op]!(x));
    // Often the same expression twice, for common-subexpression elimination to merge.
    const last = pool[pool.length - 1]!.producer!;
    if (rand() < 0.2)
      pool.push(
        g.addNode(
          last.op,
          [...last.inputs],
          last.outputs.map((o) => o.type),
          { ...last.attrs },
          last.scope,
          last.span,
        ).outputs[0]!,
      );
  }
  // The newest value that reads an input, and sometimes another: what no output reaches is dead.
  const readsInput = new Set(g.inputs);
  for (const n of g.nodes)
    if (n.inputs.some((v) => v && readsInput.has(v))) n.outputs.forEach((o) => readsInput.add(o));
  const computed = pool.filter((v) => v.source.kind === "node");
  const main = [...computed].reverse().find((v) => readsInput.has(v)) ?? computed[computed.length - 1]!;
  const outs = [main, ...(rand() < 0.5 ? [pick(computed)] : [])];
  outs.forEach((v, i) => g.setOutput(`y${i}`, v));
  return testModule([g], params);
}

// convert-precision: runs the float work of a model in fp16 or bf16 where `--precision` or the
// policy asks (see policy.ts), for GPU targets: parameters are stored converted, computations
// take and give the reduced type, and casts sit where reduced and fp32 work meet, so the graph's
// inputs and outputs keep their declared types.

import { diagnostic } from "../../diagnostics/diagnostic.js";
import type { Graph, IrModule, Node, Param, Value } from "../../ir/graph.js";
import { tensorType, type DType } from "../../ir/types.js";
import type { Pass, PassContext, Precision } from "../pass.js";
import { PRECOMPUTED, QUANT_LINEAR, STORED_CAST } from "../../ir/ops.js";
import { componentOwner, resolvePrecision, scopeComponent } from "./policy.js";
import { warnUnchanged } from "./unchanged.js";

/** The IR dtype each precision computes in. */
export const DTYPE_OF = { fp32: "f32", fp16: "f16", bf16: "bf16" } as const satisfies Record<Precision, DType>;

/**
 * Ops that stay fp32 inside reduced-precision work, as PyTorch autocast keeps them: normalisation
 * and softmax (sums of squares and exponentials overflow fp16's 65504 and lose bf16's 8-bit
 * mantissa), reductions, and exp/log/pow. Attention is converted: its scores' softmax is inside
 * the op and GPU kernels accumulate it in fp32.
 */
export const KEEP_FP32: ReadonlySet<string> = new Set([
  "LayerNorm",
  "RMSNorm",
  "Softmax",
  "L2Normalize",
  "ReduceMean",
  "ReduceSum",
  "CumSum",
  "Exp",
  "Log",
  "Pow",
]);

/** Ops whose ONNX form (opset 17) has no bfloat16 type: Conv-11, MaxPool-12, AveragePool-11. */
export const NO_BF16: ReadonlySet<string> = new Set(["Conv", "MaxPool", "AveragePool"]);

/** Why `op` stays fp32 in `precision` work, or undefined when it converts. */
function keptReason(op: string, precision: Precision): string | undefined {
  if (KEEP_FP32.has(op)) return `${op} stays fp32 for accuracy`;
  if (precision === "bf16" && NO_BF16.has(op)) return `${op} has no bfloat16 form in ONNX opset 17`;
  return undefined;
}

/** Ops never retyped: conversions, and nodes whose dtype is an attribute or fixed by a stored value. */
const FIXED = new Set(["Cast", "Constant", "Range", PRECOMPUTED, STORED_CAST]);

/** The rules of this pass, by name (stamped on the nodes they create, counted in the report). */
export const PRECISION_RULES = {
  convertNode: "convert-node",
  storeConverted: "store-converted",
  convertConstant: "convert-constant",
  castBoundary: "cast-boundary",
  carryReduced: "carry-reduced",
} as const;

/** A node whose f32 results may be computed in `precision`. */
function convertible(n: Node, precision: Precision): boolean {
  if (precision === "fp32" || FIXED.has(n.op) || keptReason(n.op, precision) !== undefined) return false;
  const floats = n.outputs.filter((o) => o.type.dtype === "f32" || o.type.dtype === "f16" || o.type.dtype === "bf16");
  return floats.length > 0 && floats.every((o) => o.type.dtype === "f32");
}

/** Inputs that follow the node's precision: f32 ones, except the weight a quant.Linear quantizes itself. */
const followsPrecision = (n: Node, i: number, x: Value): boolean =>
  x.type.dtype === "f32" && !(n.op === QUANT_LINEAR && i === 1);

/**
 * convert-precision. Rules, each stamped on what it creates:
 *  1. convert-node:      op(x…) : f32 → op(x'…) : fp16|bf16 where the node's component runs in
 *                        reduced precision (not the KEEP_FP32 ops, nor for bf16 the NO_BF16 ones;
 *                        a quant.Linear's weight stays the f32 its lowering quantizes)
 *  2. store-converted:   a parameter or precomputed operand w → precision.Cast{to}(w), stored converted
 *                        (a parameter the compiled stage trains gets a run-time Cast instead)
 *  3. convert-constant:  a scalar Constant{dtype f32} operand → Constant{dtype fp16|bf16}
 *  4. cast-boundary:     Cast where reduced and fp32 work meet: into converted nodes from f32
 *                        values, back to f32 before KEEP_FP32 ops, fp32 components and graph outputs
 *  5. carry-reduced:     a carried input (Graph.carried: a decoder's key/value cache) all of whose
 *                        readers convert takes their type instead of a cast, and a carried output
 *                        keeps the reduced type it is computed in, so the cache is stored reduced
 *                        and past and present can share one buffer
 * Targets: ort-cuda and portable (standard ONNX for GPU runtimes). On ort-cpu reduced precision is
 * an error (VLM2013): ONNX Runtime's CPU provider has no fp16 GEMM kernels and would cast every
 * MatMul back to fp32 (and has no bf16 kernels for most ops). Near misses name the fp32-kept ops.
 */
export const convertPrecision: Pass = {
  name: "convert-precision",
  description: "compute in fp16/bf16 where --precision or the policy asks (GPU targets), with casts at fp32 boundaries",
  run: (module, ctx) => {
    const precisionOf = precisionResolver(module, ctx);
    const wanted = new Set<string>();
    for (const g of module.graphs)
      for (const n of g.nodes) if (convertible(n, precisionOf(n))) wanted.add(precisionOf(n));
    if (wanted.size === 0) {
      warnUnchanged(`--precision ${ctx.options.precision}`, ctx, []);
      return { changed: false };
    }
    if (!ctx.options.target.reducedPrecision) {
      ctx.accept(
        diagnostic(
          "VLM2013",
          `${[...wanted].sort().join(" and ")} precision is for GPU targets; ONNX Runtime's CPU provider has no ${[...wanted].sort().join("/")} MatMul kernels`,
          ctx.options.modelSpan,
          {
            hint: "compile with --target ort-cuda (or portable for another GPU runtime), or pass --precision fp32",
          },
        ),
      );
      return { changed: false };
    }
    // Parameters a training stage updates keep their fp32 storage (the optimizer's master copy).
    const trained = new Set(module.stages.find((s) => s.name === ctx.options.stage)?.trains ?? []);
    let changed = false;
    for (const g of module.graphs)
      changed = convertGraph(g, precisionOf, (p) => trained.has(p.component), ctx) || changed;
    return { changed };
  },
};

function precisionResolver(module: IrModule, ctx: PassContext): (n: Node) => Precision {
  const byComponent = new Map<string, Precision>();
  return (n) => {
    const component = scopeComponent(n.scope);
    let p = byComponent.get(component);
    if (p === undefined) {
      p = resolvePrecision(module.policies, componentOwner(module, component), ctx.options.precision).value;
      byComponent.set(component, p);
    }
    return p;
  };
}

function convertGraph(
  g: Graph,
  precisionOf: (n: Node) => Precision,
  trained: (p: Param) => boolean,
  ctx: PassContext,
): boolean {
  /** Values this run retyped from f32: their consumers in fp32 read them through a cast back. */
  const retyped = new Set<Value>();
  const casts = new Map<Value, Map<DType, Value>>();
  let changed = false;

  for (const x of g.inputs) {
    if (x.source.kind !== "input" || !g.carried.has(x.source.name) || x.type.dtype !== "f32") continue;
    const readers = new Set(x.uses.map((u) => precisionOf(u.node)));
    const [p] = readers;
    if (readers.size !== 1 || p === undefined || p === "fp32" || !x.uses.every((u) => convertible(u.node, p))) continue;
    x.type = tensorType(DTYPE_OF[p], x.type.shape);
    ctx.fired(PRECISION_RULES.carryReduced);
    changed = true;
  }

  /** `x` as `to`, made once per value and type, before `at` (the first node that needs it). */
  const as = (x: Value, to: DType, at: Node | undefined): Value => {
    let byType = casts.get(x);
    if (!byType) casts.set(x, (byType = new Map()));
    const had = byType.get(to);
    if (had) return had;
    const like = x.producer ?? at;
    const scope = like?.scope ?? "";
    const span = (like ?? at)!.span;
    const add = (
      op: string,
      inputs: (Value | undefined)[],
      attrs: Record<string, string | number>,
      rule: string,
    ): Value => {
      const type = tensorType(to, x.type.shape);
      const node = at
        ? g.insertBefore(at, op, inputs, [type], attrs, scope, span)
        : g.addNode(op, inputs, [type], attrs, scope, span);
      node.rules.push(...new Set([...(x.producer?.rules ?? []), rule]));
      ctx.fired(rule);
      return node.outputs[0]!;
    };
    const producer = x.producer;
    let made: Value;
    if ((x.source.kind === "param" && !trained(x.source.param)) || producer?.op === PRECOMPUTED) {
      made = add(STORED_CAST, [x], { to }, PRECISION_RULES.storeConverted);
    } else if (
      producer?.op === "Constant" &&
      x.type.shape.length === 0 &&
      typeof producer.attrs["value"] === "number"
    ) {
      made = add(
        "Constant",
        [],
        { value: producer.attrs["value"] as number, dtype: to },
        PRECISION_RULES.convertConstant,
      );
    } else {
      made = add("Cast", [x], { to }, PRECISION_RULES.castBoundary);
      ctx.stat("casts-inserted");
    }
    byType.set(to, made);
    changed = true;
    return made;
  };

  for (const n of [...g.nodes]) {
    const p = precisionOf(n);
    if (p !== "fp32" && convertible(n, p)) {
      const to = DTYPE_OF[p];
      const inputs = n.inputs.map((x, i) => (x && followsPrecision(n, i, x) ? as(x, to, n) : x));
      const types = n.outputs.map((o) => (o.type.dtype === "f32" ? tensorType(to, o.type.shape) : o.type));
      const c = g.insertBefore(n, n.op, inputs, types, { ...n.attrs }, n.scope, n.span);
      c.rules.push(...new Set([...n.rules, PRECISION_RULES.convertNode]));
      n.outputs.forEach((o, i) => {
        g.replaceAllUses(o, c.outputs[i]!);
        if (o.type.dtype === "f32") retyped.add(c.outputs[i]!);
      });
      g.removeNode(n);
      ctx.fired(PRECISION_RULES.convertNode);
      ctx.stat(`nodes-${p}`);
      changed = true;
      continue;
    }
    const kept = keptReason(n.op, p);
    if (p !== "fp32" && kept !== undefined) ctx.nearMiss({ rule: PRECISION_RULES.convertNode, node: n, reason: kept });
    // fp32 work (by policy, or kept) reads retyped values through a cast back.
    n.inputs.forEach((x, i) => {
      if (x && retyped.has(x)) g.setInput(n, i, as(x, "f32", n));
    });
  }
  for (const o of g.outputs)
    if (retyped.has(o.value) && !g.carried.has(o.name)) o.value = as(o.value, "f32", undefined);
  // Scalar constants all of whose readers took a converted copy are left over.
  const outputs = new Set(g.outputs.map((o) => o.value));
  for (const x of casts.keys()) {
    const c = x.producer;
    if (c?.op === "Constant" && x.uses.length === 0 && !outputs.has(x)) g.removeNode(c);
  }
  return changed;
}

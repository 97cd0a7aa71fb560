// quantize-weights: marks the matrix products whose weights ship quantized, as the model's policy
// and the command line decide (see policy.ts). The IR keeps the float weight as the node's input;
// codegen quantizes the real values (checkpoint or seeded) when it writes the model, so the
// quantized tensors always match the weights they come from.

import { diagnostic } from "../../diagnostics/diagnostic.js";
import type { Graph, IrModule, Node, Param, Value } from "../../ir/graph.js";
import type { Target } from "../../target/target.js";
import { eachGraph, type NearMiss, type Pass, type PassContext, type QuantizeMode } from "../pass.js";
import { PRECOMPUTED, QUANT_LINEAR } from "../../ir/ops.js";
import { precomputedSource } from "../../ir/analysis.js";
import { applyRules, op, v, type Match, type RewriteRule } from "../rewrite.js";
import { resolveQuantize, type Owner } from "./policy.js";
import { warnUnchanged } from "./unchanged.js";
import { quantizedBytes, type WeightLayout } from "../../numerics/quant-math.js";

/** MatMulNBits block along K: 32 is ONNX Runtime's most accurate common choice for 4 bits. */
export const INT4_BLOCK_SIZE = 32;

/** The block sizes `--int4-block` takes: powers of two that ONNX Runtime's CPU kernels have code paths for. */
export const INT4_BLOCK_SIZES: readonly number[] = [16, 32, 64, 128, 256];

const CANDIDATES = ["Linear", "MatMul"];

/** The attributes of a quant.Linear for `mode` on `target`; undefined when the target cannot express the mode. */
export function quantAttrs(
  mode: "int8" | "int4",
  target: Target,
  layout: WeightLayout,
  int4Block = INT4_BLOCK_SIZE,
): Record<string, string | number | boolean> | undefined {
  const choice = target.quantKernel(mode);
  if (!choice) return undefined;
  const int4 = mode === "int4";
  return {
    mode,
    kernel: choice.kernel,
    block_size: int4 ? int4Block : 0,
    accuracy_level: choice.accuracyLevel,
    per_channel: !int4,
    weight_layout: layout,
  };
}

/** The stored tensor behind a weight operand: a parameter or a value computed at build time. */
function storedWeight(w: Value): boolean {
  return w.type.shape.length === 2 && (w.source.kind === "param" || w.producer?.op === PRECOMPUTED);
}

/** The parameters a weight is made of: itself, or those its precomputed value reads. */
function weightParams(g: Graph, w: Value): Param[] {
  if (w.source.kind === "param") return [w.source.param];
  const found = new Set<Param>();
  const stack = [precomputedSource(g, w.producer!)];
  const seen = new Set<Value>();
  for (let x = stack.pop(); x !== undefined; x = stack.pop()) {
    if (seen.has(x)) continue;
    seen.add(x);
    if (x.source.kind === "param") found.add(x.source.param);
    for (const i of x.producer?.inputs ?? []) if (i) stack.push(i);
  }
  return [...found];
}

/** The weight's layout in a candidate node: Linear holds PyTorch's [out, in], MatMul [in, out]. */
const layoutOf = (n: Node): WeightLayout => (n.op === "Linear" ? "out_in" : "in_out");

const isCandidateUse = (u: { node: Node; index: number }): boolean => CANDIDATES.includes(u.node.op) && u.index === 1;

interface Decision {
  readonly mode: QuantizeMode;
  readonly why: string;
}

/**
 * quantize-weights. Rules, each stamped on what it creates:
 *  1. quantize-linear: Linear(x, W, b?) → quant.Linear{mode, kernel, block_size, accuracy_level,
 *     per_channel, weight_layout = out_in}(x, W, b?)
 *  2. quantize-matmul: MatMul(x, W) → quant.Linear{…, weight_layout = in_out}(x, W, _)
 * W is a 2-D parameter, or a 2-D value precomputed from parameters (the transpose of a packed
 * projection such as torch_mha's in_proj_weight); x·W itself stays run-time work.
 * Both fire only where the policy (policy.ts) asks for int8 or int4. Kernel by target: int8 is
 * DynamicQuantizeMatMul on ort-cpu and weight-only QDQ elsewhere; int4 is MatMulNBits (block 32;
 * accuracy_level 4 on ort-cpu) and an error (VLM2013) on portable, whose opset 17 has no 4-bit
 * type: int8, or an ONNX Runtime target, says what the user wants better than a silent fallback.
 * Near misses: a weight also read by other ops (a tied embedding keeps one full-precision table),
 * one a training stage updates, one made of several components' parameters, non-f32 operands,
 * and weights the policy keeps in full precision (with the rule that decided).
 */
export const quantizeWeights: Pass = {
  name: "quantize-weights",
  description:
    "quantize Linear/MatMul weights to int8 or int4 as the policy and --quantize ask (codegen quantizes the real values)",
  run: (module, ctx) => {
    if (ctx.options.quantize === undefined && !module.policies.some((r) => r.quantize !== undefined))
      return { changed: false };
    const int4Refused = new Set<string>();
    const rules = quantizeRules(module, ctx, (owner) => int4Refused.add(owner));
    const reasons: string[] = [];
    const nearMiss = (m: NearMiss) => {
      reasons.push(m.reason);
      ctx.nearMiss(m);
    };
    const counted = { ...ctx, nearMiss };
    const result = eachGraph(module, (g) => applyRules(g, rules, counted));
    if (!result.changed && int4Refused.size === 0) warnUnchanged(`--quantize ${ctx.options.quantize}`, ctx, reasons);
    if (int4Refused.size > 0) {
      ctx.accept(
        diagnostic(
          "VLM2013",
          `int4 quantization (asked for ${[...int4Refused].sort().join(", ")}) needs MatMulNBits, which the portable target (ONNX opset 17) does not have`,
          ctx.options.modelSpan,
          {
            hint: "compile with --target ort-cpu or ort-cuda, or quantize to int8 (--quantize int8)",
          },
        ),
      );
    }
    return result;
  },
};

function quantizeRules(module: IrModule, ctx: PassContext, refuseInt4: (owner: string) => void): RewriteRule[] {
  const trained = new Set(module.stages.find((s) => s.name === ctx.options.stage)?.trains ?? []);

  const decide = (m: Match): Decision | string => {
    const g = m.graph;
    const x = m.root.inputs[0]!;
    const w = m.root.inputs[1]!;
    if (x.type.dtype !== "f32") return `its input is ${x.type.dtype}; the quantized kernels take f32`;
    if (x.type.shape.length < 2) return "its input is a vector; the quantized kernels take a matrix or a batch of them";
    if (w.type.dtype !== "f32") return `its weight is ${w.type.dtype}, not f32`;
    if (g.isOutput(w)) return "its weight is also a graph output";
    const other = w.uses.find((u) => !isCandidateUse(u));
    if (other) return `its weight is also read by ${other.node.op} (a shared table stays in full precision)`;
    const layouts = new Set(w.uses.map((u) => layoutOf(u.node)));
    if (layouts.size > 1) return "its weight is read both as a Linear weight and as a MatMul operand";
    const params = weightParams(g, w);
    const components = [...new Set(params.map((p) => p.component))];
    if (params.length === 0) return "its precomputed weight reads no parameter";
    if (components.length > 1) return `its weight is computed from parameters of ${components.join(" and ")}`;
    const trainedParam = params.find((p) => trained.has(p.component));
    if (trainedParam) return `stage ${ctx.options.stage} trains ${trainedParam.component}`;
    const p = params[0]!;
    const owner: Owner = { component: p.component, role: p.role, frozen: params.every((q) => q.frozen) };
    const nothingFrozen = !module.components.some((c) => c.frozen);
    const resolved = resolveQuantize(module.policies, owner, ctx.options.quantize, nothingFrozen);
    return { mode: resolved.value, why: resolved.why };
  };

  /** The attributes of the quant.Linear `m` becomes, or why it stays as it is. */
  const plan = (m: Match): { attrs: Record<string, string | number | boolean> } | { refusal: string } => {
    const d = decide(m);
    if (typeof d === "string") return { refusal: d };
    if (d.mode === "none") return { refusal: `kept in full precision: ${d.why}` };
    const attrs = quantAttrs(d.mode, ctx.options.target, layoutOf(m.root), ctx.options.int4Block);
    if (attrs) return { attrs };
    refuseInt4(weightParams(m.graph, m.root.inputs[1]!)[0]?.component || "model-level parameters");
    return { refusal: `${d.mode} (${d.why}) is not expressible on the ${ctx.options.target.name} target` };
  };

  const rule = (name: string, root: string): RewriteRule => ({
    name,
    pattern: op(root, v("x"), v("w")).where((n) => storedWeight(n.inputs[1]!)),
    check: (m) => {
      const p = plan(m);
      return "refusal" in p ? p.refusal : undefined;
    },
    rewrite: (m, b) => {
      const { attrs } = plan(m) as { attrs: Record<string, string | number | boolean> };
      const w = m.root.inputs[1]!;
      const [K, N] = (layoutOf(m.root) === "out_in" ? [w.type.shape[1], w.type.shape[0]] : w.type.shape) as [
        number,
        number,
      ];
      const mode = attrs["mode"] as "int8" | "int4";
      ctx.stat(`weights-${mode}`);
      ctx.stat("weight-bytes-fp32", 4 * K * N);
      ctx.stat("weight-bytes-quantized", quantizedBytes(mode, K, N, attrs["block_size"] as number));
      return b.add(QUANT_LINEAR, [m.root.inputs[0], w, m.root.inputs[2]], m.root.outputs[0]!.type, attrs);
    },
  });

  return [rule("quantize-linear", "Linear"), rule("quantize-matmul", "MatMul")];
}

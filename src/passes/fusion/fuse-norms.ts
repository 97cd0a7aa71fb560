// fuse-norms: residual adds folded into the norm that reads them, and RMSNorm as ONNX Runtime's own
// op. The sum a pre-norm stream carries on to its next residual add comes out of the fused node
// (output 3 of SkipLayerNormalization): ONNX Runtime's load-time fusion refuses a sum with more
// than one reader, which is every layer of a pre-norm ViT, CLIP or LLaMA.

import { shapesEqual, typeToString } from "../../ir/types.js";
import type { Node, Value } from "../../ir/graph.js";
import { ORT_PREFIX } from "../../ir/ops.js";
import { readers } from "../../ir/analysis.js";
import type { Target } from "../../target/target.js";
import { op, v, type Match, type RewriteRule } from "../rewrite.js";
import {
  biasedLinear,
  definedBefore,
  dtypeOf,
  insertNode,
  ortFusionPass,
  redirectUses,
  trimmed,
  withoutBias,
} from "./ort-fusion.js";

/** A norm IR op and its ONNX Runtime form with a residual add in front. */
interface SkipNorm {
  readonly rule: string;
  readonly norm: "LayerNorm" | "RMSNorm";
  readonly fused: "SkipLayerNormalization" | "SkipSimplifiedLayerNormalization";
  /** The fused op's inputs after (input, skip): the norm's own operands, then the bias. */
  readonly operands: (norm: Node, bias: Value | undefined) => (Value | undefined)[];
}

const SKIP_NORMS: readonly SkipNorm[] = [
  {
    rule: "skip-layer-norm",
    norm: "LayerNorm",
    fused: "SkipLayerNormalization",
    operands: (n, bias) => [n.inputs[1], n.inputs[2], bias],
  },
  {
    rule: "skip-simplified-layer-norm",
    norm: "RMSNorm",
    fused: "SkipSimplifiedLayerNormalization",
    operands: (n, bias) => [n.inputs[1], bias],
  },
];

interface Operands {
  readonly input: Value;
  readonly skip: Value;
  /** The Linear making `input` whose bias moves into the fused op. */
  readonly linear: Node | undefined;
}

/**
 * The residual add's operands as the fused op's input, of the sum's own shape, and skip, which may
 * also lack the batch axis ([1, S, H] or [S, H]); the input is the one whose Linear can give its
 * bias when either order fits. A string says why no order fits.
 */
function operands(m: Match): Operands | string {
  const out = m.root.outputs[0]!.type;
  const [a, b] = [m.value("a"), m.value("b")];
  const full = (x: Value) => shapesEqual(x.type.shape, out.shape);
  const rows = out.shape.slice(1);
  const skippable = (x: Value) =>
    full(x) || (out.shape.length === 3 && (shapesEqual(x.type.shape, rows) || shapesEqual(x.type.shape, [1, ...rows])));
  const orders = (
    [
      [a, b],
      [b, a],
    ] as const
  ).filter(
    ([input, skip]) =>
      input.type.dtype === out.dtype && skip.type.dtype === out.dtype && full(input) && skippable(skip),
  );
  if (orders.length === 0)
    return `the residual add of ${typeToString(a.type)} and ${typeToString(b.type)} broadcasts more than a skip may (only its batch axis)`;
  const [input, skip] = orders.find(([x]) => biasedLinear(m.graph, x)) ?? orders[0]!;
  return { input, skip, linear: biasedLinear(m.graph, input) };
}

function skipNormRule(s: SkipNorm, target: Target): RewriteRule {
  return {
    name: s.rule,
    pattern: op(s.norm, op("Add", v("a"), v("b")).as("add")),
    check: (m) => {
      const out = m.root.outputs[0]!.type;
      const refusal = target.missingKernel(s.fused, out.dtype) ?? target.slowerThanUnfused(s.fused);
      if (refusal) return refusal;
      if (out.shape.length < 2 || out.shape.length > 3) return `${s.fused} takes rank 2 or 3, not ${out.shape.length}`;
      const ops = operands(m);
      if (typeof ops === "string") return ops;
      const add = m.node("add");
      if (m.root.inputs.slice(1).some((w) => w && !definedBefore(m.graph, w, add)))
        return "the norm's scale or shift is computed after the residual sum";
      return undefined;
    },
    rewrite: (m) => {
      const g = m.graph;
      const add = m.node("add");
      const sum = add.outputs[0]!;
      const { input, skip, linear } = operands(m) as Operands;
      // The sum leaves the fused node only when something besides this norm reads it.
      const types = readers(g, sum) > 1 ? [m.root.outputs[0]!.type, sum.type] : [m.root.outputs[0]!.type];
      const inputs = trimmed([
        linear ? withoutBias(g, linear, s.rule) : input,
        skip,
        ...s.operands(m.root, linear?.inputs[2]),
      ]);
      const fused = insertNode(g, add, m.root, s.rule, ORT_PREFIX + s.fused, inputs, types, {
        epsilon: m.root.attrs["eps"] as number,
      });
      if (types.length > 1) redirectUses(g, sum, fused.outputs[1]!, m.root);
      return fused.outputs[0]!;
    },
  };
}

/**
 * fuse-norms (ONNX Runtime targets only). Rules, each stamped on what it creates:
 *  1. skip-layer-norm:            LayerNorm(Add(a, b), γ, β) → SkipLayerNormalization(a, b, γ, β)
 *  2. skip-simplified-layer-norm: RMSNorm(Add(a, b), γ) → SkipSimplifiedLayerNormalization(a, b, γ)
 *  3. simplified-layer-norm:      RMSNorm(x, γ) → SimplifiedLayerNormalization(x, γ)
 * In 1 and 2 the sum is the fused node's output 3 when anything else reads it (the next residual),
 * and the bias of a Linear making a or b (read by the add alone) moves into the fused node's bias
 * input, leaving Linear(x, W). Both need rank 2 or 3 and one operand of the sum's own shape; the
 * other (the skip) may lack the batch axis, as learned positions do. Every
 * rule needs a kernel for the dtype on the target (target/target-ops.ts), and one the target
 * does not run slower than the unfused ops: on ort-cpu, SkipLayerNormalization took twice as long
 * as Add + LayerNormalization, so rule 1 fires on ort-cuda only.
 */
export const fuseNorms = ortFusionPass(
  "fuse-norms",
  "fold residual adds into the norms after them and lower RMSNorm to ONNX Runtime's ops",
  (target) => [
    ...SKIP_NORMS.map((s) => skipNormRule(s, target)),
    {
      name: "simplified-layer-norm",
      pattern: op("RMSNorm", v("x"), v("gamma")),
      check: (m) => target.missingKernel("SimplifiedLayerNormalization", dtypeOf(m.root)),
      rewrite: (m, b) =>
        b.add(`${ORT_PREFIX}SimplifiedLayerNormalization`, [m.value("x"), m.value("gamma")], m.root.outputs[0]!.type, {
          epsilon: m.root.attrs["eps"] as number,
        }),
    },
  ],
);

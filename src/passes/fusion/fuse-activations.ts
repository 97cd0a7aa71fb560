// fuse-activations: GELU variants as ONNX Runtime's single-kernel ops, taking the bias of the
// Linear in front when nothing else reads its result. Opset 17 has no Gelu, so the portable
// lowering spells each one out in five to nine elementwise nodes.

import type { AttrValue } from "../../ir/graph.js";
import { ORT_PREFIX } from "../../ir/ops.js";
import { readers } from "../../ir/analysis.js";
import type { Target } from "../../target/target.js";
import { op, v, type RewriteRule } from "../rewrite.js";
import { biasedLinear, dtypeOf, ortFusionPass, withoutBias } from "./ort-fusion.js";

/** CLIP's x·sigmoid(1.702·x), the IR's QuickGelu. */
const QUICK_GELU_ALPHA = 1.702;

/** `irOp(Linear(x, W, bias))` → `fused(Linear(x, W), bias)`. */
function biasRule(name: string, irOp: string, fused: string, target: Target): RewriteRule {
  return {
    name,
    pattern: op(irOp, op("Linear", v(), v(), v()).as("linear")),
    check: (m) => {
      const refusal = target.missingKernel(fused, dtypeOf(m.root));
      if (refusal) return refusal;
      const y = m.node("linear").outputs[0]!;
      return biasedLinear(m.graph, y)
        ? undefined
        : `the Linear's result has ${readers(m.graph, y)} readers, so its bias stays`;
    },
    rewrite: (m, b) =>
      b.add(
        ORT_PREFIX + fused,
        [withoutBias(m.graph, m.node("linear"), name), m.node("linear").inputs[2]],
        m.root.outputs[0]!.type,
      ),
  };
}

/** `irOp(x)` → `fused(x)`. */
function plainRule(
  name: string,
  irOp: string,
  fused: string,
  target: Target,
  attrs: Record<string, AttrValue> = {},
): RewriteRule {
  return {
    name,
    pattern: op(irOp, v("x")),
    check: (m) => target.missingKernel(fused, dtypeOf(m.root)),
    rewrite: (m, b) => b.add(ORT_PREFIX + fused, [m.value("x")], m.root.outputs[0]!.type, attrs),
  };
}

/**
 * fuse-activations (ONNX Runtime targets only). Rules, each stamped on what it creates:
 *  1. bias-gelu:       Gelu(Linear(x, W, b)) → BiasGelu(Linear(x, W), b)      (the Linear's result read only here)
 *  2. fast-gelu-bias:  GeluTanh(Linear(x, W, b)) → FastGelu(Linear(x, W), b)  (likewise)
 *  3. gelu:            Gelu(x) → com.microsoft Gelu(x)
 *  4. fast-gelu:       GeluTanh(x) → FastGelu(x)
 *  5. quick-gelu:      QuickGelu(x) → QuickGelu{alpha = 1.702}(x)
 * The Linear stays a Linear (quantization still sees it). Every rule needs a kernel for the dtype
 * on the target (target/target-ops.ts): on the CPU these ops are f32 only.
 */
export const fuseActivations = ortFusionPass(
  "fuse-activations",
  "lower GELU variants to ONNX Runtime's fused ops, taking the bias of the Linear before them",
  (target) => [
    biasRule("bias-gelu", "Gelu", "BiasGelu", target),
    biasRule("fast-gelu-bias", "GeluTanh", "FastGelu", target),
    plainRule("gelu", "Gelu", "Gelu", target),
    plainRule("fast-gelu", "GeluTanh", "FastGelu", target),
    plainRule("quick-gelu", "QuickGelu", "QuickGelu", target, { alpha: QUICK_GELU_ALPHA }),
  ],
);

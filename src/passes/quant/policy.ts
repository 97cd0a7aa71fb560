// Which quantization mode and which float precision apply to a part of a model: the model's
// `policy <selector> { quantize: …, precision: … }` rules, the command-line overrides, and the
// defaults, resolved the same way for both passes of this folder.
//
// A rule's selector is a component name, a role (encoder, fusion, head), `frozen` or `trainable`.
// For each key separately, the most specific rule that sets it governs: component name, then
// role, then frozen/trainable; among equally specific rules the later one wins.
//
// Quantization of one weight, the first that applies:
//  1. `--quantize none`: full precision.
//  2. The governing `quantize` rule, if any: its mode, except that `--quantize MODE` replaces a
//     mode other than `none` (the flag picks int8 or int4; the policy still picks what is
//     quantized, and an explicit `quantize: none` keeps a component in full precision). A
//     component with role `head` counts only rules that name it or the role `head`: a `frozen`
//     rule does not quantize a frozen head.
//  3. `--quantize MODE` without a governing rule: MODE for frozen components that are not heads;
//     trainable components, heads and model-level parameters stay in full precision. A model
//     with no frozen component at all is deployed whole, so there MODE applies to every
//     component that is not a head (ViT, BERT: the flag quantizes the encoder).
//  4. Nothing quantized.
// Embedding tables are never candidates (the quantize pass rewrites only Linear and MatMul).
//
// Precision of one computation (attributed to the component its scope starts with):
//  1. `--precision P`: P everywhere.
//  2. The governing `precision` rule of its component.
//  3. fp32.

import type { ComponentInfo, IrModule, PolicyRule, Role } from "../../ir/graph.js";
import type { Precision, QuantizeMode } from "../pass.js";

/** What a policy selector can match: a component, or the model level (component ""). */
export interface Owner {
  readonly component: string;
  readonly role: Role | undefined;
  readonly frozen: boolean;
}

export interface Resolved<T> {
  readonly value: T;
  /** Why, for near misses and reports: `policy vision`, `--quantize int8`, `default: vision is trainable`. */
  readonly why: string;
}

type Key = "quantize" | "precision";

/** The rule that sets `key` for `owner`, by specificity; heads see only rules that name them. */
export function governingRule(rules: readonly PolicyRule[], owner: Owner, key: Key): PolicyRule | undefined {
  const levels: ((r: PolicyRule) => boolean)[] = [
    (r) => owner.component !== "" && r.selector === owner.component,
    (r) => owner.role !== undefined && r.selector === owner.role,
  ];
  if (!(key === "quantize" && owner.role === "head"))
    levels.push((r) => r.selector === (owner.frozen ? "frozen" : "trainable"));
  for (const level of levels) {
    const found = rules.filter((r) => r[key] !== undefined && level(r));
    if (found.length > 0) return found[found.length - 1];
  }
  return undefined;
}

/** The quantization mode of a weight owned by `owner` (see rules 1–4 at the top of this file). */
export function resolveQuantize(
  rules: readonly PolicyRule[],
  owner: Owner,
  flag: QuantizeMode | undefined,
  nothingFrozen = false,
): Resolved<QuantizeMode> {
  if (flag === "none") return { value: "none", why: "--quantize none" };
  const rule = governingRule(rules, owner, "quantize");
  if (rule) {
    const mode = rule.quantize!;
    if (flag !== undefined && mode !== "none")
      return { value: flag, why: `policy ${rule.selector}, mode from --quantize ${flag}` };
    return { value: mode, why: `policy ${rule.selector} { quantize: ${mode} }` };
  }
  if (flag === undefined) return { value: "none", why: "no policy rule sets its quantization, and no --quantize" };
  const who = owner.component === "" ? "a model-level parameter" : `component ${owner.component}`;
  if (owner.role === "head")
    return { value: "none", why: `${who} is a head (heads stay in full precision unless a policy names them)` };
  if (owner.component !== "" && nothingFrozen)
    return { value: flag, why: `--quantize ${flag}: no component is frozen, so every one that is not a head` };
  if (!owner.frozen || owner.component === "")
    return {
      value: "none",
      why: `${who} is ${owner.component === "" ? "not in a component" : "trainable"} (--quantize quantizes frozen components unless a policy says otherwise)`,
    };
  return { value: flag, why: `--quantize ${flag}: ${who} is frozen` };
}

/** The float precision of work owned by `owner` (see rules 1–3 at the top of this file). */
export function resolvePrecision(
  rules: readonly PolicyRule[],
  owner: Owner,
  flag: Precision | undefined,
): Resolved<Precision> {
  if (flag !== undefined) return { value: flag, why: `--precision ${flag}` };
  const rule = governingRule(rules, owner, "precision");
  if (rule) return { value: rule.precision!, why: `policy ${rule.selector} { precision: ${rule.precision} }` };
  return { value: "fp32", why: "default" };
}

/** The owner of a component by name; "" or an unknown name is the model level. */
export function componentOwner(module: IrModule, name: string): Owner {
  const c: ComponentInfo | undefined = module.components.find((x) => x.name === name);
  return c ? { component: c.name, role: c.role, frozen: c.frozen } : { component: "", role: undefined, frozen: false };
}

/** The component a node belongs to: the first segment of its scope (`/vision/encoder/…` → vision). */
export function scopeComponent(scope: string): string {
  return scope.split("/").find((s) => s !== "") ?? "";
}

// Policy resolution: specificity (component > role > frozen/trainable, later rule wins among
// equals), the command-line overrides, the default scope of --quantize, and heads.

import { describe, expect, it } from "vitest";
import type { PolicyRule } from "../../ir/graph.js";
import { governingRule, resolvePrecision, resolveQuantize, scopeComponent, type Owner } from "./policy.js";

const vision: Owner = { component: "vision", role: "encoder", frozen: true };
const proj: Owner = { component: "proj", role: "fusion", frozen: false };
const head: Owner = { component: "cls", role: "head", frozen: true };
const model: Owner = { component: "", role: undefined, frozen: false };

const mode = (rules: PolicyRule[], o: Owner, flag?: "none" | "int8" | "int4") => resolveQuantize(rules, o, flag).value;

describe("quantize policy", () => {
  it("quantizes nothing without a policy or flag", () => {
    for (const o of [vision, proj, head, model]) expect(mode([], o)).toBe("none");
  });

  it("--quantize alone quantizes frozen components that are not heads", () => {
    expect([vision, proj, head, model].map((o) => mode([], o, "int8"))).toEqual(["int8", "none", "none", "none"]);
    expect(resolveQuantize([], head, "int4").why).toMatch(/head/);
  });

  it("takes the most specific rule: component, then role, then frozen/trainable", () => {
    const rules: PolicyRule[] = [
      { selector: "frozen", quantize: "int4" },
      { selector: "encoder", quantize: "int8" },
      { selector: "vision", quantize: "none" },
      { selector: "trainable", quantize: "int8" },
    ];
    expect(mode(rules, vision)).toBe("none");
    expect(mode(rules, { ...vision, component: "text" })).toBe("int8");
    expect(mode(rules, { component: "x", role: undefined, frozen: true })).toBe("int4");
    expect(mode(rules, proj)).toBe("int8");
    expect(governingRule(rules, vision, "quantize")?.selector).toBe("vision");
  });

  it("lets a later rule of the same specificity win, and skips rules without the key", () => {
    const rules: PolicyRule[] = [
      { selector: "frozen", quantize: "int8" },
      { selector: "frozen", quantize: "int4" },
      { selector: "vision", precision: "fp16" },
    ];
    expect(mode(rules, vision)).toBe("int4");
  });

  it("quantizes a head only when a rule names it or the role head", () => {
    expect(mode([{ selector: "frozen", quantize: "int8" }], head)).toBe("none");
    expect(mode([{ selector: "head", quantize: "int8" }], head)).toBe("int8");
    expect(mode([{ selector: "cls", quantize: "int4" }], head)).toBe("int4");
  });

  it("lets --quantize pick the mode and keeps an explicit none; --quantize none wins over everything", () => {
    const rules: PolicyRule[] = [
      { selector: "frozen", quantize: "int8" },
      { selector: "vision", quantize: "none" },
      { selector: "proj", quantize: "int8" },
    ];
    expect(mode(rules, vision, "int4")).toBe("none");
    expect(mode(rules, proj, "int4")).toBe("int4");
    expect(mode(rules, { ...vision, component: "text" }, "int4")).toBe("int4");
    expect([vision, proj, head].map((o) => mode(rules, o, "none"))).toEqual(["none", "none", "none"]);
    expect(resolveQuantize(rules, proj, "int4").why).toBe("policy proj, mode from --quantize int4");
  });
});

describe("precision policy", () => {
  it("defaults to fp32, follows the most specific rule, and --precision overrides every rule", () => {
    const rules: PolicyRule[] = [
      { selector: "frozen", precision: "fp16" },
      { selector: "vision", precision: "bf16" },
    ];
    expect(resolvePrecision([], vision, undefined).value).toBe("fp32");
    expect(resolvePrecision(rules, vision, undefined).value).toBe("bf16");
    expect(resolvePrecision(rules, head, undefined).value).toBe("fp16");
    expect(resolvePrecision(rules, proj, undefined).value).toBe("fp32");
    expect(resolvePrecision(rules, vision, "fp32").value).toBe("fp32");
  });

  it("attributes a node to the component its scope starts with", () => {
    expect(scopeComponent("/vision/encoder/layers/0")).toBe("vision");
    expect(scopeComponent("/")).toBe("");
    expect(scopeComponent("")).toBe("");
  });
});

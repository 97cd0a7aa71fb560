// unused-values: warns about what a model declares but no graph output needs: inputs, parameters
// and whole components. "Used" means an output depends on it, so a component whose result is
// computed and then discarded counts as unused, whatever passes ran before.

import { diagnostic } from "../../diagnostics/diagnostic.js";
import type { Graph, IrModule, Param, Value } from "../../ir/graph.js";
import { paramCount } from "../../ir/analysis.js";
import type { Pass, PassContext } from "../pass.js";
import { coneOf, inputSymbols } from "../../ir/analysis.js";

/** The component a node's scope (`/vision/encoder/layers/3`) belongs to. */
const componentOfScope = (scope: string): string => scope.split("/").find((s) => s !== "") ?? "";

/**
 * Inputs no output depends on. An input no edge reaches still counts as used when it is the only
 * one whose shape carries a symbol the outputs need (the sequence length T of `ids`, say).
 */
function unusedInputs(g: Graph): Value[] {
  const cone = coneOf(
    g,
    g.outputs.map((o) => o.value),
  );
  const needed = new Set(cone.symbols);
  for (const input of cone.inputs) for (const s of inputSymbols(input)) needed.delete(s);
  return g.inputs.filter((input) => {
    if (cone.inputs.has(input)) return false;
    const provides = inputSymbols(input).filter((s) => needed.has(s));
    for (const s of provides) needed.delete(s);
    return provides.length === 0;
  });
}

/**
 * Groups unused parameters under the shortest dotted prefix below their component whose
 * parameters are all unused, so an unused final layer is one warning, not sixteen.
 */
function unusedGroups(params: readonly Param[], unused: ReadonlySet<Param>): Map<string, Param[]> {
  const prefixes = (p: Param): string[] => {
    const parts = p.name.split(".");
    const own = p.component === "" ? 0 : p.component.split(".").length;
    return parts.slice(own).map((_, i) => parts.slice(0, own + i + 1).join("."));
  };
  const total = new Map<string, number>();
  const idle = new Map<string, number>();
  for (const p of params) {
    for (const pre of prefixes(p)) {
      total.set(pre, (total.get(pre) ?? 0) + 1);
      if (unused.has(p)) idle.set(pre, (idle.get(pre) ?? 0) + 1);
    }
  }
  const groups = new Map<string, Param[]>();
  for (const p of unused) {
    const pre = prefixes(p).find((q) => idle.get(q) === total.get(q))!;
    groups.set(pre, [...(groups.get(pre) ?? []), p]);
  }
  return groups;
}

function checkModule(module: IrModule, ctx: PassContext): void {
  const usedParams = new Set<Param>();
  const activeComponents = new Set<string>();
  for (const g of module.graphs) {
    const cone = coneOf(
      g,
      g.outputs.map((o) => o.value),
    );
    for (const p of cone.params) usedParams.add(p);
    for (const n of cone.nodes) activeComponents.add(componentOfScope(n.scope));
    for (const input of unusedInputs(g)) {
      const name = input.source.kind === "input" ? input.source.name : "?";
      const span = (input.source.kind === "input" ? input.source.span : undefined) ?? ctx.options.modelSpan;
      ctx.accept(diagnostic("VLM3003", `input "${name}" of ${g.name} is not used by any output`, span));
    }
  }
  for (const p of usedParams) activeComponents.add(p.component);
  const idleComponents = new Set<string>();
  for (const c of module.components) {
    if (activeComponents.has(c.name)) continue;
    idleComponents.add(c.name);
    const graphs = module.graphs.map((g) => g.name).join(", ");
    ctx.accept(
      diagnostic("VLM3005", `component "${c.name}" is used by no graph (${graphs})`, c.span, {
        hint: "remove it, or use it in a forward or graph body",
      }),
    );
  }
  const optional = module.graphs.flatMap((g) => [...g.optional]);
  const chosen = (p: Param) => optional.some((prefix) => p.name.startsWith(`${prefix}.`));
  const unused = new Set(
    module.params.filter((p) => !usedParams.has(p) && !idleComponents.has(p.component) && !chosen(p)),
  );
  const components = new Map(module.components.map((c) => [c.name, c]));
  for (const [prefix, group] of unusedGroups(module.params, unused)) {
    const first = group[0]!;
    const owner = components.get(first.component);
    const what =
      group.length === 1
        ? `parameter ${first.name} is`
        : `the ${group.length} parameters under ${prefix} (${group.reduce((a, p) => a + paramCount(p), 0).toLocaleString("en-US")} values) are`;
    // The component's declaration is in the user's file; the parameter's may be in std.
    const related = owner ? [{ span: first.span, message: "declared here" }] : [];
    ctx.accept(diagnostic("VLM3004", `${what} used by no graph`, owner?.span ?? first.span, { related }));
    ctx.stat("unused-params", group.length);
  }
}

/**
 * unused-values. Checks, all warnings:
 *  1. VLM3003: a graph input no output depends on (at the input)
 *  2. VLM3005: a component none of whose parameters or nodes any graph output depends on
 *     (at the component)
 *  3. VLM3004: parameters no graph output depends on, one warning per maximal unused sub-module
 *     of a used component (at the component, related: the parameter's declaration), except those
 *     the spec leaves out by a compile-time choice (Graph.optional: the rest of an indexed stack,
 *     a module named only in an untaken `if` branch)
 */
export const unusedValues: Pass = {
  name: "unused-values",
  description: "warn about inputs, parameters and components no graph output needs",
  run(module, ctx) {
    checkModule(module, ctx);
    return { changed: false };
  },
};

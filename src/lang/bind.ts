// The one argument binder: matches a call's arguments to a parameter list (positional first, then
// `name: value`). The checker binds expressions and reports every fault; the elaborator binds values
// and stops at the first. Both get the same codes and the same words from here.

import { closestName, diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { Span } from "../diagnostics/source.js";
import type { ParamSig } from "./builtins.js";

export interface CallArg<V> {
  readonly name?: string | undefined;
  readonly nameSpan?: Span | undefined;
  readonly value: V;
  readonly span: Span;
}

export interface Binding<V> {
  /** Arguments by parameter name. */
  readonly bound: Map<string, V>;
  /** Where each bound argument was written (its name for a named one). */
  readonly spans: Map<string, Span>;
  /** Positional operands of a variadic callee (concat's tensors). */
  readonly rest: V[];
  /** Faults in source order; empty when the call binds. */
  readonly errors: Diagnostic[];
}

export interface Callee {
  /** How messages name the callee: `block "mlp"`, `"attention"`. */
  readonly what: string;
  readonly params: readonly ParamSig[];
  /** Positional arguments are collected as operands; parameters are named. */
  readonly variadic?: boolean;
}

export function bindArguments<V>(args: readonly CallArg<V>[], callee: Callee, callSpan: Span): Binding<V> {
  const { what, params } = callee;
  const bound = new Map<string, V>();
  const spans = new Map<string, Span>();
  const rest: V[] = [];
  const errors: Diagnostic[] = [];
  let positional = 0;
  let named = 0;
  for (const a of args) {
    if (a.name === undefined) {
      if (named > 0) {
        errors.push(diagnostic("VLM1001", "positional argument after a named argument", a.span));
        continue;
      }
      if (callee.variadic) rest.push(a.value);
      else {
        const p = params[positional];
        if (p) {
          bound.set(p.name, a.value);
          spans.set(p.name, a.span);
        } else
          errors.push(
            diagnostic(
              "VLM2009",
              `${what} takes at most ${params.length} positional argument${params.length === 1 ? "" : "s"}`,
              a.span,
            ),
          );
      }
      positional++;
      continue;
    }
    named++;
    const nameSpan = a.nameSpan ?? a.span;
    if (!params.some((p) => p.name === a.name)) {
      const hint = closestName(
        a.name,
        params.map((p) => p.name),
      );
      errors.push(
        diagnostic(
          "VLM2003",
          `${what} has no parameter "${a.name}"`,
          nameSpan,
          hint ? { hint: `did you mean "${hint}"?` } : {},
        ),
      );
      continue;
    }
    const prior = spans.get(a.name);
    if (prior) {
      errors.push(
        diagnostic("VLM2012", `argument "${a.name}" is given twice`, nameSpan, {
          related: [{ span: prior, message: "first given here" }],
        }),
      );
      continue;
    }
    bound.set(a.name, a.value);
    spans.set(a.name, nameSpan);
  }
  const missing = params.filter((p) => p.required && !bound.has(p.name)).map((p) => `"${p.name}"`);
  if (missing.length > 0)
    errors.push(
      diagnostic(
        "VLM2004",
        `${what} is missing argument${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`,
        callSpan,
      ),
    );
  return { bound, spans, rest, errors };
}

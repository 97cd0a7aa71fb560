// Diagnostics: the objects every layer reports through, and the error class for compiler bugs.

import { CATALOG, type CatalogEntry, type DiagnosticCode, type Severity } from "./catalog.js";
import type { Span } from "./source.js";

export interface Related {
  readonly span: Span;
  readonly message: string;
}

export interface Diagnostic {
  readonly code: DiagnosticCode;
  readonly severity: Severity;
  readonly message: string;
  /** Absent only for diagnostics about files or options that have no source text. */
  readonly span?: Span;
  readonly related?: readonly Related[];
  readonly hint?: string;
}

export function diagnostic(
  code: DiagnosticCode,
  message: string,
  span?: Span,
  extra: { related?: Related[]; hint?: string; severity?: Severity } = {},
): Diagnostic {
  return {
    code,
    severity: extra.severity ?? CATALOG[code].severity,
    message,
    ...(span ? { span } : {}),
    ...(extra.related && extra.related.length > 0 ? { related: extra.related } : {}),
    ...(extra.hint ? { hint: extra.hint } : {}),
  };
}

/** The catalog's message for `code` with its `{field}` holes filled; a hole left open is a bug in vlmc. */
export function message(code: DiagnosticCode, fields: Readonly<Record<string, string | number>> = {}): string {
  const template: string | undefined = (CATALOG[code] as CatalogEntry).template;
  if (template === undefined) throw new InternalError(`${code} has no message template`);
  return template.replace(/\{(\w+)\}/g, (_, key: string) => {
    const v = fields[key];
    if (v === undefined) throw new InternalError(`${code}: no value for {${key}}`);
    return String(v);
  });
}

/** Collects diagnostics; the `accept` callback every checker reports through. */
export class DiagnosticBag {
  readonly items: Diagnostic[] = [];

  accept = (d: Diagnostic): void => {
    this.items.push(d);
  };

  error(code: DiagnosticCode, message: string, span?: Span, extra?: { related?: Related[]; hint?: string }): void {
    this.accept(diagnostic(code, message, span, extra));
  }

  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === "error");
  }
}

/** A bug in vlmc, not in the user's input. Rendered as VLM9001 with a request to report it. */
export class InternalError extends Error {
  constructor(message: string) {
    super(`internal compiler error: ${message}`);
    this.name = "InternalError";
  }
}

/** A user error that aborts the current unit of work (e.g. one elaboration); caught at the API boundary. */
export class DiagnosticError extends Error {
  constructor(readonly diagnostic: Diagnostic) {
    super(diagnostic.message);
    this.name = "DiagnosticError";
  }
}

/** Closest candidate by edit distance, for "did you mean" hints. */
export function closestName(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const limit = Math.max(1, Math.floor(name.length / 3));
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance || (d === bestDistance && best !== undefined && c < best)) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= limit ? best : undefined;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 8) return Infinity;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

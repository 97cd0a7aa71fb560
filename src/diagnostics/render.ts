// Renders diagnostics: pretty (tsc/rustc style), JSON, and GitHub workflow annotations.

import type { Diagnostic } from "./diagnostic.js";
import type { SourceFile, Span } from "./source.js";

export type DiagnosticFormat = "pretty" | "json" | "github";

export type SourceLookup = (path: string) => SourceFile | undefined;

interface Located {
  file: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

function locate(span: Span | undefined, sources: SourceLookup): Located | undefined {
  if (!span) return undefined;
  const src = sources(span.file);
  if (!src) return { file: span.file, line: 1, column: 1, endLine: 1, endColumn: 1 };
  const a = src.position(span.start);
  const b = src.position(span.end);
  return { file: span.file, line: a.line, column: a.column, endLine: b.line, endColumn: b.column };
}

export interface JsonDiagnostic {
  code: string;
  severity: string;
  message: string;
  file: string | null;
  line: number | null;
  column: number | null;
  endLine: number | null;
  endColumn: number | null;
}

export function toJson(diags: readonly Diagnostic[], sources: SourceLookup): JsonDiagnostic[] {
  return diags.map((d) => {
    const at = locate(d.span, sources);
    return {
      code: d.code,
      severity: d.severity,
      message: fullMessage(d),
      file: at?.file ?? null,
      line: at?.line ?? null,
      column: at?.column ?? null,
      endLine: at?.endLine ?? null,
      endColumn: at?.endColumn ?? null,
    };
  });
}

function fullMessage(d: Diagnostic): string {
  return d.hint ? `${d.message} (${d.hint})` : d.message;
}

function escapeGithub(s: string, property: boolean): string {
  let out = s.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
  if (property) out = out.replace(/:/g, "%3A").replace(/,/g, "%2C");
  return out;
}

export function renderGithub(diags: readonly Diagnostic[], sources: SourceLookup): string {
  return diags
    .map((d) => {
      const at = locate(d.span, sources);
      const kind = d.severity === "error" ? "error" : d.severity === "warning" ? "warning" : "notice";
      const props = at
        ? ` file=${escapeGithub(at.file, true)},line=${at.line},col=${at.column},endLine=${at.endLine},endColumn=${at.endColumn},title=${d.code}`
        : ` title=${d.code}`;
      return `::${kind}${props}::${escapeGithub(`${d.code}: ${fullMessage(d)}`, false)}`;
    })
    .join("\n");
}

const ANSI = {
  red: "\x1b[31m",
  yellow: "\x1b[33m",
  cyan: "\x1b[36m",
  bold: "\x1b[1m",
  dim: "\x1b[2m",
  reset: "\x1b[0m",
};

export function renderPretty(diags: readonly Diagnostic[], sources: SourceLookup, color: boolean): string {
  const paint = (code: string, s: string) => (color ? `${code}${s}${ANSI.reset}` : s);
  const blocks: string[] = [];
  for (const d of diags) {
    const at = locate(d.span, sources);
    const sevColor = d.severity === "error" ? ANSI.red : d.severity === "warning" ? ANSI.yellow : ANSI.cyan;
    const where = at
      ? `${paint(ANSI.cyan, at.file)}:${paint(ANSI.yellow, String(at.line))}:${paint(ANSI.yellow, String(at.column))} - `
      : "";
    const lines = [`${where}${paint(sevColor, d.severity)} ${paint(ANSI.dim, d.code)}: ${d.message}`];
    if (d.span) lines.push(...excerpt(d.span, sources, (s) => paint(sevColor, s)));
    for (const r of d.related ?? []) {
      const rat = locate(r.span, sources);
      lines.push(`  ${rat ? `${rat.file}:${rat.line}:${rat.column}: ` : ""}${r.message}`);
      lines.push(...excerpt(r.span, sources, (s) => paint(ANSI.cyan, s)));
    }
    if (d.hint) lines.push(`  ${paint(ANSI.bold, "hint")}: ${d.hint}`);
    blocks.push(lines.join("\n"));
  }
  return blocks.join("\n\n");
}

function excerpt(span: Span, sources: SourceLookup, paint: (s: string) => string): string[] {
  const src = sources(span.file);
  if (!src) return [];
  const a = src.position(span.start);
  const b = src.position(span.end);
  const text = src.lineText(a.line).replace(/\t/g, " ");
  const shown = text.length > 200 ? text.slice(0, 200) + "…" : text;
  const gutter = String(a.line);
  const width = b.line === a.line ? Math.max(1, b.column - a.column) : Math.max(1, text.length - a.column + 1);
  const underline = " ".repeat(Math.min(a.column - 1, 200)) + "~".repeat(Math.min(width, Math.max(1, 201 - a.column)));
  return ["", `${gutter} ${shown}`, `${" ".repeat(gutter.length)} ${paint(underline)}`];
}

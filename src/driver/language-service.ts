// What an editor asks about a .vlm file, answered from the compiler's own front end: diagnostics
// (exactly `vlmc check`'s), hover (shapes, parameter counts, proved token counts, a block's doc
// comment), definitions (into std too), completion of block arguments with their defaults, and
// formatting. Offsets in, offsets out; src/cli/lsp.ts speaks the protocol.

import * as fs from "node:fs";
import * as path from "node:path";
import type { Diagnostic } from "../diagnostics/diagnostic.js";
import { SourceFile, type Span } from "../diagnostics/source.js";
import { dimToString } from "../ir/dims.js";
import type { Graph, IrModule } from "../ir/graph.js";
import { typeToString } from "../ir/types.js";
import { BUILTINS } from "../lang/builtins.js";
import { resolveProgram, type ResolvedProgram, type TopSymbol } from "../lang/check/resolve.js";
import type { NameBinding, TokenFact } from "../lang/elaborate/elaborate.js";
import { formatText } from "../lang/format/format.js";
import type * as A from "../lang/parser/ast.js";
import { displayPath, loadProgram, type LoadedFile, type Program } from "../lang/parser/program.js";
import { check, elaborate } from "./check.js";
import { summarize } from "./summary.js";

export interface Location {
  /** Absolute path of the file. */
  readonly file: string;
  readonly start: number;
  readonly end: number;
}

export interface Hover {
  /** Markdown. */
  readonly contents: string;
  readonly start: number;
  readonly end: number;
}

export interface CompletionItem {
  readonly label: string;
  readonly detail: string;
  readonly insertText: string;
  readonly kind: "argument" | "block";
}

interface Front {
  readonly program: Program;
  readonly resolved: ResolvedProgram;
}

interface Elaborated {
  readonly modules: readonly {
    module: IrModule;
    tokens: ReadonlyMap<Graph, TokenFact[]>;
    bindings: ReadonlyMap<Graph, NameBinding[]>;
    decl: A.ModelDecl;
  }[];
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

const WORD = /[A-Za-z_][A-Za-z0-9_]*/y;

/** The identifier at an offset, with its span (offset may sit just after it, where a cursor is). */
function wordAt(text: string, offset: number): { word: string; start: number; end: number } | undefined {
  let start = Math.min(offset, text.length);
  while (start > 0 && /[A-Za-z0-9_]/.test(text[start - 1]!)) start--;
  WORD.lastIndex = start;
  const m = WORD.exec(text);
  if (!m || start + m[0].length < offset) return undefined;
  return { word: m[0], start, end: start + m[0].length };
}

const within = (span: Span, offset: number) => span.start <= offset && offset <= span.end;

/** `//` comment lines right above a declaration, without the slashes. */
function docComment(file: LoadedFile, decl: { span: Span }): string {
  const lines: string[] = [];
  let line = file.source.position(decl.span.start).line - 1;
  const byLine = new Map(file.comments.map((c) => [file.source.position(c.span.start).line, c]));
  for (let c = byLine.get(line); c && file.source.lineText(line).trim().startsWith("//"); c = byLine.get(--line))
    lines.unshift(c.text.replace(/^\/\/\s?/, ""));
  return lines.join("\n");
}

function sourceText(program: Program, span: Span): string {
  return program.files.get(span.file)?.source.text.slice(span.start, span.end) ?? "";
}

/** `name(a, b = 3)`: a block's or primitive's signature with defaults as written. */
function signature(program: Program, name: string, sym: TopSymbol | undefined): string | undefined {
  if (sym?.kind === "block")
    return `block ${name}(${sym.decl.params
      .map((p) => (p.default ? `${p.name} = ${sourceText(program, p.default.span)}` : p.name))
      .join(", ")})`;
  const builtin = BUILTINS.get(name);
  if (builtin)
    return `${builtin.kind} ${name}(${builtin.params.map((p) => (p.required ? p.name : `${p.name}?`)).join(", ")})`;
  return undefined;
}

export class LanguageService {
  private readonly texts = new Map<string, string>();
  private front: { key: string; value: Front } | undefined;
  private elaborated: { key: string; value: Elaborated } | undefined;

  /** Open documents by absolute path: their text wins over the disk. */
  setText(file: string, text: string): void {
    this.texts.set(displayPath(path.resolve(file)), text);
  }

  close(file: string): void {
    this.texts.delete(displayPath(path.resolve(file)));
  }

  private overrides(): ReadonlyMap<string, string> {
    return this.texts;
  }

  private key(file: string): string {
    return `${file}\u0000${[...this.texts].map(([p, t]) => `${p}\u0000${t}`).join("\u0000")}`;
  }

  private frontEnd(file: string): Front {
    const key = this.key(file);
    if (this.front?.key !== key) {
      const program = loadProgram([file], { overrides: this.overrides() });
      this.front = { key, value: { program, resolved: resolveProgram(program, () => {}) } };
    }
    return this.front.value;
  }

  private elaborate(file: string): Elaborated {
    const key = this.key(file);
    if (this.elaborated?.key !== key) {
      const r = elaborate([file], { overrides: this.overrides() });
      const modules = r.models.flatMap((m) =>
        m.module ? [{ module: m.module, tokens: m.tokens, bindings: m.bindings ?? new Map(), decl: m.decl }] : [],
      );
      this.elaborated = { key, value: { modules } };
    }
    return this.elaborated.value;
  }

  /** `vlmc check`'s diagnostics for this file; those without a span sit at its start. */
  /**
   * `vlmc check`'s diagnostics for one open file. One raised inside a block of another file (std) is
   * shown at this file's call site, its own place kept as the first related note: an editor shows a
   * file's diagnostics only in that file.
   */
  diagnostics(file: string): Diagnostic[] {
    const display = displayPath(path.resolve(file));
    return check([display], { overrides: this.overrides() }).diagnostics.flatMap((d) => {
      if (d.span === undefined || d.span.file === display) return [d];
      const site = d.related?.find((r) => r.span.file === display);
      if (!site) return [];
      const others = (d.related ?? []).filter((r) => r !== site);
      return [{ ...d, span: site.span, related: [{ span: d.span, message: "raised here" }, ...others] }];
    });
  }

  /** A related note's place (often in std): absolute path and 0-based line and character. */
  locate(span: Span): { file: string; line: number; character: number } | undefined {
    const source = this.front?.value.program.files.get(span.file)?.source ?? this.sourceOf(span.file);
    if (!source) return undefined;
    const { line, column } = source.position(span.start);
    return { file: path.resolve(span.file), line: line - 1, character: column - 1 };
  }

  private sourceOf(display: string): SourceFile | undefined {
    const text = this.texts.get(display) ?? readText(display);
    return text === undefined ? undefined : new SourceFile(display, text);
  }

  format(file: string): string | undefined {
    const display = displayPath(path.resolve(file));
    const text = this.texts.get(display);
    if (text === undefined) return undefined;
    const r = formatText(display, text);
    return r.ok ? r.text : undefined;
  }

  private symbol(front: Front, file: string, name: string): TopSymbol | undefined {
    return front.resolved.scopes.get(file)?.get(name) ?? front.resolved.std.get(name);
  }

  /** The file's front end, its loaded text and the identifier at `offset`, if there is one. */
  private wordIn(file: string, offset: number) {
    const display = displayPath(path.resolve(file));
    const front = this.frontEnd(display);
    const loaded = front.program.files.get(display);
    const at = loaded && wordAt(loaded.source.text, offset);
    return loaded && at ? { display, front, loaded, at } : undefined;
  }

  definition(file: string, offset: number): Location | undefined {
    const here = this.wordIn(file, offset);
    if (!here) return undefined;
    const { display, front, loaded, at } = here;
    const sym = this.symbol(front, display, at.word);
    if (sym) return { file: path.resolve(sym.file), start: sym.decl.nameSpan.start, end: sym.decl.nameSpan.end };
    const component = this.componentAt(loaded, offset, at.word);
    return component && { file: path.resolve(display), start: component.nameSpan.start, end: component.nameSpan.end };
  }

  /** The component of the model around `offset` that `name` names. */
  private componentAt(loaded: LoadedFile, offset: number, name: string): A.ComponentDecl | undefined {
    const model = loaded.ast.decls.find((d): d is A.ModelDecl => d.kind === "model" && within(d.span, offset));
    return model?.members.find((m): m is A.ComponentDecl => m.kind === "component" && m.name === name);
  }

  hover(file: string, offset: number): Hover | undefined {
    const here = this.wordIn(file, offset);
    if (!here) return undefined;
    const { display, front, loaded, at } = here;
    const parts: string[] = [];
    const sym = this.symbol(front, display, at.word);
    const sig = signature(front.program, at.word, sym);
    if (sig) {
      parts.push(`\`\`\`vlm\n${sig}\n\`\`\``);
      if (sym) {
        const doc = docComment(front.program.files.get(sym.file)!, sym.decl);
        if (doc) parts.push(doc);
      }
    }
    const model = loaded.ast.decls.find((d): d is A.ModelDecl => d.kind === "model" && within(d.span, offset));
    if (model) parts.push(...this.modelHover(display, model, offset, at.word));
    return parts.length > 0 ? { contents: parts.join("\n\n"), start: at.start, end: at.end } : undefined;
  }

  /** Inside a model: a component's parameters, a variable's or input's shape, proved token counts. */
  private modelHover(display: string, model: A.ModelDecl, offset: number, word: string): string[] {
    const found = this.elaborate(display).modules.find((m) => m.decl === model || m.decl.name === model.name);
    if (!found) return [];
    const parts: string[] = [];
    const summary = summarize(found.module, found.tokens);
    const component = summary.components.find((c) => c.name === word);
    const info = found.module.components.find((c) => c.name === word);
    if (component && info)
      parts.push(
        `**${word}**: ${info.role ?? "component"} \`${info.block}\`${info.frozen ? ", frozen" : ""} · ${component.params.toLocaleString("en-US")} parameters`,
      );
    const entry = model.members.find(
      (m): m is A.ForwardDecl | A.GraphDecl => (m.kind === "forward" || m.kind === "graph") && within(m.span, offset),
    );
    if (entry) {
      const graph = found.module.graphs.find((g) => g.name === (entry.kind === "forward" ? "forward" : entry.name));
      if (graph) {
        const type = variableType(graph, found.bindings.get(graph) ?? [], word, offset);
        if (type) parts.push(`\`${word}\`: \`${type}\``);
        for (const t of found.tokens.get(graph) ?? [])
          if (within(t.span, offset)) parts.push(`tokens(${t.label}) = ${dimToString(t.value)} (proved)`);
      }
    }
    return parts;
  }

  completion(file: string, offset: number): CompletionItem[] {
    const display = displayPath(path.resolve(file));
    const text = this.texts.get(display) ?? this.frontEnd(display).program.files.get(display)?.source.text ?? "";
    const call = enclosingCall(text, offset);
    const front = this.frontEnd(display);
    if (call) {
      const sym = this.symbol(front, display, call.callee);
      const given = new Set([...call.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*:/g)].map((m) => m[1]));
      if (sym?.kind === "block")
        return sym.decl.params
          .filter((p) => !given.has(p.name))
          .map((p) => {
            const value = p.default ? sourceText(front.program, p.default.span) : undefined;
            return {
              label: p.name,
              detail: value === undefined ? "required" : `default ${value}`,
              insertText: `${p.name}: ${value ?? ""}`,
              kind: "argument" as const,
            };
          });
      const builtin = BUILTINS.get(call.callee);
      if (builtin)
        return builtin.params
          .filter((p) => !given.has(p.name))
          .map((p) => ({
            label: p.name,
            detail: p.required ? "required" : "optional",
            insertText: `${p.name}: `,
            kind: "argument" as const,
          }));
    }
    const blocks = new Map<string, TopSymbol>([...front.resolved.std, ...(front.resolved.scopes.get(display) ?? [])]);
    return [...blocks]
      .filter(([, s]) => s.kind === "block")
      .map(([name, s]) => ({
        label: name,
        detail: signature(front.program, name, s) ?? "",
        insertText: name,
        kind: "block" as const,
      }));
  }
}

/** The callee and argument text of the call whose `(` encloses `offset`, read from the text (it may not parse yet). */
function enclosingCall(text: string, offset: number): { callee: string; args: string } | undefined {
  let depth = 0;
  for (let i = offset - 1; i >= 0; i--) {
    const c = text[i];
    if (c === ")" || c === "]") depth++;
    else if (c === "[") depth--;
    else if (c === "(") {
      if (depth > 0) {
        depth--;
        continue;
      }
      const m = /([A-Za-z_][A-Za-z0-9_]*)\s*$/.exec(text.slice(Math.max(0, i - 200), i));
      return m ? { callee: m[1]!, args: text.slice(i + 1, offset) } : undefined;
    } else if (c === "{" || c === "}") return undefined;
  }
  return undefined;
}

/** The type of `name` at `offset` in an entry point: its last assignment before `offset`, else the input's type. */
function variableType(
  graph: Graph,
  bindings: readonly NameBinding[],
  name: string,
  offset: number,
): string | undefined {
  const assigned = bindings.filter((b) => b.name === name && b.span.start <= offset).at(-1);
  if (assigned) return typeToString(assigned.type);
  const input = graph.inputs.find((v) => v.source.kind === "input" && v.source.name === name);
  return input && typeToString(input.type);
}

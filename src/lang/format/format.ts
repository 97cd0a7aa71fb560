// The canonical layout of .vlm source (`vlmc fmt`): parse, then print the AST back in one fixed
// style, putting every comment back beside the code it was written next to.

import type { Diagnostic } from "../../diagnostics/diagnostic.js";
import type { Span } from "../../diagnostics/source.js";
import type * as A from "../parser/ast.js";
import { LBrace, RBrace, vlmLexer } from "../parser/lexer.js";
import { parseText } from "../parser/parse.js";

/** A line longer than this has its outermost bracketed list broken, one item per line. */
export const MAX_WIDTH = 100;
const INDENT = 2;

export type FormatResult = { ok: true; text: string } | { ok: false; diagnostics: Diagnostic[] };

/** Formats a whole file; refuses (returning the parser's diagnostics) if it has syntax errors. */
export function formatText(path: string, text: string): FormatResult {
  const parsed = parseText(path, text);
  if (parsed.diagnostics.some((d) => d.severity === "error")) return { ok: false, diagnostics: parsed.diagnostics };
  return { ok: true, text: new Printer(text, parsed.comments).file(parsed.ast) };
}

// ---- documents: text with optional line breaks, laid out to the width (Wadler's / prettier's algorithm) ----

type Doc =
  | string
  | Doc[]
  | { t: "group"; body: Doc }
  | { t: "line"; flat: string }
  | { t: "indent"; body: Doc }
  | { t: "ifBreak"; broken: Doc; flat: Doc };

/** A space, or a line break when its group does not fit. */
const line: Doc = { t: "line", flat: " " };
/** Nothing, or a line break when its group does not fit. */
const softline: Doc = { t: "line", flat: "" };
const group = (body: Doc): Doc => ({ t: "group", body });
const indent = (body: Doc): Doc => ({ t: "indent", body });
const ifBreak = (broken: Doc, flat: Doc): Doc => ({ t: "ifBreak", broken, flat });

function join(sep: Doc, docs: Doc[]): Doc[] {
  return docs.flatMap((d, i) => (i === 0 ? [d] : [sep, d]));
}

/** `open a, b close`; when too long, one item per line with a trailing comma. `pad` spaces flat braces: `{ a, b }`. */
function list(open: string, items: Doc[], close: string, pad = false): Doc {
  if (items.length === 0) return open + close;
  const edge = pad ? line : softline;
  return group([open, indent([edge, join([",", line], items)]), ifBreak(",", ""), edge, close]);
}

type Mode = "flat" | "break";
type Cmd = [indent: number, mode: Mode, doc: Doc];

/** Lays out `doc` starting at column `start`; every line it breaks onto is indented from `start`. */
function render(doc: Doc, start: number): string {
  const out: string[] = [" ".repeat(start)];
  let col = start;
  const cmds: Cmd[] = [[start, "break", doc]];
  for (let cmd: Cmd | undefined; (cmd = cmds.pop()); ) {
    const [ind, mode, d] = cmd;
    if (typeof d === "string") {
      out.push(d);
      col += d.length;
    } else if (Array.isArray(d)) {
      for (let i = d.length - 1; i >= 0; i--) cmds.push([ind, mode, d[i]!]);
    } else if (d.t === "group") {
      const flat = mode === "flat" || fits([ind, "flat", d.body], cmds, MAX_WIDTH - col);
      cmds.push([ind, flat ? "flat" : "break", d.body]);
    } else if (d.t === "line") {
      if (mode === "flat") {
        out.push(d.flat);
        col += d.flat.length;
      } else {
        out.push("\n" + " ".repeat(ind));
        col = ind;
      }
    } else if (d.t === "indent") cmds.push([ind + INDENT, mode, d.body]);
    else cmds.push([ind, mode, mode === "break" ? d.broken : d.flat]);
  }
  return out.join("");
}

/** Whether `next` fits flat in `width` columns together with what follows it up to the next place it may break. */
function fits(next: Cmd, rest: Cmd[], width: number): boolean {
  const stack: Cmd[] = [next];
  let restIndex = rest.length;
  while (width >= 0) {
    const cmd = stack.pop() ?? (restIndex > 0 ? rest[--restIndex] : undefined);
    if (!cmd) return true;
    const [ind, mode, d] = cmd;
    if (typeof d === "string") width -= d.length;
    else if (Array.isArray(d)) for (let i = d.length - 1; i >= 0; i--) stack.push([ind, mode, d[i]!]);
    else if (d.t === "line") {
      if (mode === "break") return true;
      width -= d.flat.length;
    } else if (d.t === "ifBreak") stack.push([ind, mode, mode === "break" ? d.broken : d.flat]);
    else stack.push([ind, mode, d.body]);
  }
  return false;
}

// ---- expressions ----

// Binding strength, loosest first, as in the grammar's expression rules.
const OR = 1;
const AND = 2;
const NOT = 3;
const COMPARE = 4;
const ADD = 5;
const MUL = 6;
const NEG = 7;
const POW = 8;
const POSTFIX = 9;

const BINARY: Record<A.BinaryOp, number> = {
  or: OR,
  and: AND,
  "==": COMPARE,
  "!=": COMPARE,
  "<": COMPARE,
  "<=": COMPARE,
  ">": COMPARE,
  ">=": COMPARE,
  "+": ADD,
  "-": ADD,
  "*": MUL,
  "/": MUL,
  "%": MUL,
  "@": MUL,
  "**": POW,
};

function precedence(e: A.Expr): number {
  switch (e.kind) {
    case "binary":
      return BINARY[e.op];
    case "unary":
      return e.op === "not" ? NOT : NEG;
    // The parser folds `-3` into the literal, so a negative number prints as a negation and binds like one.
    case "int":
      return e.value < 0 || Object.is(e.value, -0) ? NEG : POSTFIX;
    case "float":
      return e.text.startsWith("-") ? NEG : POSTFIX;
    default:
      return POSTFIX;
  }
}

/** `e`, parenthesised if it binds looser than `min` (the AST keeps no parentheses: exactly the needed ones are added). */
function expr(e: A.Expr, min = 0): Doc {
  const doc = bareExpr(e);
  return precedence(e) < min ? ["(", doc, ")"] : doc;
}

function bareExpr(e: A.Expr): Doc {
  switch (e.kind) {
    case "int":
      // `-0` is folded to the value -0, which String() would print without its sign.
      return Object.is(e.value, -0) ? "-0" : String(e.value);
    case "float":
      return e.text;
    case "string":
      return quote(e.value);
    case "bool":
      return String(e.value);
    case "none":
      return "none";
    case "name":
      return e.name;
    case "list":
      return list(
        "[",
        e.items.map((item) => expr(item)),
        "]",
      );
    case "unary":
      if (e.op === "not") return ["not ", expr(e.operand, NOT)];
      // `- -x` rather than `--x`, which reads like a decrement.
      return [e.operand.kind === "unary" && e.operand.op === "-" ? "- " : "-", expr(e.operand, NEG)];
    case "binary": {
      const p = BINARY[e.op];
      // `**` is right-associative over a postfix base and a (possibly negated) exponent; comparisons do not chain.
      if (e.op === "**") return [expr(e.left, POSTFIX), " ** ", expr(e.right, NEG)];
      if (p === COMPARE) return [expr(e.left, ADD), ` ${e.op} `, expr(e.right, ADD)];
      // A left-associative chain is walked down its spine in a loop, not recursively: the parser
      // accepts sums of any length, and one recursion per term would overflow the stack.
      const chain: Extract<A.Expr, { kind: "binary" }>[] = [];
      let first: A.Expr = e;
      for (; first.kind === "binary" && BINARY[first.op] === p; first = first.left) chain.push(first);
      return [expr(first, p), ...chain.reverse().map((b) => [` ${b.op} `, expr(b.right, p + 1)])];
    }
    case "call":
    case "member":
    case "index": {
      // Postfix chains (`a.b(c)[d]…`) likewise, from the innermost object out.
      const suffixes: Doc[] = [];
      let base: A.Expr = e;
      for (
        ;
        base.kind === "call" || base.kind === "member" || base.kind === "index";
        base = base.kind === "call" ? base.callee : base.object
      ) {
        suffixes.push(suffix(base));
      }
      return [expr(base, POSTFIX), ...suffixes.reverse()];
    }
  }
}

function suffix(e: Extract<A.Expr, { kind: "call" | "member" | "index" }>): Doc {
  switch (e.kind) {
    case "call":
      return list(
        "(",
        e.args.map((a) => (a.name !== undefined ? [a.name, ": ", expr(a.value)] : expr(a.value))),
        ")",
      );
    case "member":
      return `.${e.name}`;
    case "index":
      return ["[", join(", ", e.items.map(indexItem)), "]"];
  }
}

function indexItem(item: A.IndexItem): Doc {
  if (item.kind === "at") return expr(item.index);
  return [
    item.start ? expr(item.start) : "",
    ":",
    item.stop ? expr(item.stop) : "",
    item.step ? [":", expr(item.step)] : "",
  ];
}

const ESCAPES: Record<string, string> = { "\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function quote(s: string): string {
  return `"${s.replace(/[\\"\n\r\t]/g, (ch) => ESCAPES[ch]!)}"`;
}

function params(ps: A.ParamDef[]): Doc {
  return list(
    "(",
    ps.map((p) => [p.name, p.type ? [": ", typeExpr(p.type)] : "", p.default ? [" = ", expr(p.default)] : ""]),
    ")",
  );
}

function typeExpr(t: A.TypeExpr): Doc {
  if (!t.dims) return t.name;
  // A dim is an additive expression, so that `<=` after it reads as its bound.
  const dims = t.dims.map((d) => [expr(d.value, ADD), d.bound ? [" <= ", expr(d.bound, ADD)] : ""]);
  return [t.name, "[", join(", ", dims), "]"];
}

// ---- declarations, members, statements, comments ----

type Node = A.TopDecl | A.Member | A.Stmt;
type IfNode = Extract<Node, { kind: "if" }>;

const hasBody = (d: A.TopDecl): boolean => d.kind === "block" || d.kind === "model";

/** The word a member starts with, where that is an identifier rather than a keyword. */
function firstWord(n: Node | undefined): string | undefined {
  if (n?.kind === "component") return n.role?.name ?? n.name;
  if (n?.kind === "param") return n.role?.name;
  return undefined;
}

/** One entry of a braced list (policy, package, weights key map), with where it was written. */
interface Entry {
  doc: Doc;
  span: Span;
}

const entry = (e: A.PolicyEntry): Entry => ({ doc: [e.key, ": ", expr(e.value)], span: e.span });

const rule = (r: A.WeightsRule): Entry => ({
  doc:
    r.kind === "tie"
      ? `tie ${quote(r.param)} = ${quote(r.source)}`
      : `${quote(r.from)}: ${r.to === null ? "none" : quote(r.to)}`,
  span: r.span,
});

class Printer {
  private readonly lines: string[] = [];
  private depth = 0;
  /** Index of the first comment not yet printed: comments go out strictly in source order. */
  private nextComment = 0;
  /** Source offset just past the last node or comment printed; the gap up to the next one shows whether the user left a blank line. */
  private lastEnd = 0;
  /** True at the top of the file and right after a `{`, where blank lines are dropped. */
  private atStart = true;
  /** Whether a trailing comment may go on the end of the last line (it does not already end in a line comment). */
  private canAppend = false;
  /** Set between top-level declarations that a blank line must separate whatever the user wrote. */
  private blankDue = false;
  /** Offsets of every `{` token, ascending, and of the `}` matching each: where bodies begin and end. */
  private readonly opens: number[] = [];
  private readonly closeOf = new Map<number, number>();

  constructor(
    private readonly src: string,
    private readonly comments: A.Comment[],
  ) {
    const stack: number[] = [];
    for (const t of vlmLexer.tokenize(src).tokens) {
      if (t.tokenType === LBrace) {
        this.opens.push(t.startOffset);
        stack.push(t.startOffset);
      } else if (t.tokenType === RBrace) {
        const open = stack.pop();
        if (open !== undefined) this.closeOf.set(open, t.startOffset);
      }
    }
  }

  file(ast: A.FileAst): string {
    let prev: A.TopDecl | undefined;
    for (const d of ast.decls) {
      // Imports and constants may stay grouped as written; anything with a body stands apart.
      this.blankDue = prev !== undefined && (hasBody(prev) || hasBody(d));
      this.node(d, undefined);
      prev = d;
    }
    this.blankDue = false;
    this.flush(Infinity);
    return this.lines.length === 0 ? "" : this.lines.join("\n") + "\n";
  }

  private items(nodes: readonly Node[]): void {
    nodes.forEach((n, i) => this.node(n, nodes[i + 1]));
  }

  private node(n: Node, next: Node | undefined): void {
    switch (n.kind) {
      case "import": {
        const names = n.items.map((i) => (i.alias ? `${i.name} as ${i.alias.name}` : i.name));
        return this.leaf(n, ["import ", list("{", names, "}", true), " from ", quote(n.from)]);
      }
      case "const":
        return this.leaf(n, ["const ", n.name, " = ", expr(n.value)]);
      case "block":
        return this.withBody(n, ["block ", n.name, params(n.params)], n.members);
      case "model":
        return this.withBody(n, ["model ", n.name, n.params.length > 0 ? params(n.params) : ""], n.members);
      case "param":
        return this.leaf(n, [
          n.role ? `${n.role.name} ` : "",
          "param ",
          n.name,
          ": ",
          list(
            "[",
            n.shape.map((s) => expr(s)),
            "]",
          ),
          n.init ? [" = ", expr(n.init)] : "",
          n.frozen ? " frozen" : "",
        ]);
      case "if":
        return this.item(n.span, this.braces(n.span.start).open, () => this.ifChain(n, ""));
      case "forward":
        return this.withBody(n, ["forward", params(n.params)], n.body);
      case "graph":
        return this.withBody(n, ["graph ", n.name, params(n.params)], n.body);
      case "for":
        return this.withBody(n, ["for ", n.name.name, " in ", expr(n.iterable)], n.body);
      case "stage": {
        if (n.trains.length === 0) return this.leaf(n, `stage ${n.name} {}`);
        const names = n.trains.map((t) => t.name);
        const trains = ifBreak(
          join(
            line,
            names.map((t) => `train ${t}`),
          ),
          `train ${names.join(", ")}`,
        );
        return this.leaf(n, group([`stage ${n.name} {`, indent([line, trains]), line, "}"]));
      }
      case "policy":
        return this.entries(n, ["policy ", n.selector.name], n.entries.map(entry));
      case "package":
        return this.entries(n, "package", n.entries.map(entry));
      case "weights": {
        const header = [
          "weights",
          n.target ? ` ${n.target.name}` : "",
          n.path !== undefined ? [" from ", quote(n.path)] : "",
          n.prefix !== undefined ? [" prefix ", quote(n.prefix)] : "",
        ];
        if (n.map) return this.entries(n, header, n.map.map(rule));
        // `prefix` is a contextual keyword: without the `;` a following `prefix = …` member would be read as this one's prefix.
        return this.leaf(n, [header, n.prefix === undefined && firstWord(next) === "prefix" ? ";" : ""]);
      }
      case "component":
        return this.leaf(n, [
          n.role ? `${n.role.name} ` : "",
          n.name,
          " = ",
          n.repeat ? ["repeat(", expr(n.repeat.count), n.repeat.index ? `, ${n.repeat.index.name}` : "", ") "] : "",
          expr(n.value),
          n.frozen ? " frozen" : "",
        ]);
      case "assign":
        return this.leaf(n, [n.targets.map((t) => t.name).join(", "), " = ", expr(n.value)]);
      case "return": {
        const items = n.items.map((i) => (i.name ? [i.name.name, ": ", expr(i.value)] : expr(i.value)));
        return this.leaf(n, ["return ", join(", ", items)]);
      }
      case "expect":
        return this.leaf(n, ["expect ", expr(n.cond)]);
    }
  }

  /**
   * `header { key: value, … }`: on one line or one entry a line, as the width allows; one entry a line
   * whenever a comment is written inside the braces, each comment kept beside its entry.
   */
  private entries(n: Node, header: Doc, items: readonly Entry[]): void {
    const { open, close } = this.braces(n.span.start);
    this.flush(n.span.start);
    if (!this.pending(close))
      return this.leaf(n, [
        header,
        " ",
        list(
          "{",
          items.map((i) => i.doc),
          "}",
          true,
        ),
      ]);
    this.item(n.span, open, () =>
      this.block(
        header,
        close,
        () => {
          for (const i of items) {
            this.flush(i.span.start);
            this.separate(i.span.start);
            this.emit([i.doc, ","]);
            this.lastEnd = i.span.end;
          }
        },
        false,
      ),
    );
  }

  /** A node printed without a body of its own; comments written inside it move above it. */
  private leaf(n: Node, doc: Doc): void {
    this.item(n.span, n.span.end, () => this.emit(doc));
  }

  private withBody(n: Node, header: Doc, children: readonly Node[]): void {
    const { open, close } = this.braces(n.span.start);
    this.item(n.span, open, () => this.block(header, close, () => this.items(children), children.length === 0));
  }

  /** `if … {} else if … {} else {}`: an else holding just an `if` prints as `else if`, which parses to the same AST. */
  private ifChain(n: IfNode, prefix: string): void {
    const then = this.braces(n.span.start);
    const otherwise = n.else;
    this.block(
      [prefix, "if ", expr(n.cond)],
      then.close,
      () => this.items(n.then),
      n.then.length === 0,
      otherwise !== undefined,
    );
    if (!otherwise) return;
    const only = otherwise.length === 1 ? otherwise[0] : undefined;
    if (only?.kind === "if") return this.ifChain(only, "} else ");
    const elseClose = this.braces(then.close).close;
    this.block("} else", elseClose, () => this.items(otherwise), otherwise.length === 0);
  }

  /**
   * One declaration, member or statement: the comments before it, a blank line if one is due or the
   * user left one, the comments inside its header (before `headerEnd`) moved above it, then the node.
   */
  private item(span: Span, headerEnd: number, print: () => void): void {
    this.flush(span.start);
    this.separate(span.start);
    for (let c: A.Comment | undefined; (c = this.pending(headerEnd)); ) this.ownLine(c);
    print();
    this.lastEnd = span.end;
  }

  /**
   * `header {`, the body one level deeper, the comments left before `close`, and `}`; `header {}` when
   * there is nothing inside. When `continued`, the caller's next line closes it (`} else {`).
   */
  private block(header: Doc, close: number, body: () => void, empty: boolean, continued = false): void {
    if (empty && !continued && !this.pending(close)) {
      this.emit([header, " {}"]);
      return;
    }
    this.emit([header, " {"]);
    this.depth++;
    this.atStart = true;
    body();
    this.flush(close);
    this.depth--;
    if (!continued) this.emit("}");
    this.lastEnd = close + 1;
  }

  /** The body braces of the node starting at `from`: no header holds a `{`, so its body's is the first one after. */
  private braces(from: number): { open: number; close: number } {
    let lo = 0;
    let hi = this.opens.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.opens[mid]! < from) lo = mid + 1;
      else hi = mid;
    }
    const open = this.opens[lo]!;
    return { open, close: this.closeOf.get(open)! };
  }

  private emit(doc: Doc): void {
    this.lines.push(...render(doc, this.depth * INDENT).split("\n"));
    this.atStart = false;
    this.canAppend = true;
  }

  private pending(limit: number): A.Comment | undefined {
    const c = this.comments[this.nextComment];
    return c && c.span.start < limit ? c : undefined;
  }

  /** Prints the comments that start before `limit`: one written after code on its line goes on the end of the last line. */
  private flush(limit: number): void {
    for (let c: A.Comment | undefined; (c = this.pending(limit)); ) {
      if (this.canAppend && this.followsCode(c)) {
        this.lines[this.lines.length - 1] += ` ${text(c)}`;
        this.taken(c);
      } else {
        this.separate(c.span.start);
        this.ownLine(c);
      }
    }
  }

  private ownLine(c: A.Comment): void {
    this.lines.push(" ".repeat(this.depth * INDENT) + text(c));
    this.atStart = false;
    this.taken(c);
  }

  private taken(c: A.Comment): void {
    this.nextComment++;
    this.lastEnd = c.span.end;
    this.canAppend = !c.text.startsWith("//");
  }

  private followsCode(c: A.Comment): boolean {
    const lineStart = this.src.lastIndexOf("\n", c.span.start - 1) + 1;
    return /\S/.test(this.src.slice(lineStart, c.span.start));
  }

  /** Before something that starts a line at `start`: a blank line where one is due or the user left one. */
  private separate(start: number): void {
    const userBlank = !this.atStart && /\n[^\S\n]*\n/.test(this.src.slice(this.lastEnd, start));
    if ((this.blankDue || userBlank) && this.lines.length > 0 && this.lines[this.lines.length - 1] !== "")
      this.lines.push("");
    this.blankDue = false;
  }
}

/** A comment as printed: line comments lose trailing white space. */
function text(c: A.Comment): string {
  return c.text.startsWith("//") ? c.text.trimEnd() : c.text;
}

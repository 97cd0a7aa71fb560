// CST → AST. Defensive throughout: after error recovery a CST node may lack any child, so every
// read tolerates absence and falls back to a placeholder the checker never reports on twice.

import type { CstElement, CstNode, IToken } from "chevrotain";
import { diagnostic, message, type Diagnostic } from "../../diagnostics/diagnostic.js";
import type { Span } from "../../diagnostics/source.js";
import type * as A from "./ast.js";

type Children = Record<string, CstElement[] | undefined>;

function isToken(e: CstElement | undefined): e is IToken {
  return e !== undefined && (e as IToken).image !== undefined;
}

export class AstBuilder {
  constructor(
    private readonly path: string,
    /** Syntax errors only the AST builder can see (operator placement, chained comparisons). */
    private readonly report: (d: Diagnostic) => void = () => {},
  ) {}

  private tokenSpan(t: IToken | undefined, fallback: Span): Span {
    if (!t || Number.isNaN(t.startOffset) || t.isInsertedInRecovery) return fallback;
    return { file: this.path, start: t.startOffset, end: t.startOffset + t.image.length };
  }

  private nodeSpan(n: CstNode | undefined): Span {
    const loc = n?.location;
    if (!loc || Number.isNaN(loc.startOffset)) return { file: this.path, start: 0, end: 0 };
    const end = loc.endOffset === undefined || Number.isNaN(loc.endOffset) ? loc.startOffset : loc.endOffset + 1;
    return { file: this.path, start: loc.startOffset, end: Math.max(end, loc.startOffset) };
  }

  private nodes(c: Children, label: string): CstNode[] {
    return (c[label] ?? []).filter((e): e is CstNode => !isToken(e));
  }

  private node(c: Children, label: string): CstNode | undefined {
    return this.nodes(c, label)[0];
  }

  private tokens(c: Children, label: string): IToken[] {
    return (c[label] ?? []).filter(isToken);
  }

  private token(c: Children, label: string): IToken | undefined {
    return this.tokens(c, label)[0];
  }

  private ident(t: IToken | undefined, fallback: Span): A.Ident {
    return { name: t && !t.isInsertedInRecovery ? t.image : "<missing>", span: this.tokenSpan(t, fallback) };
  }

  private weightsRule(n: CstNode): A.WeightsRule {
    const c = n.children as Children;
    const span = this.nodeSpan(n);
    const text = (label: string) => {
      const t = this.token(c, label);
      return t && !t.isInsertedInRecovery ? unquote(t.image) : "";
    };
    if (this.token(c, "tieKeyword")) return { kind: "tie", param: text("param"), source: text("source"), span };
    return { kind: "rename", from: text("from"), to: this.token(c, "skip") ? null : text("to"), span };
  }

  private policyEntries(c: Children): A.PolicyEntry[] {
    return this.nodes(c, "policyEntry").map((e) => {
      const ec = e.children as Children;
      const espan = this.nodeSpan(e);
      const key = this.ident(this.token(ec, "key"), espan);
      return { key: key.name, keySpan: key.span, value: this.expression(this.node(ec, "value"), espan), span: espan };
    });
  }

  build(root: CstNode, text: string): A.FileAst {
    const c = root.children as Children;
    const decls: { decl: A.TopDecl; at: number }[] = [];
    for (const n of this.nodes(c, "importDecl")) decls.push({ decl: this.importDecl(n), at: this.nodeSpan(n).start });
    for (const n of this.nodes(c, "constDecl")) decls.push({ decl: this.constDecl(n), at: this.nodeSpan(n).start });
    for (const n of this.nodes(c, "blockDecl")) decls.push({ decl: this.blockDecl(n), at: this.nodeSpan(n).start });
    for (const n of this.nodes(c, "modelDecl")) decls.push({ decl: this.modelDecl(n), at: this.nodeSpan(n).start });
    decls.sort((a, b) => a.at - b.at);
    return { path: this.path, decls: decls.map((d) => d.decl), span: { file: this.path, start: 0, end: text.length } };
  }

  private importDecl(n: CstNode): A.ImportDecl {
    const c = n.children as Children;
    const span = this.nodeSpan(n);
    const from = this.token(c, "StringLiteral");
    return {
      kind: "import",
      items: this.nodes(c, "importItem").map((item) => {
        const ic = item.children as Children;
        const nameTok = this.token(ic, "name");
        const alias = this.token(ic, "alias");
        const itemSpan = this.nodeSpan(item);
        return {
          name: nameTok?.image ?? "<missing>",
          nameSpan: this.tokenSpan(nameTok, itemSpan),
          ...(alias ? { alias: this.ident(alias, itemSpan) } : {}),
          span: itemSpan,
        };
      }),
      from: from ? unquote(from.image) : "",
      fromSpan: this.tokenSpan(from, span),
      span,
    };
  }

  constDecl(n: CstNode): A.ConstDecl {
    const c = n.children as Children;
    const span = this.nodeSpan(n);
    const name = this.ident(this.token(c, "Identifier"), span);
    return {
      kind: "const",
      name: name.name,
      nameSpan: name.span,
      value: this.expression(this.node(c, "expression"), span),
      span,
    };
  }

  private blockDecl(n: CstNode): A.BlockDecl {
    const c = n.children as Children;
    const span = this.nodeSpan(n);
    const name = this.ident(this.token(c, "Identifier"), span);
    return {
      kind: "block",
      name: name.name,
      nameSpan: name.span,
      params: this.paramList(this.node(c, "paramList")),
      members: this.memberBody(this.node(c, "memberBody")),
      span,
    };
  }

  private modelDecl(n: CstNode): A.ModelDecl {
    const c = n.children as Children;
    const span = this.nodeSpan(n);
    const name = this.ident(this.token(c, "Identifier"), span);
    return {
      kind: "model",
      name: name.name,
      nameSpan: name.span,
      params: this.paramList(this.node(c, "paramList")),
      members: this.memberBody(this.node(c, "memberBody")),
      span,
    };
  }

  private paramList(n: CstNode | undefined): A.ParamDef[] {
    if (!n) return [];
    return this.nodes(n.children as Children, "paramDef").map((p) => {
      const c = p.children as Children;
      const span = this.nodeSpan(p);
      const name = this.ident(this.token(c, "Identifier"), span);
      const type = this.node(c, "typeExpr");
      const def = this.node(c, "expression");
      return {
        name: name.name,
        nameSpan: name.span,
        ...(type ? { type: this.typeExpr(type) } : {}),
        ...(def ? { default: this.expression(def, span) } : {}),
        span,
      };
    });
  }

  private typeExpr(n: CstNode): A.TypeExpr {
    const c = n.children as Children;
    const span = this.nodeSpan(n);
    const name = this.ident(this.token(c, "Identifier"), span);
    const hasDims = this.tokens(c, "LBracket").length > 0;
    return {
      name: name.name,
      nameSpan: name.span,
      ...(hasDims
        ? {
            dims: this.nodes(c, "dim").map((d) => {
              const dspan = this.nodeSpan(d);
              const e = this.expression(this.node(d.children as Children, "expression"), dspan);
              // `T <= 3520` bounds a symbolic dimension.
              if (e.kind === "binary" && e.op === "<=") return { value: e.left, bound: e.right, span: dspan };
              return { value: e, span: dspan };
            }),
          }
        : {}),
      span,
    };
  }

  private memberBody(n: CstNode | undefined): A.Member[] {
    if (!n) return [];
    const out: A.Member[] = [];
    for (const m of this.nodes(n.children as Children, "member")) {
      const c = m.children as Children;
      const inner = Object.values(c)
        .flat()
        .find((e): e is CstNode => e !== undefined && !isToken(e));
      if (inner) {
        const member = this.member(inner);
        if (member) out.push(member);
      }
    }
    return out;
  }

  private member(n: CstNode): A.Member | undefined {
    const c = n.children as Children;
    const span = this.nodeSpan(n);
    switch (n.name) {
      case "constDecl":
        return this.constDecl(n);
      case "paramDecl": {
        const role = this.token(c, "role");
        const name = this.ident(this.token(c, "name"), span);
        const init = this.node(c, "init");
        const shape = this.node(c, "shape");
        return {
          kind: "param",
          ...(role ? { role: this.ident(role, span) } : {}),
          name: name.name,
          nameSpan: name.span,
          shape: shape ? this.nodes(shape.children as Children, "expression").map((e) => this.expression(e, span)) : [],
          ...(init ? { init: this.expression(init, span) } : {}),
          frozen: this.tokens(c, "Frozen").length > 0,
          span,
        };
      }
      case "ifMember": {
        const elseIf = this.node(c, "elseIf");
        const elseBody = this.node(c, "else");
        const elseMembers = elseIf
          ? [this.member(elseIf)].filter((m): m is A.Member => m !== undefined)
          : elseBody
            ? this.memberBody(elseBody)
            : undefined;
        return {
          kind: "if",
          cond: this.expression(this.node(c, "expression"), span),
          // biome-ignore lint/suspicious/noThenProperty: the AST names an if\'s branch `then`; AST nodes are never awaited
          then: this.memberBody(this.node(c, "then")),
          ...(elseMembers ? { else: elseMembers } : {}),
          span,
        };
      }
      case "forwardDecl":
        return {
          kind: "forward",
          params: this.paramList(this.node(c, "paramList")),
          body: this.body(this.node(c, "body")),
          span,
        };
      case "graphDecl": {
        const name = this.ident(this.token(c, "Identifier"), span);
        return {
          kind: "graph",
          name: name.name,
          nameSpan: name.span,
          params: this.paramList(this.node(c, "paramList")),
          body: this.body(this.node(c, "body")),
          span,
        };
      }
      case "stageDecl": {
        const name = this.ident(this.token(c, "Identifier"), span);
        return {
          kind: "stage",
          name: name.name,
          nameSpan: name.span,
          trains: this.tokens(c, "trained").map((t) => this.ident(t, span)),
          span,
        };
      }
      case "policyDecl":
        return {
          kind: "policy",
          selector: this.ident(this.token(c, "selector"), span),
          entries: this.policyEntries(c),
          span,
        };
      case "packageDecl":
        return { kind: "package", entries: this.policyEntries(c), span };
      case "weightsDecl": {
        const target = this.token(c, "target");
        const path = this.token(c, "path");
        const prefix = this.token(c, "prefix");
        const map = this.node(c, "weightsMap");
        if (!path && !map)
          this.report(
            diagnostic("VLM1050", 'a weights declaration needs `from "PATH"`, a key map `{ … }`, or both', span),
          );
        return {
          kind: "weights",
          ...(target ? { target: this.ident(target, span) } : {}),
          ...(path ? { path: unquote(path.image) } : {}),
          pathSpan: this.tokenSpan(path, span),
          ...(prefix ? { prefix: unquote(prefix.image) } : {}),
          ...(map ? { map: this.nodes(map.children as Children, "weightsRule").map((r) => this.weightsRule(r)) } : {}),
          span,
        };
      }
      case "componentDecl": {
        const first = this.token(c, "first");
        const second = this.token(c, "second");
        const name = this.ident(second ?? first, span);
        const count = this.node(c, "count");
        const index = this.token(c, "index");
        return {
          kind: "component",
          ...(second ? { role: this.ident(first, span) } : {}),
          name: name.name,
          nameSpan: name.span,
          ...(this.tokens(c, "Repeat").length > 0
            ? { repeat: { count: this.expression(count, span), ...(index ? { index: this.ident(index, span) } : {}) } }
            : {}),
          value: this.expression(this.node(c, "value"), span),
          frozen: this.tokens(c, "Frozen").length > 0,
          span,
        };
      }
      default:
        return undefined;
    }
  }

  private body(n: CstNode | undefined): A.Stmt[] {
    if (!n) return [];
    const out: A.Stmt[] = [];
    for (const s of this.nodes(n.children as Children, "statement")) {
      const inner = Object.values(s.children as Children)
        .flat()
        .find((e): e is CstNode => e !== undefined && !isToken(e));
      const stmt = inner ? this.statement(inner) : undefined;
      if (stmt) out.push(stmt);
    }
    return out;
  }

  private statement(n: CstNode): A.Stmt | undefined {
    const c = n.children as Children;
    const span = this.nodeSpan(n);
    switch (n.name) {
      case "constDecl":
        return this.constDecl(n);
      case "returnStmt":
        return {
          kind: "return",
          items: this.nodes(c, "returnItem").map((r) => {
            const rc = r.children as Children;
            const rspan = this.nodeSpan(r);
            const name = this.token(rc, "name");
            return {
              ...(name ? { name: this.ident(name, rspan) } : {}),
              value: this.expression(this.node(rc, "expression"), rspan),
            };
          }),
          span,
        };
      case "expectStmt":
        return { kind: "expect", cond: this.expression(this.node(c, "expression"), span), span };
      case "ifStmt": {
        const elseIf = this.node(c, "elseIf");
        const elseBody = this.node(c, "else");
        const elseStmts = elseIf
          ? [this.statement(elseIf)].filter((s): s is A.Stmt => s !== undefined)
          : elseBody
            ? this.body(elseBody)
            : undefined;
        return {
          kind: "if",
          cond: this.expression(this.node(c, "expression"), span),
          // biome-ignore lint/suspicious/noThenProperty: the AST names an if\'s branch `then`; AST nodes are never awaited
          then: this.body(this.node(c, "then")),
          ...(elseStmts ? { else: elseStmts } : {}),
          span,
        };
      }
      case "forStmt":
        return {
          kind: "for",
          name: this.ident(this.token(c, "Identifier"), span),
          iterable: this.expression(this.node(c, "expression"), span),
          body: this.body(this.node(c, "body")),
          span,
        };
      case "assignStmt":
        return {
          kind: "assign",
          targets: this.tokens(c, "target").map((t) => this.ident(t, span)),
          value: this.expression(this.node(c, "expression"), span),
          span,
        };
      default:
        return undefined;
    }
  }

  // ---- expressions ----

  missing(span: Span): A.Expr {
    return { kind: "name", name: "<missing>", span };
  }

  expression(n: CstNode | undefined, fallback: Span): A.Expr {
    if (!n) return this.missing(fallback);
    const c = n.children as Children;
    const operands = this.nodes(c, "operand").map((o) => this.operandParts(o));
    const operators = this.tokens(c, "BinaryOperator").filter((t) => !t.isInsertedInRecovery);
    if (operands.length === 0) return this.missing(this.nodeSpan(n));
    return new PrecedenceClimber(operands, operators.slice(0, operands.length - 1), this.path, this.report).parse();
  }

  private operandParts(n: CstNode): Operand {
    const c = n.children as Children;
    const span = this.nodeSpan(n);
    const prefixes = this.tokens(c, "prefix")
      .filter((t) => !t.isInsertedInRecovery)
      .sort((a, b) => a.startOffset - b.startOffset)
      .map((t) => ({ op: (t.image === "not" ? "not" : "-") as A.UnaryOp, start: t.startOffset }));
    return { prefixes, atom: this.postfix(this.node(c, "postfix"), span) };
  }

  private postfix(n: CstNode | undefined, fallback: Span): A.Expr {
    if (!n) return this.missing(fallback);
    const c = n.children as Children;
    let expr = this.primary(this.node(c, "primary"), this.nodeSpan(n));
    for (const s of this.nodes(c, "suffix")) {
      const sc = s.children as Children;
      const sspan = this.nodeSpan(s);
      const span = { file: this.path, start: expr.span.start, end: Math.max(sspan.end, expr.span.end) };
      if (s.name === "callSuffix") {
        const args = this.nodes(sc, "argument").map((a): A.Arg => {
          const ac = a.children as Children;
          const aspan = this.nodeSpan(a);
          const name = this.token(ac, "name");
          const pythonStyle = this.token(ac, "pythonStyle");
          if (name && pythonStyle)
            this.report(
              diagnostic("VLM1010", message("VLM1010", { name: name.image }), this.tokenSpan(pythonStyle, aspan)),
            );
          return {
            ...(name ? { name: name.image, nameSpan: this.tokenSpan(name, aspan) } : {}),
            value: this.expression(this.node(ac, "expression"), aspan),
            span: aspan,
          };
        });
        expr = { kind: "call", callee: expr, args, span };
      } else if (s.name === "memberSuffix") {
        const name = this.ident(this.token(sc, "Identifier"), sspan);
        expr = { kind: "member", object: expr, name: name.name, nameSpan: name.span, span };
      } else {
        expr = { kind: "index", object: expr, items: this.nodes(sc, "sliceItem").map((i) => this.sliceItem(i)), span };
      }
    }
    return expr;
  }

  private sliceItem(n: CstNode): A.IndexItem {
    const c = n.children as Children;
    const span = this.nodeSpan(n);
    const start = this.node(c, "start");
    if (this.tokens(c, "firstColon").length === 0) return { kind: "at", index: this.expression(start, span), span };
    const tail = this.node(c, "sliceTail");
    const tc = (tail?.children ?? {}) as Children;
    const stop = this.node(tc, "stop");
    const step = this.node(tc, "step");
    return {
      kind: "slice",
      ...(start ? { start: this.expression(start, span) } : {}),
      ...(stop ? { stop: this.expression(stop, span) } : {}),
      ...(step ? { step: this.expression(step, span) } : {}),
      span,
    };
  }

  private primary(n: CstNode | undefined, fallback: Span): A.Expr {
    if (!n) return this.missing(fallback);
    const c = n.children as Children;
    const span = this.nodeSpan(n);
    const t = (name: string) => this.token(c, name);
    let tok: IToken | undefined;
    if ((tok = t("Float"))) {
      const text = tok.image.replace(/_/g, "");
      return { kind: "float", value: Number(text), text, span };
    }
    if ((tok = t("Integer"))) return { kind: "int", value: Number(tok.image.replace(/_/g, "")), span };
    if ((tok = t("StringLiteral"))) return { kind: "string", value: unquote(tok.image), span };
    if (t("True")) return { kind: "bool", value: true, span };
    if (t("False")) return { kind: "bool", value: false, span };
    if (t("None")) return { kind: "none", span };
    if ((tok = t("Identifier")))
      return { kind: "name", name: tok.isInsertedInRecovery ? "<missing>" : tok.image, span };
    const list = this.node(c, "listLiteral");
    if (list)
      return {
        kind: "list",
        items: this.nodes(list.children as Children, "expression").map((e) => this.expression(e, span)),
        span,
      };
    return this.expression(this.node(c, "expression"), span);
  }
}

export function unquote(image: string): string {
  const body = image.length >= 2 ? image.slice(1, -1) : "";
  return body.replace(/\\(["\\nrt])/g, (_, ch: string) => ({ n: "\n", r: "\r", t: "\t" })[ch] ?? ch);
}

interface Operand {
  prefixes: { op: A.UnaryOp; start: number }[];
  atom: A.Expr;
}

// Binding power of binary operators (higher binds tighter). `not` binds looser than comparisons,
// unary minus tighter than `*` but looser than `**` (`-x ** 2` is `-(x ** 2)`), as in Python.
const BINARY_POWER: Record<string, number> = {
  or: 1,
  and: 2,
  "==": 4,
  "!=": 4,
  "<": 4,
  "<=": 4,
  ">": 4,
  ">=": 4,
  "+": 5,
  "-": 5,
  "*": 6,
  "/": 6,
  "%": 6,
  "@": 6,
  "**": 8,
};
const NOT_POWER = 3;
const COMPARE_POWER = 4;
const NEGATE_POWER = 7;

/** Precedence climbing over the flat `operand (operator operand)*` list of one expression. */
class PrecedenceClimber {
  private at = 0;
  private prefixAt = 0;

  constructor(
    private readonly operands: Operand[],
    private readonly operators: IToken[],
    private readonly file: string,
    private readonly report: (d: Diagnostic) => void,
  ) {}

  parse(): A.Expr {
    // Iterative for left-associative chains so long sums never recurse deeply.
    return this.climb(0);
  }

  private climb(minPower: number): A.Expr {
    let left = this.prefixed(minPower);
    let comparedHere = false;
    while (this.at < this.operators.length) {
      const op = this.operators[this.at]!.image as A.BinaryOp;
      const power = BINARY_POWER[op] ?? 0;
      if (power < minPower || power === 0) break;
      if (power === COMPARE_POWER && comparedHere) {
        this.report(
          diagnostic(
            "VLM1001",
            "comparisons do not chain: write `a < b and b < c`",
            tokenSpan(this.file, this.operators[this.at]!),
          ),
        );
      }
      comparedHere = power === COMPARE_POWER;
      this.at++;
      this.prefixAt = 0;
      // `**` is right-associative and its right side may carry a unary minus (`2 ** -1`).
      const right = op === "**" ? this.climb(NEGATE_POWER) : this.climb(power + 1);
      left = {
        kind: "binary",
        op,
        left,
        right,
        span: {
          file: this.file,
          start: Math.min(left.span.start, right.span.start),
          end: Math.max(left.span.end, right.span.end),
        },
      };
    }
    return left;
  }

  /** The current operand, with its prefix operators applied at their binding power. */
  private prefixed(minPower: number): A.Expr {
    const operand = this.operands[this.at]!;
    const prefix = operand.prefixes[this.prefixAt];
    if (!prefix) return operand.atom;
    // As in Python, `not` may not follow an operator that binds tighter than it: `a == (not b)`.
    if (prefix.op === "not" && minPower > NOT_POWER + 1) {
      this.report(
        diagnostic("VLM1001", "`not` needs parentheses here", {
          file: this.file,
          start: prefix.start,
          end: prefix.start + 3,
        }),
      );
    }
    this.prefixAt++;
    const inner = this.climb(prefix.op === "not" ? NOT_POWER + 1 : NEGATE_POWER);
    const span = { file: this.file, start: prefix.start, end: Math.max(inner.span.end, prefix.start + 1) };
    // Fold `-3` into a literal so numbers print and compare as written.
    if (
      prefix.op === "-" &&
      (inner.kind === "int" || inner.kind === "float") &&
      inner.span.start === operand.atom.span.start &&
      inner === operand.atom
    ) {
      return inner.kind === "int"
        ? { kind: "int", value: -inner.value, span }
        : {
            kind: "float",
            value: -inner.value,
            text: inner.text.startsWith("-") ? inner.text.slice(1) : `-${inner.text}`,
            span,
          };
    }
    return { kind: "unary", op: prefix.op, operand: inner, span };
  }
}

function tokenSpan(file: string, t: IToken): Span {
  return { file, start: t.startOffset, end: t.startOffset + t.image.length };
}

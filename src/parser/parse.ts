// Text → AST with syntax diagnostics. Never throws for bad input: every problem is a diagnostic.

import type { IToken } from "chevrotain";
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { Span } from "../diagnostics/source.js";
import type { Comment, FileAst } from "./ast.js";
import { vlmParser } from "./grammar.js";
import { vlmLexer } from "./lexer.js";
import { AstBuilder } from "./to-ast.js";

/** Deeper nesting than this is rejected before parsing, so recursion can never overflow the stack. */
export const MAX_NESTING = 200;
/** Longest run of `-`, `not` or `**` within one expression (binary `-` counts too: a safe overestimate). */
export const MAX_CHAIN = 500;

export interface ParseResult {
  ast: FileAst;
  comments: Comment[];
  diagnostics: Diagnostic[];
}

const OPEN = new Set(["LParen", "LBracket", "LBrace"]);
const CLOSE = new Set(["RParen", "RBracket", "RBrace"]);
// Operators whose chains recurse in the grammar: prefix `-`/`not` and right-associative `**`.
const CHAIN_OPERATORS = new Set(["Minus", "Not", "StarStar"]);
// Tokens that end an expression chain for the purpose of that count.
const CHAIN_BREAKS = new Set(["Semicolon", "LBrace", "RBrace", "Assign", "Return", "Comma"]);

function tokenSpan(file: string, t: IToken): Span {
  return { file, start: t.startOffset, end: t.startOffset + t.image.length };
}

/** The first token at which brackets (or a chain of prefix operators) nest deeper than MAX_NESTING. */
function tooDeep(tokens: IToken[]): IToken | undefined {
  let depth = 0;
  let prefixRun = 0;
  for (const t of tokens) {
    const kind = t.tokenType.name;
    if (OPEN.has(kind)) depth++;
    else if (CLOSE.has(kind)) depth = Math.max(0, depth - 1);
    if (CHAIN_OPERATORS.has(kind)) prefixRun++;
    else if (CHAIN_BREAKS.has(kind)) prefixRun = 0;
    if (depth > MAX_NESTING || prefixRun > MAX_CHAIN) return t;
  }
  return undefined;
}

function cleanMessage(message: string): string {
  return message
    .replace(/-->\s*/g, "")
    .replace(/\s*<--/g, "")
    .replace(/Expecting token of type (\S+) but found/, "expected $1 but found")
    .replace(/\s+/g, " ")
    .trim();
}

export function parseText(path: string, text: string): ParseResult {
  const diagnostics: Diagnostic[] = [];
  const empty: FileAst = { path, decls: [], span: { file: path, start: 0, end: text.length } };
  const lexed = vlmLexer.tokenize(text);
  for (const e of lexed.errors) {
    const ch = text.slice(e.offset, e.offset + e.length);
    const what = ch.startsWith('"') ? "unterminated string literal" : `unrecognised character ${JSON.stringify(ch.slice(0, 1))}`;
    diagnostics.push(diagnostic("VLM1002", what, { file: path, start: e.offset, end: e.offset + Math.max(1, Math.min(e.length, 1)) }));
  }
  const comments: Comment[] = (lexed.groups["comments"] ?? []).map((t) => ({ text: t.image, span: tokenSpan(path, t) }));
  for (const t of lexed.tokens) {
    if (t.tokenType.name === "Integer" && !Number.isSafeInteger(Number(t.image.replace(/_/g, "")))) {
      diagnostics.push(diagnostic("VLM1004", `integer literal ${t.image} is too large (limit ${Number.MAX_SAFE_INTEGER})`, tokenSpan(path, t)));
    }
  }
  const deep = tooDeep(lexed.tokens);
  if (deep) {
    diagnostics.push(diagnostic("VLM1003", `expression nests more than ${MAX_NESTING} levels deep`, tokenSpan(path, deep)));
    return { ast: empty, comments, diagnostics };
  }
  vlmParser.input = lexed.tokens;
  let cst;
  try {
    cst = vlmParser.file();
  } catch (e) {
    // The guards above should make this unreachable; a stack overflow is still a diagnostic, not a crash.
    if (!(e instanceof RangeError)) throw e;
    diagnostics.push(diagnostic("VLM1003", "the file nests too deeply to parse", { file: path, start: 0, end: 0 }));
    return { ast: empty, comments, diagnostics };
  }
  for (const e of vlmParser.errors) {
    const t = e.token;
    const span: Span =
      t && !Number.isNaN(t.startOffset)
        ? tokenSpan(path, t)
        : { file: path, start: text.length, end: text.length };
    const found = t && t.tokenType.name === "EOF" ? "end of file" : undefined;
    const message = cleanMessage(e.message).replace(/but found: ''|but found ''/, `but found ${found ?? "nothing"}`);
    diagnostics.push(diagnostic("VLM1001", message, span));
  }
  const ast = cst ? new AstBuilder(path).build(cst, text) : empty;
  return { ast, comments, diagnostics };
}

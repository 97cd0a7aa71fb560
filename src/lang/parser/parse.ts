// Text → AST with syntax diagnostics. Never throws for bad input: every problem is a diagnostic.

import type { IToken } from "chevrotain";
import { diagnostic, type Diagnostic } from "../../diagnostics/diagnostic.js";
import type { Span } from "../../diagnostics/source.js";
import type { Comment, FileAst } from "./ast.js";
import { vlmParser } from "./grammar.js";
import { vlmLexer } from "./lexer.js";
import { AstBuilder } from "./to-ast.js";

/** Deeper nesting than this is rejected before parsing, so recursion can never overflow the stack. */
export const MAX_NESTING = 200;
/** Longest run of `-`, `not` or `**` within one expression (binary `-` counts too: a safe overestimate). */
export const MAX_CHAIN = 500;
export const MAX_EXPRESSION_OPERATORS = 2000;

export interface ParseResult {
  ast: FileAst;
  comments: Comment[];
  diagnostics: Diagnostic[];
}

const OPEN = new Set(["LParen", "LBracket", "LBrace"]);
const CLOSE = new Set(["RParen", "RBracket", "RBrace"]);
// Operators whose chains recurse in the grammar: prefix `-`/`not` and right-associative `**`.
const CHAIN_OPERATORS = new Set(["Minus", "Not", "StarStar"]);
// Tokens that add a level to an expression tree (binary operators, `.`, calls, indexing): later
// passes walk trees recursively, so one expression may hold at most MAX_EXPRESSION_OPERATORS.
const TREE_OPERATORS = new Set([
  "Plus",
  "Minus",
  "Star",
  "Slash",
  "Percent",
  "At",
  "StarStar",
  "EqEq",
  "NotEq",
  "Less",
  "LessEq",
  "Greater",
  "GreaterEq",
  "And",
  "Or",
  "Not",
  "Dot",
  "LParen",
  "LBracket",
]);
// Tokens that end an expression (or separate sibling expressions) for the purpose of both counts.
// Statement keywords count too, since statements need no separator.
const CHAIN_BREAKS = new Set([
  "Semicolon",
  "LBrace",
  "RBrace",
  "Assign",
  "Comma",
  "Colon",
  "Return",
  "Expect",
  "If",
  "Else",
  "For",
  "In",
  "Param",
  "Const",
  "Forward",
  "Graph",
  "Stage",
  "Train",
  "Policy",
  "Package",
  "Weights",
  "Import",
  "Block",
  "Model",
  "Repeat",
  "Frozen",
]);

function tokenSpan(file: string, t: IToken): Span {
  return { file, start: t.startOffset, end: t.startOffset + t.image.length };
}

/** The first token at which brackets (or a chain of prefix operators) nest deeper than MAX_NESTING. */
function tooDeep(tokens: IToken[]): { token: IToken; why: string } | undefined {
  let depth = 0;
  let prefixRun = 0;
  let operators = 0;
  for (const t of tokens) {
    const kind = t.tokenType.name;
    if (OPEN.has(kind)) depth++;
    else if (CLOSE.has(kind)) depth = Math.max(0, depth - 1);
    if (CHAIN_BREAKS.has(kind)) {
      prefixRun = 0;
      operators = 0;
    }
    if (CHAIN_OPERATORS.has(kind)) prefixRun++;
    if (TREE_OPERATORS.has(kind)) operators++;
    if (depth > MAX_NESTING) return { token: t, why: `expression nests more than ${MAX_NESTING} levels deep` };
    if (prefixRun > MAX_CHAIN)
      return { token: t, why: `more than ${MAX_CHAIN} chained -, not or ** operators in one expression` };
    if (operators > MAX_EXPRESSION_OPERATORS)
      return {
        token: t,
        why: `expression has more than ${MAX_EXPRESSION_OPERATORS} operators; split it with intermediate names`,
      };
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
    const what = ch.startsWith('"')
      ? "unterminated string literal"
      : `unrecognised character ${JSON.stringify(ch.slice(0, 1))}`;
    diagnostics.push(
      diagnostic("VLM1002", what, { file: path, start: e.offset, end: e.offset + Math.max(1, Math.min(e.length, 1)) }),
    );
  }
  const comments: Comment[] = (lexed.groups["comments"] ?? []).map((t) => ({
    text: t.image,
    span: tokenSpan(path, t),
  }));
  for (const t of lexed.tokens) {
    if (t.tokenType.name === "Integer" && !Number.isSafeInteger(Number(t.image.replace(/_/g, "")))) {
      diagnostics.push(
        diagnostic(
          "VLM1004",
          `integer literal ${t.image} is too large (limit ${Number.MAX_SAFE_INTEGER})`,
          tokenSpan(path, t),
        ),
      );
    }
  }
  const deep = tooDeep(lexed.tokens);
  if (deep) {
    diagnostics.push(diagnostic("VLM1003", deep.why, tokenSpan(path, deep.token)));
    return { ast: empty, comments, diagnostics };
  }
  // Each top-level declaration is parsed on its own: the CST of one declaration is turned into AST
  // and dropped before the next, so memory and GC stay proportional to a declaration, not the file.
  const decls: FileAst["decls"] = [];
  const builder = new AstBuilder(path, (d) => diagnostics.push(d));
  for (const chunk of topLevelChunks(lexed.tokens)) {
    vlmParser.input = chunk;
    let cst: ReturnType<typeof vlmParser.file>;
    try {
      cst = vlmParser.file();
    } catch (e) {
      // The guards above should make this unreachable; a stack overflow is still a diagnostic, not a crash.
      if (!(e instanceof RangeError)) throw e;
      diagnostics.push(diagnostic("VLM1003", "the file nests too deeply to parse", tokenSpan(path, chunk[0]!)));
      continue;
    }
    for (const e of vlmParser.errors) {
      const t = e.token;
      const span: Span =
        t && !Number.isNaN(t.startOffset) && t.tokenType.name !== "EOF"
          ? tokenSpan(path, t)
          : chunkEnd(path, chunk, text);
      const found =
        t && t.tokenType.name === "EOF"
          ? chunk === lastChunk(lexed.tokens, chunk)
            ? "end of file"
            : "the next declaration"
          : undefined;
      const message = cleanMessage(e.message).replace(/but found: ''|but found ''/, `but found ${found ?? "nothing"}`);
      diagnostics.push(diagnostic("VLM1001", message, span));
    }
    if (cst) decls.push(...builder.build(cst, text).decls);
  }
  const ast: FileAst = { path, decls, span: { file: path, start: 0, end: text.length } };
  return { ast, comments, diagnostics };
}

const DECLARATION_STARTS = new Set(["Import", "Const", "Block", "Model"]);

/** Splits the token stream before every declaration keyword at bracket depth 0. */
function topLevelChunks(tokens: IToken[]): IToken[][] {
  const chunks: IToken[][] = [];
  let current: IToken[] = [];
  let depth = 0;
  for (const t of tokens) {
    const kind = t.tokenType.name;
    if (depth === 0 && DECLARATION_STARTS.has(kind) && current.length > 0) {
      chunks.push(current);
      current = [];
    }
    if (OPEN.has(kind)) depth++;
    else if (CLOSE.has(kind)) depth = Math.max(0, depth - 1);
    current.push(t);
  }
  if (current.length > 0 || chunks.length === 0) chunks.push(current);
  return chunks;
}

function lastChunk(tokens: IToken[], chunk: IToken[]): IToken[] | undefined {
  return chunk.length === 0 || chunk[chunk.length - 1] === tokens[tokens.length - 1] ? chunk : undefined;
}

/** Where "unexpected end" errors point: just after the chunk's last token. */
function chunkEnd(path: string, chunk: IToken[], text: string): Span {
  const last = chunk[chunk.length - 1];
  const at = last ? last.startOffset + last.image.length : text.length;
  return { file: path, start: at, end: at };
}

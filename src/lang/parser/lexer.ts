// Tokens of the .vlm language. Keywords are reserved; role words (encoder, fusion, head) are not,
// because real checkpoints use them as field names (`vision.encoder.layers.0`, `heads.head`).

import type { TokenType } from "chevrotain";
import { createToken, Lexer } from "./chevrotain.js";

/** Category of every binary operator: the grammar reads `operand (op operand)*`, the AST builder applies precedence. */
export const BinaryOperator = createToken({ name: "BinaryOperator", pattern: Lexer.NA, label: "operator" });

export const Identifier = createToken({ name: "Identifier", pattern: /[A-Za-z_][A-Za-z0-9_]*/ });

function keyword(word: string, categories: TokenType[] = []): TokenType {
  return createToken({
    name: word[0]!.toUpperCase() + word.slice(1),
    pattern: new RegExp(word),
    longer_alt: Identifier,
    label: `'${word}'`,
    categories,
  });
}

export const Import = keyword("import");
export const From = keyword("from");
export const As = keyword("as");
export const Const = keyword("const");
export const Block = keyword("block");
export const Model = keyword("model");
export const Param = keyword("param");
export const Repeat = keyword("repeat");
export const If = keyword("if");
export const Else = keyword("else");
export const For = keyword("for");
export const In = keyword("in");
export const Return = keyword("return");
export const Expect = keyword("expect");
export const Forward = keyword("forward");
export const Graph = keyword("graph");
export const Stage = keyword("stage");
export const Train = keyword("train");
export const Policy = keyword("policy");
export const Package = keyword("package");
export const Weights = keyword("weights");
export const Frozen = keyword("frozen");
export const True = keyword("true");
export const False = keyword("false");
export const None = keyword("none");
export const And = keyword("and", [BinaryOperator]);
export const Or = keyword("or", [BinaryOperator]);
export const Not = keyword("not");

export const Float = createToken({
  name: "Float",
  pattern: /(?:\d[\d_]*\.\d[\d_]*(?:[eE][+-]?\d+)?|\d[\d_]*[eE][+-]?\d+)/,
  label: "number",
});
export const Integer = createToken({ name: "Integer", pattern: /\d[\d_]*/, label: "integer" });
export const StringLiteral = createToken({
  name: "StringLiteral",
  pattern: /"(?:[^"\\\n\r]|\\["\\nrt])*"/,
  label: "string",
});

export const EqEq = createToken({ name: "EqEq", pattern: /==/, label: "'=='", categories: [BinaryOperator] });
export const NotEq = createToken({ name: "NotEq", pattern: /!=/, label: "'!='", categories: [BinaryOperator] });
export const LessEq = createToken({ name: "LessEq", pattern: /<=/, label: "'<='", categories: [BinaryOperator] });
export const GreaterEq = createToken({ name: "GreaterEq", pattern: />=/, label: "'>='", categories: [BinaryOperator] });
export const Less = createToken({ name: "Less", pattern: /</, label: "'<'", categories: [BinaryOperator] });
export const Greater = createToken({ name: "Greater", pattern: />/, label: "'>'", categories: [BinaryOperator] });
export const Assign = createToken({ name: "Assign", pattern: /=/, label: "'='" });
export const Plus = createToken({ name: "Plus", pattern: /\+/, label: "'+'", categories: [BinaryOperator] });
export const Minus = createToken({ name: "Minus", pattern: /-/, label: "'-'", categories: [BinaryOperator] });
export const StarStar = createToken({ name: "StarStar", pattern: /\*\*/, label: "'**'", categories: [BinaryOperator] });
export const Star = createToken({ name: "Star", pattern: /\*/, label: "'*'", categories: [BinaryOperator] });
export const Slash = createToken({ name: "Slash", pattern: /\//, label: "'/'", categories: [BinaryOperator] });
export const Percent = createToken({ name: "Percent", pattern: /%/, label: "'%'", categories: [BinaryOperator] });
export const At = createToken({ name: "At", pattern: /@/, label: "'@'", categories: [BinaryOperator] });
export const LParen = createToken({ name: "LParen", pattern: /\(/, label: "'('" });
export const RParen = createToken({ name: "RParen", pattern: /\)/, label: "')'" });
export const LBracket = createToken({ name: "LBracket", pattern: /\[/, label: "'['" });
export const RBracket = createToken({ name: "RBracket", pattern: /]/, label: "']'" });
export const LBrace = createToken({ name: "LBrace", pattern: /{/, label: "'{'" });
export const RBrace = createToken({ name: "RBrace", pattern: /}/, label: "'}'" });
export const Comma = createToken({ name: "Comma", pattern: /,/, label: "','" });
export const Colon = createToken({ name: "Colon", pattern: /:/, label: "':'" });
export const Semicolon = createToken({ name: "Semicolon", pattern: /;/, label: "';'" });
export const Dot = createToken({ name: "Dot", pattern: /\./, label: "'.'" });

export const LineComment = createToken({ name: "LineComment", pattern: /\/\/[^\n\r]*/, group: "comments" });
export const BlockComment = createToken({
  name: "BlockComment",
  pattern: /\/\*[\s\S]*?\*\//,
  group: "comments",
  line_breaks: true,
});
export const WhiteSpace = createToken({ name: "WhiteSpace", pattern: /\s+/, group: Lexer.SKIPPED, line_breaks: true });

export const KEYWORDS = [
  Import,
  From,
  As,
  Const,
  Block,
  Model,
  Param,
  Repeat,
  If,
  Else,
  For,
  In,
  Return,
  Expect,
  Forward,
  Graph,
  Stage,
  Train,
  Policy,
  Package,
  Weights,
  Frozen,
  True,
  False,
  None,
  And,
  Or,
  Not,
];

// A keyword that is a prefix of another (for/forward) must come after it.
const KEYWORDS_LONGEST_FIRST = [...KEYWORDS].sort((a, b) => String(b.PATTERN).length - String(a.PATTERN).length);

// Order matters: comments before '/', longer operators before their prefixes, keywords before Identifier.
export const ALL_TOKENS: TokenType[] = [
  BinaryOperator,
  WhiteSpace,
  LineComment,
  BlockComment,
  StringLiteral,
  Float,
  Integer,
  ...KEYWORDS_LONGEST_FIRST,
  Identifier,
  EqEq,
  NotEq,
  LessEq,
  GreaterEq,
  Less,
  Greater,
  Assign,
  Plus,
  Minus,
  StarStar,
  Star,
  Slash,
  Percent,
  At,
  LParen,
  RParen,
  LBracket,
  RBracket,
  LBrace,
  RBrace,
  Comma,
  Colon,
  Semicolon,
  Dot,
];

export const vlmLexer = new Lexer(ALL_TOKENS, { ensureOptimizations: true, positionTracking: "full" });

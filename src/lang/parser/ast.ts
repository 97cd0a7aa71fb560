// The typed AST of .vlm. Every node carries a half-open span into its file.

import type { Span } from "../../diagnostics/source.js";

export type BinaryOp = "+" | "-" | "*" | "/" | "%" | "@" | "**" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "and" | "or";
export type UnaryOp = "-" | "not";

export type Expr =
  | { kind: "int"; value: number; span: Span }
  | { kind: "float"; value: number; text: string; span: Span }
  | { kind: "string"; value: string; span: Span }
  | { kind: "bool"; value: boolean; span: Span }
  | { kind: "none"; span: Span }
  | { kind: "name"; name: string; span: Span }
  | { kind: "list"; items: Expr[]; span: Span }
  | { kind: "unary"; op: UnaryOp; operand: Expr; span: Span }
  | { kind: "binary"; op: BinaryOp; left: Expr; right: Expr; span: Span }
  | { kind: "call"; callee: Expr; args: Arg[]; span: Span }
  | { kind: "member"; object: Expr; name: string; nameSpan: Span; span: Span }
  | { kind: "index"; object: Expr; items: IndexItem[]; span: Span };

export interface Arg {
  name?: string;
  nameSpan?: Span;
  value: Expr;
  span: Span;
}

export type IndexItem =
  | { kind: "at"; index: Expr; span: Span }
  | { kind: "slice"; start?: Expr; stop?: Expr; step?: Expr; span: Span };

export interface Ident {
  name: string;
  span: Span;
}

export interface TypeExpr {
  name: string;
  nameSpan: Span;
  dims?: Dim[];
  span: Span;
}

export interface Dim {
  value: Expr;
  bound?: Expr;
  span: Span;
}

export interface ParamDef {
  name: string;
  nameSpan: Span;
  type?: TypeExpr;
  default?: Expr;
  span: Span;
}

export interface ConstDecl {
  kind: "const";
  name: string;
  nameSpan: Span;
  value: Expr;
  span: Span;
}

export interface ParamDecl {
  kind: "param";
  role?: Ident;
  name: string;
  nameSpan: Span;
  shape: Expr[];
  init?: Expr;
  frozen: boolean;
  span: Span;
}

export interface IfMember {
  kind: "if";
  cond: Expr;
  then: Member[];
  else?: Member[];
  span: Span;
}

export interface ForwardDecl {
  kind: "forward";
  params: ParamDef[];
  body: Stmt[];
  span: Span;
}

export interface GraphDecl {
  kind: "graph";
  name: string;
  nameSpan: Span;
  params: ParamDef[];
  body: Stmt[];
  span: Span;
}

export interface StageDecl {
  kind: "stage";
  name: string;
  nameSpan: Span;
  trains: Ident[];
  span: Span;
}

/** The word an entry's value spells (a name, `none`, or a string), or undefined for any other value. */
export function entryWord(value: Expr): string | undefined {
  if (value.kind === "name") return value.name;
  if (value.kind === "none") return "none";
  return value.kind === "string" ? value.value : undefined;
}

export interface PolicyEntry {
  key: string;
  keySpan: Span;
  value: Expr;
  span: Span;
}

export interface PolicyDecl {
  kind: "policy";
  selector: Ident;
  entries: PolicyEntry[];
  span: Span;
}

/** `package { vision: image_features, decoder: llm, … }`: the graphs of a generation package. */
export interface PackageDecl {
  kind: "package";
  entries: PolicyEntry[];
  span: Span;
}

export interface WeightsDecl {
  kind: "weights";
  target?: Ident;
  /** Absent in a layout declaration (`weights llm { … }`): the path comes from `--weights`. */
  path?: string;
  pathSpan: Span;
  prefix?: string;
  /** The `{ … }` key map, when written. */
  map?: WeightsRule[];
  span: Span;
}

/** `"from": "to"` renames a key prefix (`"from": none`: not weights); `tie "p" = "q"` fills p from q. */
export type WeightsRule =
  | { kind: "rename"; from: string; to: string | null; span: Span }
  | { kind: "tie"; param: string; source: string; span: Span };

export interface RepeatSpec {
  count: Expr;
  index?: Ident;
}

export interface ComponentDecl {
  kind: "component";
  role?: Ident;
  name: string;
  nameSpan: Span;
  repeat?: RepeatSpec;
  value: Expr;
  frozen: boolean;
  span: Span;
}

export type Member =
  | ConstDecl
  | ParamDecl
  | IfMember
  | ForwardDecl
  | GraphDecl
  | StageDecl
  | PolicyDecl
  | PackageDecl
  | WeightsDecl
  | ComponentDecl;

export interface ReturnItem {
  name?: Ident;
  value: Expr;
}

export type Stmt =
  | ConstDecl
  | { kind: "assign"; targets: Ident[]; value: Expr; span: Span }
  | { kind: "return"; items: ReturnItem[]; span: Span }
  | { kind: "expect"; cond: Expr; span: Span }
  | { kind: "if"; cond: Expr; then: Stmt[]; else?: Stmt[]; span: Span }
  | { kind: "for"; name: Ident; iterable: Expr; body: Stmt[]; span: Span };

export interface ImportItem {
  name: string;
  nameSpan: Span;
  alias?: Ident;
  span: Span;
}

export interface ImportDecl {
  kind: "import";
  items: ImportItem[];
  from: string;
  fromSpan: Span;
  span: Span;
}

export interface BlockDecl {
  kind: "block";
  name: string;
  nameSpan: Span;
  params: ParamDef[];
  members: Member[];
  span: Span;
}

export interface ModelDecl {
  kind: "model";
  name: string;
  nameSpan: Span;
  params: ParamDef[];
  members: Member[];
  span: Span;
}

export type TopDecl = ImportDecl | ConstDecl | BlockDecl | ModelDecl;

export interface FileAst {
  path: string;
  decls: TopDecl[];
  span: Span;
}

/** Comments are kept beside the AST (not in it) so the formatter can put them back. */
export interface Comment {
  text: string;
  span: Span;
}

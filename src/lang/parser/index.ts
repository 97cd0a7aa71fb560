// Public surface of the front end.
export type {
  FileAst,
  Expr,
  Member,
  Stmt,
  BlockDecl,
  ModelDecl,
  ImportDecl,
  ConstDecl,
  TopDecl,
  Comment,
} from "./ast.js";
export { parseText, MAX_NESTING, type ParseResult } from "./parse.js";
export {
  loadProgram,
  displayPath,
  STD_DIR,
  STD_MODULE,
  type LoadedFile,
  type Program,
  type LoadOptions,
} from "./program.js";
